"""A content-addressed cache of the lowering step (ONNX -> float TFLite with onnx2tf).

Key: sha256 over the validated model's serialized bytes (after `--input-shape` overrides and shape
inference), `LOWERING_OPTIONS`, the versions of every tool that affects the lowering (`tool_versions()`),
the stretchc version and the Python version. So a recompile that changes only the placement, the target or
the pipeline reuses the lowered model and skips onnx2tf.

Location: `$STRETCHC_CACHE_DIR`, else `$XDG_CACHE_HOME/stretchc`, else `~/.cache/stretchc`; entries live
in `lower/<key[:2]>/<key>.tflite`. `stretchc compile --no-cache` neither reads nor writes it.

Entry format: one header line `stretchc-cache 2 <key> <sha256 of payload> <payload length>\n`, then the
payload. A truncated or corrupt entry, or one whose key is not the key it is stored under (another model's
entry copied over it), fails the check, is reported as a warning (`cache-corrupt`), removed and rebuilt; an
entry of another entry version is a plain miss, overwritten. Writes go to a temporary file in the entry's directory, then `os.replace`: concurrent compiles
of the same model each produce a complete entry and the last rename wins (they are identical anyway);
readers never see a partial file. A cache that cannot be written is a warning (`cache-unwritable`), never
a failed compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

from stretchc.console import get_console
from stretchc.frontend.lower import LOWERING_OPTIONS, tool_versions
from stretchc.version import __version__

MAGIC = b"stretchc-cache"
ENTRY_VERSION = 2


def cache_dir() -> Path:
    """The cache root directory (not created)."""
    env = os.environ.get("STRETCHC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "stretchc"


def lowering_key(model_bytes: bytes) -> str:
    """The cache key of lowering a model whose canonical serialization is `model_bytes`."""
    meta = {
        "entry": ENTRY_VERSION,
        "stretchc": __version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "lowering": LOWERING_OPTIONS,
        "tools": tool_versions(),
    }
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(b"\0")
    h.update(hashlib.sha256(model_bytes).digest())
    return h.hexdigest()


def encode_entry(key: str, payload: bytes) -> bytes:
    header = b"%s %d %s %s %d\n" % (MAGIC, ENTRY_VERSION, key.encode(), hashlib.sha256(payload).hexdigest().encode(), len(payload))
    return header + payload


def decode_entry(data: bytes, key: str) -> bytes | None:
    """The payload of the entry stored under `key`, or None if the entry is truncated, corrupt, of another
    version, or written for another key."""
    head, nl, payload = data.partition(b"\n")
    if not nl:
        return None
    parts = head.split(b" ")
    if len(parts) != 5 or parts[0] != MAGIC or parts[1] != str(ENTRY_VERSION).encode() or parts[2] != key.encode():
        return None
    try:
        length = int(parts[4])
    except ValueError:
        return None
    if len(payload) != length or hashlib.sha256(payload).hexdigest().encode() != parts[3]:
        return None
    return payload


def _other_version(data: bytes) -> bool:
    parts = data.partition(b"\n")[0].split(b" ")
    return len(parts) >= 2 and parts[0] == MAGIC and parts[1] != str(ENTRY_VERSION).encode()


class LoweringCache:
    """get/put of lowered TFLite bytes by key, under `root` (see the module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir()

    def path(self, key: str) -> Path:
        return self.root / "lower" / key[:2] / f"{key}.tflite"

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            get_console().warn("cache-unreadable", f"cannot read cache entry ({exc.strerror or exc}); lowering again", file=str(path))
            return None
        payload = decode_entry(data, key)
        if payload is None and _other_version(data):
            return None  # written by another stretchc; put() overwrites it
        if payload is None:
            get_console().warn("cache-corrupt", "cache entry is truncated, corrupt or another model's; removing it and lowering again", file=str(path))
            try:
                path.unlink()
            except OSError:
                pass
        return payload

    def put(self, key: str, payload: bytes) -> None:
        path = self.path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(encode_entry(key, payload))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            get_console().warn("cache-unwritable", f"cannot write the lowering cache ({exc.strerror or exc}); continuing without it", file=str(path))
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def get_or_build(self, key: str, build: Callable[[], bytes]) -> tuple[bytes, bool]:
        """(payload, hit): the cached payload, or `build()`'s result, stored for next time."""
        payload = self.get(key)
        if payload is not None:
            return payload, True
        payload = build()
        self.put(key, payload)
        return payload, False
