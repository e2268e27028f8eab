"""Small file-system helpers shared by the server and the client (POSIX semantics)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, *, prefix: str = ".", suffix: str = ".tmp") -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic (POSIX ``rename(2)``): a reader sees the old file or the new one, never
    part of one.  The temporary file is removed if anything fails.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


__all__ = ["replace_atomically"]
