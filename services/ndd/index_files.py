"""Saving FAISS indexes atomically: one file per index (serialized index + owners + generation),
written to a temp file, fsynced, then renamed over the old one. A crash at any point leaves either
the old file or the new one, never a torn one; a stale file is detected by its generation."""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np


@dataclass
class LoadedIndex:
    index: faiss.Index | faiss.IndexBinary
    owners: np.ndarray
    generation: int


def _write_bytes(handle: io.BufferedWriter, payload: bytes) -> None:
    handle.write(payload)


def save(path: Path, index: faiss.Index | faiss.IndexBinary, owners: np.ndarray, generation: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = isinstance(index, faiss.IndexBinary)
    serialized = faiss.serialize_index_binary(index) if binary else faiss.serialize_index(index)
    buffer = io.BytesIO()
    np.savez(buffer, index=serialized, owners=owners.astype(np.int64), generation=np.int64(generation),
             binary=np.bool_(binary))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_bytes(handle, buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the directory entry is.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: Path) -> LoadedIndex | None:
    """The saved index, or None when there is none or it cannot be read (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            binary = bool(data["binary"]) if "binary" in data.files else False
            index = faiss.deserialize_index_binary(data["index"]) if binary else faiss.deserialize_index(data["index"])
            return LoadedIndex(index, data["owners"].astype(np.int64), int(data["generation"]))
    except FileNotFoundError:
        return None
    except Exception:
        return None
