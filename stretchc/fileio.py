"""Writing a user's output file (a model, a report, a run's outputs): atomically, with the permissions a plain
`open(path, "w")` would give it.

`write_atomically` writes a temporary file in the output's folder and moves it into place with `os.replace`, so
a failure (or Ctrl-C) leaves nothing behind and an existing file is either fully replaced or untouched;
`os.replace` replaces a symbolic link itself, never the file it points to. The temporary file is made private
by `mkstemp` (0600); before it is moved into place it gets `0o666 & ~umask`, as a new file of any other tool,
so that a model or report written for others to read can be read by them. Callers check the output first
(stretchc/driver.py `check_output_file`): this module writes, it does not decide what may be replaced.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stretchc.errors import StretchError

STATUS = Path("/proc/self/status")


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux 4.7 and later).

    `os.umask` can only read the mask by setting another: for that moment a file another thread creates gets
    the other mask. The fallback sets 0o077 for that moment, so such a file is at worst more private.
    """
    try:
        with STATUS.open(encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_atomically(data: bytes, out: Path) -> None:
    """Write `data` to `out` through a temporary file in the same folder and `os.replace` (module docstring).

    The folder must exist. Raises StretchError("write-failed") naming `out`; the temporary file is then removed.
    """
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            os.fsync(fh.fileno())
        os.replace(tmp_name, out)
        tmp_name = None
    except OSError as exc:
        raise StretchError("write-failed", f"cannot write {out}: {exc.strerror or exc}", file=str(out)) from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
