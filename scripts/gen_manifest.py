"""Regenerate everything derived from schemas/manifest.fbs and schemas/bundle_rules.json (see
stretchc/bundle/codegen/__init__.py for the list): the Python FlatBuffers code, the C++ headers and the JSON
schema. Needs flatc 2.0.8 (apt-get install flatbuffers-compiler). Run: .venv/bin/python scripts/gen_manifest.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from stretchc.bundle.codegen import GenerateError, generate

    try:
        for path in generate(ROOT, ROOT):
            print(f"generated: {path}")
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
