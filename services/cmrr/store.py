"""One modality's content: vectors, who posted them under which ids, and the FAISS index over them.

Duplicates (source document, Table 22 note): content a user adds again under another id is stored once; the new
id is appended to that entry's id list and results name the most recent id (the last one).

Persistence: one `<modality>.npz` per modality holding the vectors, the serialised FAISS index and the id map as
JSON, written to a temporary file, fsynced and moved over the old one with `os.replace`, so a crash leaves either
the old or the new state, never half of one. It is reloaded at start; an unreadable file stops the service with
a clear message instead of being overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from services.cmrr.index import IndexPolicy, build_flat, build_index, index_kind, is_approximate, search

FORMAT_VERSION = 1


class StoreError(RuntimeError):
    """The persisted state cannot be read."""


class IdConflictError(ValueError):
    """The id already names other content."""


@dataclass
class Entry:
    slot: int
    user: str
    ids: list[str]
    digest: str
    added: float = field(default_factory=time.time)

    @property
    def latest_id(self) -> str:
        return self.ids[-1]


@dataclass(frozen=True)
class AddResult:
    status: str  # "added" | "duplicate" (new id for stored content) | "exists" (same id, same content)
    entry: Entry


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Calls write(file) on a temp file beside path, fsyncs it and renames it over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class ModalityStore:
    """Thread-safe: the service calls it from worker threads; one lock guards the index and the maps."""

    def __init__(self, modality: str, path: Path | None, policy: IndexPolicy) -> None:
        self.modality = modality
        self.path = path
        self.policy = policy
        self.dim: int | None = None
        self._vectors = np.zeros((0, 0), np.float32)  # rows [0, _count) are live, capacity beyond
        self._count = 0
        self._slot_of_row: list[int] = []
        self._row_of_slot: dict[int, int] = {}
        self._entries: dict[int, Entry] = {}
        self._by_id: dict[str, int] = {}
        self._by_content: dict[tuple[str, str], int] = {}
        self._by_user: dict[str, set[int]] = {}
        self._next_slot = 0
        self._index: faiss.Index | None = None
        self._trained_at = 0  # size when the IVF index was last trained
        self._lock = threading.RLock()

    # -- reading -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def index_kind(self) -> str:
        return index_kind(self._index) if self._index is not None else "Flat"

    def entry_for_id(self, content_id: str) -> Entry | None:
        with self._lock:
            slot = self._by_id.get(content_id)
            return self._entries.get(slot) if slot is not None else None

    def user_entries(self, user: str) -> list[Entry]:
        with self._lock:
            return sorted((self._entries[s] for s in self._by_user.get(user, ())), key=lambda e: e.added)

    def count_excluding(self, user: str) -> int:
        with self._lock:
            return self._count - len(self._by_user.get(user, ()))

    def user_vectors(self, user: str, limit: int) -> tuple[list[Entry], np.ndarray]:
        """The user's most recent `limit` entries and their vectors."""
        with self._lock:
            entries = self.user_entries(user)[-limit:]
            if not entries:
                return [], np.zeros((0, self.dim or 0), np.float32)
            rows = [self._row_of_slot[e.slot] for e in entries]
            return entries, self._vectors[rows].copy()

    def search(
        self, queries: np.ndarray, k: int, exclude_user: str | None, exclude_slots: set[int] | None = None
    ) -> list[list[tuple[Entry, float]]]:
        """Per query, up to k (entry, cosine) pairs, best first, skipping the user's own and excluded slots."""
        with self._lock:
            if self._index is None or self._count == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            own = self._by_user.get(exclude_user, set()) if exclude_user is not None else set()
            skip = own | (exclude_slots or set())
            fetch = min(self._count, k + len(skip))
            scores, slots = search(self._index, queries, fetch)
            results: list[list[tuple[Entry, float]]] = []
            for row_scores, row_slots in zip(scores, slots, strict=True):
                hits: list[tuple[Entry, float]] = []
                for score, slot in zip(row_scores.tolist(), row_slots.tolist(), strict=True):
                    if slot < 0 or slot in skip:
                        continue
                    hits.append((self._entries[slot], float(score)))
                    if len(hits) == k:
                        break
                results.append(hits)
            return results

    # -- writing -------------------------------------------------------------------------------------
    def add(self, user: str, content_id: str, digest: str, vector: np.ndarray) -> AddResult:
        vector = np.asarray(vector, np.float32).reshape(-1)
        with self._lock:
            if self.dim is None:
                self.dim = int(vector.shape[0])
            if vector.shape[0] != self.dim:
                raise ValueError(f"{self.modality} vectors here are {self.dim}-d, not {vector.shape[0]}-d")
            existing = self._by_id.get(content_id)
            if existing is not None:
                entry = self._entries[existing]
                if entry.user == user and entry.digest == digest:
                    return AddResult("exists", entry)
                raise IdConflictError(f"id {content_id!r} already names other {self.modality} content")
            slot = self._by_content.get((user, digest))
            previous_time: float | None = None
            try:
                if slot is not None:
                    entry = self._entries[slot]
                    entry.ids.append(content_id)
                    previous_time, entry.added = entry.added, time.time()
                    self._by_id[content_id] = slot
                    status = "duplicate"
                else:
                    slot = self._next_slot
                    self._next_slot += 1
                    entry = Entry(slot, user, [content_id], digest)
                    self._append_row(slot, vector)
                    self._entries[slot] = entry
                    self._by_id[content_id] = slot
                    self._by_content[(user, digest)] = slot
                    self._by_user.setdefault(user, set()).add(slot)
                    self._index_add(slot, vector)
                    status = "added"
                self._save()
            except BaseException:
                # Nothing half-done: what is not on disk is not served either.
                if content_id in self._by_id:
                    self._drop_id(content_id)
                if previous_time is not None and slot in self._entries:
                    self._entries[slot].added = previous_time
                raise
            return AddResult(status, entry)

    def remove_id(self, content_id: str) -> Entry | None:
        """Drops one id; the content goes when its last id goes. Returns the entry (None if unknown)."""
        with self._lock:
            slot = self._by_id.get(content_id)
            if slot is None:
                return None
            entry = self._entries[slot]
            saved = (list(entry.ids), entry.added, self._vectors[self._row_of_slot[slot]].copy())
            self._drop_id(content_id)
            try:
                self._save()
            except BaseException:
                self._restore(entry, *saved)
                raise
            return entry

    def _drop_id(self, content_id: str) -> None:
        slot = self._by_id.pop(content_id)
        entry = self._entries[slot]
        entry.ids.remove(content_id)
        if entry.ids:
            return
        del self._entries[slot]
        del self._by_content[(entry.user, entry.digest)]
        user_slots = self._by_user[entry.user]
        user_slots.discard(slot)
        if not user_slots:
            del self._by_user[entry.user]
        self._remove_row(slot)
        if self._index is not None:
            self._index.remove_ids(np.array([slot], np.int64))

    def _restore(self, entry: Entry, ids: list[str], added: float, vector: np.ndarray) -> None:
        """Undoes a removal whose save failed."""
        entry.ids[:], entry.added = ids, added
        for content_id in ids:
            self._by_id[content_id] = entry.slot
        if entry.slot not in self._entries:
            self._entries[entry.slot] = entry
            self._by_content[(entry.user, entry.digest)] = entry.slot
            self._by_user.setdefault(entry.user, set()).add(entry.slot)
            self._append_row(entry.slot, vector)
            assert self._index is not None
            self._index.add_with_ids(vector[None], np.array([entry.slot], np.int64))

    def _append_row(self, slot: int, vector: np.ndarray) -> None:
        if self._count == len(self._vectors) or self._vectors.shape[1] != self.dim:
            grown = np.zeros((max(16, 2 * len(self._vectors)), self.dim), np.float32)
            if self._count:
                grown[: self._count] = self._vectors[: self._count]
            self._vectors = grown
        self._vectors[self._count] = vector
        self._row_of_slot[slot] = self._count
        self._slot_of_row.append(slot)
        self._count += 1

    def _remove_row(self, slot: int) -> None:
        row = self._row_of_slot.pop(slot)
        last = self._count - 1
        if row != last:  # keep rows dense: move the last row into the hole
            moved = self._slot_of_row[last]
            self._vectors[row] = self._vectors[last]
            self._slot_of_row[row] = moved
            self._row_of_slot[moved] = row
        self._slot_of_row.pop()
        self._count -= 1

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        return self._vectors[: self._count], np.asarray(self._slot_of_row, np.int64)

    def _index_add(self, slot: int, vector: np.ndarray) -> None:
        assert self.dim is not None
        if self._index is None:
            self._index = build_flat(self.dim, *self._live())
            return
        grown_past = self._count > self.policy.approximate_above and (
            not is_approximate(self._index) or self._count > 2 * self._trained_at
        )
        if grown_past:
            # Switch to (or retrain) the approximate index so its lists keep matching the data.
            self._index = build_index(self.dim, *self._live(), self.policy)
            self._trained_at = self._count
            return
        self._index.add_with_ids(vector[None], np.array([slot], np.int64))

    def rebuild(self) -> None:
        with self._lock:
            if self.dim is not None:
                self._index = build_index(self.dim, *self._live(), self.policy)
                self._trained_at = self._count if is_approximate(self._index) else 0

    # -- persistence ---------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "modality": self.modality,
            "dim": self.dim,
            "next_slot": self._next_slot,
            "trained_at": self._trained_at,
            "entries": [
                {"slot": e.slot, "user": e.user, "ids": e.ids, "digest": e.digest, "added": e.added}
                for e in self._entries.values()
            ],
        }

    def _save(self) -> None:
        if self.path is None:
            return
        vectors, slots = self._live()
        index_bytes = faiss.serialize_index(self._index) if self._index is not None else np.zeros(0, np.uint8)
        meta = np.frombuffer(json.dumps(self._meta()).encode("utf-8"), np.uint8)

        def write(handle) -> None:
            np.savez(handle, vectors=vectors, slots=slots, index=index_bytes, meta=meta)

        atomic_write(self.path, write)

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                vectors = np.asarray(data["vectors"], np.float32)
                slots = np.asarray(data["slots"], np.int64)
                index_bytes = np.asarray(data["index"], np.uint8)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise StoreError(
                f"{self.path}: cannot read the saved {self.modality} index ({exc}); move the file away to start "
                "empty, or restore it from a backup"
            ) from exc
        if meta.get("version") != FORMAT_VERSION:
            raise StoreError(f"{self.path}: format version {meta.get('version')}, this build reads {FORMAT_VERSION}")
        with self._lock:
            self.dim = meta["dim"]
            self._next_slot = int(meta["next_slot"])
            self._trained_at = int(meta.get("trained_at", 0))
            for raw in meta["entries"]:
                entry = Entry(int(raw["slot"]), raw["user"], list(raw["ids"]), raw["digest"], float(raw["added"]))
                self._entries[entry.slot] = entry
                self._by_content[(entry.user, entry.digest)] = entry.slot
                self._by_user.setdefault(entry.user, set()).add(entry.slot)
                for content_id in entry.ids:
                    self._by_id[content_id] = entry.slot
            if self.dim is not None:
                self._vectors = vectors.reshape(-1, self.dim).copy()
            self._count = len(slots)
            self._slot_of_row = slots.tolist()
            self._row_of_slot = {slot: row for row, slot in enumerate(self._slot_of_row)}
            if set(self._row_of_slot) != set(self._entries):
                raise StoreError(f"{self.path}: vectors and id map disagree; the file is damaged")
            try:
                index = faiss.deserialize_index(index_bytes) if index_bytes.size else None
            except RuntimeError:
                index = None  # the index is derived data: rebuilt from the vectors below
            if index is not None and index.ntotal != self._count:
                index = None  # never trust a stale index: rebuild it from the vectors
            if index is not None and is_approximate(index):
                faiss.downcast_index(index).nprobe = self.policy.nprobe  # the configured value wins
            self._index = index
            if self._index is None and self.dim is not None:
                self.rebuild()
