"""The CMRR's source of truth, one SQLite file: every content (its bytes, so a new embedding model can encode
it later), the ids users gave it and its vector in each embedding space. A change is committed before the
request is answered; the FAISS indexes are caches rebuilt from here.

Duplicates (source document, Table 22 note): content a user adds again under another id is stored once; the new
id joins that content's ids and results name the most recent one. Ids belong to their user, as in the original
service; an id the user re-sends with other content moves to that content (the original accepted it too, then
answered with one id for two contents), and content whose last id goes is deleted.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.common.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS contents (
    slot INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    modality TEXT NOT NULL,
    digest TEXT NOT NULL,
    body BLOB NOT NULL,
    added REAL NOT NULL,
    UNIQUE (user, modality, digest)
);
CREATE TABLE IF NOT EXISTS content_ids (
    user TEXT NOT NULL,
    id TEXT NOT NULL,
    slot INTEGER NOT NULL REFERENCES contents(slot) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user, id)
);
CREATE INDEX IF NOT EXISTS content_ids_by_slot ON content_ids (slot, seq);
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL,
    slot INTEGER NOT NULL REFERENCES contents(slot) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (space, slot)
);
CREATE INDEX IF NOT EXISTS vectors_by_slot ON vectors (slot);
CREATE TABLE IF NOT EXISTS generations (
    space TEXT NOT NULL,
    modality TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (space, modality)
)
"""


@dataclass(frozen=True)
class Entry:
    slot: int
    modality: str
    ids: list[str]
    added: float

    @property
    def latest_id(self) -> str:
        return self.ids[-1]


@dataclass
class Change:
    """What an add or delete did, for the indexes: slots gone and vectors new, per (space, modality)."""

    status: str = ""  # added | duplicate | exists | replaced | deleted
    entry: Entry | None = None
    removed: list[tuple[str, str, int]] = field(default_factory=list)  # (space, modality, slot)
    added: list[tuple[str, str, int, np.ndarray]] = field(default_factory=list)  # (space, modality, slot, vector)
    generations: dict[tuple[str, str], int] = field(default_factory=dict)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, "<f4").tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, "<f4").astype(np.float32)


