"""One modality's content: vectors, who posted them under which ids, and the FAISS index over them.

Duplicates (source document, Table 22 note): content a user adds again under another id is stored once; the new
id is appended to that entry's id list and results name the most recent id (the last one).

Persistence, so a crash loses nothing acknowledged and never leaves half a state:
- a snapshot `<modality>.npz` holds the vectors, the serialised FAISS index and the id map (JSON); it is written
  to a temporary file, fsynced and moved over the old one with `os.replace`;
- every change after it is appended to a journal `<modality>.<generation>.journal` (one JSON line, fsynced)
  before the request is answered, so an add costs one small write, not a rewrite of the whole index;
- when the journal grows past `snapshot_every` records, and at shutdown, a new snapshot (next generation) folds it
  in and the old journal is removed. At start the snapshot is loaded and its generation's journal replayed; a torn
  last line (a crash mid-append) is ignored. An unreadable snapshot stops the service with a clear message
  instead of being overwritten.
"""

from __future__ import annotations

import base64
import json
import logging
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

log = logging.getLogger(__name__)

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


class Journal:
    """Append-only JSON lines, each fsynced; a failed append is cut off so the file stays well formed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = 0
        self._handle = None

    def append(self, record: dict) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
        offset = self._handle.tell()
        try:
            self._handle.write((json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except BaseException:
            try:
                self._handle.truncate(offset)
                self._handle.seek(offset)
            except (OSError, ValueError):
                pass
            raise
        self.records += 1

    @staticmethod
    def read(path: Path) -> list[dict]:
        if not path.exists():
            return []
        records = []
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                log.warning("%s: ignoring a torn record at the end (a crash while appending)", path)
                break
        return records

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, "<f4").tobytes()).decode("ascii")


def _decode_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<f4").astype(np.float32)


class ModalityStore:
    """Thread-safe: the service calls it from worker threads; one lock guards the index and the maps."""

    def __init__(
        self, modality: str, path: Path | None, policy: IndexPolicy, snapshot_every: int = 10_000
    ) -> None:
        self.modality = modality
        self.path = path
        self.policy = policy
        self.snapshot_every = snapshot_every
        self.generation = 0
        self._journal: Journal | None = Journal(self._journal_path(0)) if path is not None else None
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
            now = time.time()
            if slot is not None:
                entry = self._entries[slot]
                previous_time = entry.added
                self._apply_duplicate(slot, content_id, now)
                record = {"op": "dup", "slot": slot, "id": content_id, "added": now}
                status = "duplicate"
            else:
                slot = self._next_slot
                entry = self._apply_add(slot, user, content_id, digest, vector, now)
                record = {"op": "add", "slot": slot, "user": user, "id": content_id, "digest": digest,
                          "added": now, "vector": _encode_vector(vector)}
                status = "added"
            try:
                self._log(record)
            except BaseException:
                # Not durable, so not served either: undo the change in memory.
                self._drop_id(content_id)
                if status == "duplicate":
                    entry.added = previous_time
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
                self._log({"op": "del", "id": content_id})
            except BaseException:
                self._restore(entry, *saved)
                raise
            return entry

    def _apply_add(
        self, slot: int, user: str, content_id: str, digest: str, vector: np.ndarray, added: float
    ) -> Entry:
        if self.dim is None:
            self.dim = int(vector.shape[0])
        entry = Entry(slot, user, [content_id], digest, added)
        self._next_slot = max(self._next_slot, slot + 1)
        self._append_row(slot, vector)
        self._entries[slot] = entry
        self._by_id[content_id] = slot
        self._by_content[(user, digest)] = slot
        self._by_user.setdefault(user, set()).add(slot)
        try:
            self._index_add(slot, vector)
        except BaseException:
            self._drop_id(content_id)
            raise
        return entry

    def _apply_duplicate(self, slot: int, content_id: str, added: float) -> None:
        entry = self._entries[slot]
        entry.ids.append(content_id)
        entry.added = added
        self._by_id[content_id] = slot

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

    def _journal_path(self, generation: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.stem}.{generation}.journal")

    def _log(self, record: dict) -> None:
        if self._journal is None:
            return
        self._journal.append(record)
        if self._journal.records >= self.snapshot_every:
            try:
                self.snapshot()
            except OSError as exc:  # the journal still holds everything: keep serving, retry at the next change
                log.error("%s: snapshot failed, the journal keeps the changes: %s", self.path, exc)

    def snapshot(self) -> None:
        """Folds the journal into a new snapshot (next generation) and removes the old journal."""
        if self.path is None:
            return
        with self._lock:
            vectors, slots = self._live()
            index_bytes = faiss.serialize_index(self._index) if self._index is not None else np.zeros(0, np.uint8)
            meta = self._meta()
            meta["generation"] = self.generation + 1
            meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)

            def write(handle) -> None:
                np.savez(handle, vectors=vectors, slots=slots, index=index_bytes, meta=meta_bytes)

            atomic_write(self.path, write)
            old = self._journal
            self.generation += 1
            self._journal = Journal(self._journal_path(self.generation))
            if old is not None:
                old.close()
                old.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Snapshots pending changes (a clean shutdown leaves no journal to replay)."""
        with self._lock:
            if self._journal is not None and self._journal.records:
                self.snapshot()
            if self._journal is not None:
                self._journal.close()

    def _replay(self, records: list[dict]) -> None:
        for record in records:
            op = record.get("op")
            if op == "add":
                self._apply_add(int(record["slot"]), record["user"], record["id"], record["digest"],
                                _decode_vector(record["vector"]), float(record["added"]))
            elif op == "dup":
                self._apply_duplicate(int(record["slot"]), record["id"], float(record["added"]))
            elif op == "del":
                if record["id"] in self._by_id:
                    self._drop_id(record["id"])
            else:
                raise StoreError(f"{self._journal_path(self.generation)}: unknown record {op!r}")

    def load(self) -> None:
        if self.path is None:
            return
        if self.path.exists():
            self._load_snapshot()
        with self._lock:
            journal_path = self._journal_path(self.generation)
            records = Journal.read(journal_path)
            try:
                self._replay(records)
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"{journal_path}: a journal record cannot be applied ({exc})") from exc
            self._journal = Journal(journal_path)
            self._journal.records = len(records)
            for stale in self.path.parent.glob(f"{self.path.stem}.*.journal"):
                if stale != journal_path:  # older generations are already in the snapshot
                    stale.unlink(missing_ok=True)

    def _load_snapshot(self) -> None:
        assert self.path is not None
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
            self.generation = int(meta.get("generation", 0))
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
