"""Write schemas/target.schema.json and schemas/calibration.schema.json from the backends (stretchc/targets/schema.py).
Run: .venv/bin/python scripts/gen_target_schemas.py (tests/targets/test_target_schema.py checks they are current).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from stretchc.targets.schema import GENERATED, render

    for name in GENERATED:
        path = ROOT / "schemas" / name
        path.write_text(render(name))
        print(f"generated: {path.relative_to(ROOT)}")
