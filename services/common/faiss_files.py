"""A FAISS index saved as a cache of a database (NDD, CMRR): the serialised index, any arrays that go with it
and the generation of the data it was built from, in one file written atomically. The database bumps the
generation in the same transaction as every change, so a file whose generation differs is stale and is rebuilt;
an unreadable file is treated as missing."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from services.common.atomic_files import atomic_write

log = logging.getLogger(__name__)

AnyIndex = faiss.Index | faiss.IndexBinary


@dataclass
class SavedIndex:
    index: AnyIndex
    generation: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def save_index(path: Path, index: AnyIndex, generation: int, **arrays: np.ndarray) -> None:
    binary = isinstance(index, faiss.IndexBinary)
    serialized = faiss.serialize_index_binary(index) if binary else faiss.serialize_index(index)
    buffer = io.BytesIO()
    np.savez(buffer, index=serialized, generation=np.int64(generation), binary=np.bool_(binary),
             **{f"array_{name}": value for name, value in arrays.items()})
    atomic_write(path, buffer.getvalue())


def load_index(path: Path) -> SavedIndex | None:
    """The saved index, or None when there is none or it cannot be read (the caller rebuilds it)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = data["index"]
            index = faiss.deserialize_index_binary(raw) if bool(data["binary"]) else faiss.deserialize_index(raw)
            arrays = {name[len("array_"):]: data[name] for name in data.files if name.startswith("array_")}
            return SavedIndex(index, int(data["generation"]), arrays)
    except FileNotFoundError:
        return None
    except Exception as exc:  # any damage: the index is derived data, rebuilt from the database
        log.warning("%s: unreadable saved index (%s); it will be rebuilt", path, exc)
        return None