class ContentStore:
    def __init__(self, path: Path) -> None:
        self.db = SqliteDatabase(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------------
    def add(self, user: str, content_id: str, modality: str, digest: str, body: bytes,
            vectors: dict[str, np.ndarray]) -> Change:
        change = Change()
        with self.db.transaction() as db:
            held = db.execute("SELECT c.slot, c.modality, c.digest FROM content_ids i JOIN contents c USING (slot) "
                              "WHERE i.user=? AND i.id=?", (user, content_id)).fetchone()
            if held is not None and (held[1], held[2]) == (modality, digest):
                change.status, change.entry = "exists", self._entry(db, held[0])
                return change
            if held is not None:
                self._drop_id(db, user, content_id, change)
            now = time.time()
            same = db.execute("SELECT slot FROM contents WHERE user=? AND modality=? AND digest=?",
                              (user, modality, digest)).fetchone()
            if same is not None:
                slot, status = int(same[0]), "duplicate"
                db.execute("UPDATE contents SET added=? WHERE slot=?", (now, slot))
            else:
                slot, status = self._insert(db, user, modality, digest, body, now, vectors, change), "added"
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM content_ids WHERE slot=?", (slot,)).fetchone()[0]
            db.execute("INSERT INTO content_ids VALUES (?, ?, ?, ?)", (user, content_id, slot, seq))
            change.status = "replaced" if held is not None else status
            change.entry = self._entry(db, slot)
        return change

    def _insert(self, db: sqlite3.Connection, user: str, modality: str, digest: str, body: bytes, now: float,
                vectors: dict[str, np.ndarray], change: Change) -> int:
        cursor = db.execute("INSERT INTO contents (user, modality, digest, body, added) VALUES (?, ?, ?, ?, ?)",
                            (user, modality, digest, body, now))
        slot = int(cursor.lastrowid or 0)
        for space, vector in vectors.items():
            self._put_vector(db, space, modality, slot, vector, change)
        return slot

    def _put_vector(self, db: sqlite3.Connection, space: str, modality: str, slot: int, vector: np.ndarray,
                    change: Change) -> None:
        db.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", (space, slot, _blob(vector)))
        change.added.append((space, modality, slot, np.asarray(vector, np.float32)))
        change.generations[(space, modality)] = self._bump(db, space, modality)

    def delete(self, user: str, content_id: str) -> Change:
        """Drops one id of the user's; the content goes with its last id. Status "" when the id is unknown."""
        change = Change()
        with self.db.transaction() as db:
            if (held := self._drop_id(db, user, content_id, change)) is not None:
                change.status = "deleted"
                change.entry = Entry(held[0], held[1], self._ids(db, held[0]), 0.0)
        return change

    def _drop_id(self, db: sqlite3.Connection, user: str, content_id: str, change: Change) -> tuple[int, str] | None:
        """Drops the id (and its content when it was the last id); (slot, modality) it had, None if unknown."""
        row = db.execute("SELECT slot, c.modality FROM content_ids JOIN contents c USING (slot) "
                         "WHERE content_ids.user=? AND id=?", (user, content_id)).fetchone()
        if row is None:
            return None
        slot, modality = int(row[0]), str(row[1])
        db.execute("DELETE FROM content_ids WHERE user=? AND id=?", (user, content_id))
        if db.execute("SELECT 1 FROM content_ids WHERE slot=? LIMIT 1", (slot,)).fetchone():
            return slot, modality
        spaces = [r[0] for r in db.execute("SELECT space FROM vectors WHERE slot=?", (slot,))]
        db.execute("DELETE FROM contents WHERE slot=?", (slot,))
        for space in spaces:
            change.removed.append((space, modality, slot))
            change.generations[(space, modality)] = self._bump(db, space, modality)
        return slot, modality

    def add_vectors(self, space: str, modality: str, vectors: dict[int, np.ndarray]) -> Change:
        """Vectors of a space added later (a new embedding model) for contents still there."""
        change = Change()
        with self.db.transaction() as db:
            for slot, vector in vectors.items():
                if db.execute("SELECT 1 FROM contents WHERE slot=?", (slot,)).fetchone():
                    self._put_vector(db, space, modality, slot, vector, change)
        return change

    @staticmethod
    def _bump(db: sqlite3.Connection, space: str, modality: str) -> int:
        [(generation,)] = db.execute("INSERT INTO generations VALUES (?, ?, 1) ON CONFLICT (space, modality) "
                                     "DO UPDATE SET generation = generation + 1 RETURNING generation",
                                     (space, modality)).fetchall()  # all rows read: the statement is done
        return int(generation)

    # -- reading -------------------------------------------------------------------------------------
    @staticmethod
    def _ids(db: sqlite3.Connection, slot: int) -> list[str]:
        return [r[0] for r in db.execute("SELECT id FROM content_ids WHERE slot=? ORDER BY seq", (slot,))]

    def _entry(self, db: sqlite3.Connection, slot: int) -> Entry:
        modality, added = db.execute("SELECT modality, added FROM contents WHERE slot=?", (slot,)).fetchone()
        return Entry(slot, modality, self._ids(db, slot), float(added))

    def generation(self, space: str, modality: str) -> int:
        with self.db.reading() as db:
            row = db.execute("SELECT generation FROM generations WHERE space=? AND modality=?",
                             (space, modality)).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        with self.db.reading() as db:
            return dict(db.execute("SELECT modality, COUNT(*) FROM contents GROUP BY modality").fetchall())

    def count_others(self, modality: str, user: str) -> int:
        with self.db.reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM contents WHERE modality=? AND user<>?",
                                  (modality, user)).fetchone()[0])

    def user_slots(self, user: str, modality: str) -> np.ndarray:
        with self.db.reading() as db:
            rows = db.execute("SELECT slot FROM contents WHERE user=? AND modality=?", (user, modality)).fetchall()
        return np.array([r[0] for r in rows], np.int64)

    def user_entries(self, user: str, modality: str) -> list[Entry]:
        with self.db.reading() as db:
            slots = [r[0] for r in db.execute("SELECT slot FROM contents WHERE user=? AND modality=? "
                                              "ORDER BY added, slot", (user, modality))]
            return [self._entry(db, slot) for slot in slots]

    def user_vectors(self, user: str, modality: str, space: str, limit: int) -> np.ndarray:
        """The vectors of the user's most recent `limit` contents of a modality in a space, oldest first."""
        with self.db.reading() as db:
            rows = db.execute("SELECT v.vector FROM contents c JOIN vectors v ON v.slot=c.slot AND v.space=? "
                              "WHERE c.user=? AND c.modality=? ORDER BY c.added DESC, c.slot DESC LIMIT ?",
                              (space, user, modality, limit)).fetchall()
        return np.stack([_vector(r[0]) for r in reversed(rows)]) if rows else np.zeros((0, 0), np.float32)

    def latest_ids(self, slots: list[int]) -> dict[int, str]:
        with self.db.reading() as db:
            return {slot: ids[-1] for slot in slots if (ids := self._ids(db, slot))}

    def all_vectors(self, space: str, modality: str) -> tuple[np.ndarray, np.ndarray]:
        with self.db.reading() as db:
            rows = db.execute("SELECT v.slot, v.vector FROM vectors v JOIN contents c ON c.slot=v.slot "
                              "WHERE v.space=? AND c.modality=? ORDER BY v.slot", (space, modality)).fetchall()
        if not rows:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        return np.stack([_vector(r[1]) for r in rows]), np.array([r[0] for r in rows], np.int64)

    def missing_vectors(self, space: str, modality: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(slot, body) of contents after slot `after` with no vector in the space yet, oldest first."""
        with self.db.reading() as db:
            return db.execute("SELECT slot, body FROM contents c WHERE modality=? AND slot>? AND NOT EXISTS "
                              "(SELECT 1 FROM vectors v WHERE v.space=? AND v.slot=c.slot) ORDER BY slot LIMIT ?",
                              (modality, after, space, limit)).fetchall()

    def count_missing(self, space: str, modality: str) -> int:
        with self.db.reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM contents c WHERE modality=? AND NOT EXISTS "
                                  "(SELECT 1 FROM vectors v WHERE v.space=? AND v.slot=c.slot)",
                                  (modality, space)).fetchone()[0])
