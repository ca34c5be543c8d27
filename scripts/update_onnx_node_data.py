"""Refresh tests/data/onnx_node from the onnx 1.17.0 wheel: the node tests of the CNN-op subset, unchanged.

    .venv/bin/python scripts/update_onnx_node_data.py [--wheel onnx-1.17.0-....whl]

Without --wheel, the wheel is fetched with `pip download onnx==1.17.0 --no-deps` (the package registry;
newer onnx wheels no longer ship the test data). The subset is `tests.conformance.onnx_node.FAMILIES`;
every case folder of the subset is copied as it is in the wheel, with onnx's LICENSE (Apache-2.0).
Maintainer tool: the tests only read the shipped data and never touch the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conformance.onnx_node import DATA, ONNX_WHEEL, family_of  # noqa: E402

NODE_PREFIX = "onnx/backend/test/data/node/"


def _download(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", ONNX_WHEEL, "--no-deps", "--only-binary=:all:", "-d", str(dest)], check=True
    )
    return next(dest.glob("onnx-*.whl"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="a downloaded onnx 1.17.0 wheel (default: pip download it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(NODE_PREFIX)]
            chosen = sorted({m[len(NODE_PREFIX) :].split("/")[0] for m in members if family_of(m[len(NODE_PREFIX) :].split("/")[0])})
            for old in DATA.iterdir() if DATA.is_dir() else []:
                if old.is_dir():
                    shutil.rmtree(old)
            DATA.mkdir(parents=True, exist_ok=True)
            for m in members:
                case = m[len(NODE_PREFIX) :].split("/")[0]
                if case in chosen and not m.endswith("/"):
                    target = DATA / m[len(NODE_PREFIX) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(m))
            license_name = next(m for m in zf.namelist() if m.endswith(".dist-info/LICENSE"))
            (DATA / "LICENSE").write_bytes(zf.read(license_name))
    print(f"{len(chosen)} cases from {wheel.name} into {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
