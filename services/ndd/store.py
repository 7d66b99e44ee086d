"""Durable NDD state in one SQLite file: collections, items and their descriptors.

SQLite is embedded, transactional and crash-safe, so it is the source of truth; the FAISS indexes
are caches of it. Each (collection, media type, descriptor) has a generation number bumped in the
same transaction as every change, and a saved index is only trusted when its generation matches.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.common.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    item_id TEXT NOT NULL,
    meta TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (collection_id, media_type, item_id)
);
CREATE TABLE IF NOT EXISTS features (
    item_rowid INTEGER NOT NULL REFERENCES items(rowid) ON DELETE CASCADE,
    descriptor TEXT NOT NULL,
    vectors BLOB NOT NULL,
    extra BLOB,
    PRIMARY KEY (item_rowid, descriptor)
);
CREATE TABLE IF NOT EXISTS generations (
    collection_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    descriptor TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (collection_id, media_type, descriptor)
);
"""


class UnknownCollectionError(LookupError):
    pass


class DuplicateError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    rowid: int
    collection_id: str
    media_type: str
    item_id: str
    meta: dict[str, Any]
    created: float
    descriptors: tuple[str, ...] = ()


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def unpack(blob: bytes | None, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a packed blob; only `keys` when given (each array parsed costs ~0.2 ms)."""
    if not blob:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {key: data[key] for key in (data.files if keys is None else keys) if key in data.files}


class Store:
    def __init__(self, path: Path) -> None:
        self.db = SqliteDatabase(path, SCHEMA)
        with self.db.transaction() as db:  # deep vectors of databases made before spaces were named
            for table in ("features", "generations"):
                db.execute(f"UPDATE {table} SET descriptor='deep:unknown' WHERE descriptor='deep'")
        self._tx = self.db.transaction

    def close(self) -> None:
        self.db.close()

    # --------------------------------------------------------------------------- collections
    def create_collection(self, collection_id: str, name: str) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM collections WHERE id=?", (collection_id,)).fetchone():
                raise DuplicateError(f"collection {collection_id!r} already exists")
            created = time.time()
            db.execute("INSERT INTO collections VALUES (?, ?, ?)", (collection_id, name, created))
        return {"id": collection_id, "name": name, "created": created}

    def ensure_collection(self, collection_id: str, name: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO collections VALUES (?, ?, ?)", (collection_id, name, time.time()))

    def list_collections(self) -> list[dict[str, Any]]:
        with self.db.reading() as db:
            rows = db.execute(
                "SELECT c.id, c.name, c.created, "
                "(SELECT COUNT(*) FROM items i WHERE i.collection_id=c.id AND i.media_type='image'), "
                "(SELECT COUNT(*) FROM items i WHERE i.collection_id=c.id AND i.media_type='video') "
                "FROM collections c ORDER BY c.created"
            ).fetchall()
        return [{"id": r[0], "name": r[1], "created": r[2], "images": r[3], "videos": r[4]} for r in rows]

    def has_collection(self, collection_id: str) -> bool:
        with self.db.reading() as db:
            return db.execute("SELECT 1 FROM collections WHERE id=?", (collection_id,)).fetchone() is not None

    def require_collection(self, collection_id: str) -> None:
        if not self.has_collection(collection_id):
            raise UnknownCollectionError(f"collection {collection_id!r} does not exist")

    def delete_collection(self, collection_id: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM collections WHERE id=?", (collection_id,)).rowcount == 0:
                raise UnknownCollectionError(f"collection {collection_id!r} does not exist")
            db.execute("DELETE FROM generations WHERE collection_id=?", (collection_id,))

    # --------------------------------------------------------------------------------- items
    def add_item(
        self,
        collection_id: str,
        media_type: str,
        item_id: str,
        meta: dict[str, Any],
        features: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
        replace: bool = True,
    ) -> int:
        """Stores an item and its descriptors (replacing an item of the same id); returns its rowid."""
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM collections WHERE id=?", (collection_id,)).fetchone():
                raise UnknownCollectionError(f"collection {collection_id!r} does not exist")
            old = db.execute(
                "SELECT rowid FROM items WHERE collection_id=? AND media_type=? AND item_id=?",
                (collection_id, media_type, item_id),
            ).fetchone()
            touched = set(features)
            if old:
                if not replace:
                    raise DuplicateError(f"{media_type} {item_id!r} is already in collection {collection_id!r}")
                touched |= {r[0] for r in db.execute("SELECT descriptor FROM features WHERE item_rowid=?", old)}
                db.execute("DELETE FROM items WHERE rowid=?", old)
            cursor = db.execute(
                "INSERT INTO items (collection_id, media_type, item_id, meta, created) VALUES (?, ?, ?, ?, ?)",
                (collection_id, media_type, item_id, json.dumps(meta), time.time()),
            )
            rowid = int(cursor.lastrowid or 0)
            for descriptor, (vectors, extra) in features.items():
                db.execute(
                    "INSERT INTO features VALUES (?, ?, ?, ?)",
                    (rowid, descriptor, pack({"v": vectors}), pack(extra) if extra else None),
                )
            for descriptor in touched:
                self._bump(db, collection_id, media_type, descriptor)
        return rowid

    @staticmethod
    def _bump(db: sqlite3.Connection, collection_id: str, media_type: str, descriptor: str) -> None:
        db.execute(
            "INSERT INTO generations VALUES (?, ?, ?, 1) ON CONFLICT (collection_id, media_type, descriptor) "
            "DO UPDATE SET generation = generation + 1",
            (collection_id, media_type, descriptor),
        )

    def delete_item(self, collection_id: str, media_type: str, item_id: str) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT rowid FROM items WHERE collection_id=? AND media_type=? AND item_id=?",
                (collection_id, media_type, item_id),
            ).fetchone()
            if not row:
                raise KeyError(f"{media_type} {item_id!r} is not in collection {collection_id!r}")
            descriptors = [r[0] for r in db.execute("SELECT descriptor FROM features WHERE item_rowid=?", row)]
            db.execute("DELETE FROM items WHERE rowid=?", row)
            for descriptor in descriptors:
                self._bump(db, collection_id, media_type, descriptor)

    @staticmethod
    def _item(db: sqlite3.Connection, row: tuple) -> Item:
        descriptors = tuple(r[0] for r in db.execute(
            "SELECT descriptor FROM features WHERE item_rowid=? ORDER BY descriptor", (row[0],)))
        return Item(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], descriptors)

    def get_item(self, collection_id: str, media_type: str, item_id: str) -> Item | None:
        with self.db.reading() as db:
            row = db.execute(
                "SELECT rowid, collection_id, media_type, item_id, meta, created FROM items "
                "WHERE collection_id=? AND media_type=? AND item_id=?",
                (collection_id, media_type, item_id),
            ).fetchone()
            return self._item(db, row) if row else None

    def items_by_rowid(self, rowids: list[int]) -> dict[int, Item]:
        if not rowids:
            return {}
        with self.db.reading() as db:
            marks = ",".join("?" * len(rowids))
            rows = db.execute(
                f"SELECT rowid, collection_id, media_type, item_id, meta, created FROM items WHERE rowid IN ({marks})",
                rowids,
            ).fetchall()
            return {row[0]: self._item(db, row) for row in rows}

    def list_items(self, collection_id: str, media_type: str, offset: int, limit: int) -> tuple[list[Item], int]:
        with self.db.reading() as db:
            total = db.execute(
                "SELECT COUNT(*) FROM items WHERE collection_id=? AND media_type=?", (collection_id, media_type)
            ).fetchone()[0]
            rows = db.execute(
                "SELECT rowid, collection_id, media_type, item_id, meta, created FROM items "
                "WHERE collection_id=? AND media_type=? ORDER BY rowid LIMIT ? OFFSET ?",
                (collection_id, media_type, limit, offset),
            ).fetchall()
            return [self._item(db, r) for r in rows], int(total)

    # ------------------------------------------------------------------------------ features
    def features(self, rowid: int, descriptor: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        with self.db.reading() as db:
            row = db.execute(
                "SELECT vectors, extra FROM features WHERE item_rowid=? AND descriptor=?", (rowid, descriptor)
            ).fetchone()
        if not row:
            return None
        return unpack(row[0])["v"], unpack(row[1])

    def extra(self, rowid: int, descriptor: str, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        """Some arrays of a stored descriptor's extra blob, without reading its vectors."""
        with self.db.reading() as db:
            row = db.execute("SELECT extra FROM features WHERE item_rowid=? AND descriptor=?",
                             (rowid, descriptor)).fetchone()
        return None if not row else unpack(row[0], keys)

    def all_vectors(self, collection_id: str, media_type: str, descriptor: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(vectors, owner rowid per vector, generation) of one index, read in one snapshot."""
        with self._tx() as db:
            generation = self._generation(db, collection_id, media_type, descriptor)
            rows = db.execute(
                "SELECT i.rowid, f.vectors FROM items i JOIN features f ON f.item_rowid=i.rowid "
                "WHERE i.collection_id=? AND i.media_type=? AND f.descriptor=? ORDER BY i.rowid",
                (collection_id, media_type, descriptor),
            ).fetchall()
        blocks = [unpack(blob)["v"] for _, blob in rows]
        if not blocks:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), generation
        owners = np.concatenate([np.full(len(b), rowid, np.int64) for (rowid, _), b in zip(rows, blocks, strict=True)])
        return np.concatenate(blocks), owners, generation

    def index_keys(self, collection_id: str, media_type: str | None = None) -> list[tuple[str, str]]:
        """(media type, descriptor) of every index the collection has had (deep descriptors: one per space)."""
        with self.db.reading() as db:
            rows = db.execute("SELECT media_type, descriptor FROM generations WHERE collection_id=? "
                              "AND media_type=COALESCE(?, media_type) ORDER BY media_type, descriptor",
                              (collection_id, media_type)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def generation(self, collection_id: str, media_type: str, descriptor: str) -> int:
        with self.db.reading() as db:
            return self._generation(db, collection_id, media_type, descriptor)

    @staticmethod
    def _generation(db: sqlite3.Connection, collection_id: str, media_type: str, descriptor: str) -> int:
        row = db.execute(
            "SELECT generation FROM generations WHERE collection_id=? AND media_type=? AND descriptor=?",
            (collection_id, media_type, descriptor),
        ).fetchone()
        return int(row[0]) if row else 0
