"""Writing a file so that a crash at any moment leaves the old file or the new one, never a torn one.

The bytes go to a temporary file beside the target, which is fsynced and renamed over the target; then the
directory is fsynced, since the rename itself is durable only once the directory entry is. Directory-fsync
decision: errors that mean "this filesystem cannot fsync a directory" (EINVAL, ENOTSUP, EBADF, EISDIR, or a
platform where directories cannot be opened) are ignored, because the rename is then as durable as that
filesystem makes it and retrying cannot help; every other error propagates, since the caller would otherwise
believe a write durable that a power cut can undo.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_NO_DIRECTORY_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EISDIR}


def fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if exc.errno in _NO_DIRECTORY_FSYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIRECTORY_FSYNC:
            raise
    finally:
        os.close(fd)


def durable_replace(source: Path, target: Path) -> None:
    """Renames a finished, fsynced file over target and makes the rename durable."""
    os.replace(source, target)
    fsync_directory(target.parent)


def atomic_write(path: Path, content: bytes | Callable[[BinaryIO], object]) -> None:
    """Writes bytes (or whatever `content(handle)` writes) to path atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        durable_replace(Path(temp), path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
