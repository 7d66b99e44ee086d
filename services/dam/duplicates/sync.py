"""Keeps NDD in step with the library and records the near-duplicate pairs it finds.

`ndd_entries` is the outbox: an image or video that has finished annotation (done or failed) gets a row,
queued for its collection (`<prefix>-owner-<id>` while private, `<prefix>-public` while public). A loop claims
queued rows in batches under a lease, sends their bytes to NDD as one indexing job, searches each new item in
its own collection and in the other one it may match (a private asset's owner may see public assets; a public
asset is compared with its owner's private ones), stores the pairs and only then marks the rows indexed. An
asset deleted, purged or moved to the other visibility turns its row to `removing`: NDD forgets the item and
the row goes (a moved asset is queued again for its new collection).

NDD down or failing: the batch's rows are retried with backoff (the upload and annotation never wait for
NDD); a crash mid-batch leaves the rows leased until the lease ends, then they are retried. Indexing an id
NDD already holds replaces the item with itself, so a retry never duplicates anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam.annotation.worker import backoff_seconds
from services.dam.blobstore import BlobStore
from services.dam.core.config import DamOptions
from services.dam.duplicates.client import Hit, NddClient, NddRejectedError, NddUnavailableError

log = logging.getLogger(__name__)

# A claimed batch is free again after this long without an outcome (a crashed DAM).
LEASE_S = 300.0
# Near-duplicates asked from NDD per search (the review shows groups, not long tails).
T_RANK = 20

_COLLECTION = "CASE WHEN a.visibility = 'public' THEN :public ELSE :owner || a.owner_id::text END"
# Annotated (or given up on) images and videos without a row get one.
DISCOVER = text(f"""
INSERT INTO ndd_entries (asset_id, kind, collection)
SELECT a.id, a.kind, {_COLLECTION} FROM assets a
WHERE a.kind IN ('image', 'video') AND a.deleted_at IS NULL AND a.annotation_state IN ('done', 'failed')
  AND NOT EXISTS (SELECT 1 FROM ndd_entries e WHERE e.asset_id = a.id)
ORDER BY a.id LIMIT 1000
ON CONFLICT DO NOTHING
""")
# Rows whose asset is gone or now belongs in another collection. A leased row keeps its lease: the
# removal must not run before a batch in flight has put the item into NDD.
STALE = text(f"""
UPDATE ndd_entries e SET state = 'removing', attempts = 0, available_at = GREATEST(e.available_at, now())
WHERE e.state <> 'removing' AND NOT EXISTS (
    SELECT 1 FROM assets a WHERE a.id = e.asset_id AND a.deleted_at IS NULL AND {_COLLECTION} = e.collection)
""")
CLAIM = text("""
UPDATE ndd_entries e SET attempts = e.attempts + 1, available_at = now() + make_interval(secs => :lease)
FROM (SELECT asset_id FROM ndd_entries WHERE state = :state AND available_at <= now()
      ORDER BY available_at, asset_id LIMIT :n FOR UPDATE SKIP LOCKED) due
WHERE e.asset_id = due.asset_id
RETURNING e.asset_id, e.kind, e.collection, e.attempts
""")
RETRY = text("""
UPDATE ndd_entries SET available_at = now() + make_interval(secs => :delay), last_error = :error
WHERE asset_id = ANY(:ids) AND state = :state
""")
INDEXED = text("""
UPDATE ndd_entries SET state = 'indexed', indexed_at = now(), last_error = NULL, available_at = now()
WHERE asset_id = :id AND state = 'queued' AND collection = :collection
""")
FAILED = text("""
UPDATE ndd_entries SET state = 'failed', last_error = :error, available_at = now()
WHERE asset_id = :id AND state = 'queued' AND collection = :collection
""")
REMOVED = text("DELETE FROM ndd_entries WHERE asset_id = :id AND state = 'removing' AND collection = :collection")
FORGET_MATCHES = text("""
DELETE FROM ndd_matches m WHERE (m.asset_a = :id OR m.asset_b = :id)
  AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.id = :id AND a.deleted_at IS NULL)
""")
# Both assets must still exist (the foreign keys), and a pair is stored once, lower id first.
PAIR = text("""
INSERT INTO ndd_matches (asset_a, asset_b, score, segments)
SELECT :a, :b, :score, CAST(:segments AS jsonb)
WHERE EXISTS (SELECT 1 FROM assets WHERE id = :a) AND EXISTS (SELECT 1 FROM assets WHERE id = :b)
ON CONFLICT (asset_a, asset_b) DO UPDATE SET score = EXCLUDED.score, segments = EXCLUDED.segments,
    found_at = now()
""")


@dataclass(frozen=True)
class Claimed:
    asset_id: int
    kind: str
    collection: str
    attempts: int


def collections(options: DamOptions) -> dict[str, str]:
    """The bind parameters naming the collections in the SQL above."""
    return {"public": f"{options.ndd_collection_prefix}-public", "owner": f"{options.ndd_collection_prefix}-owner-"}


def pair_of(query_id: int, hit: Hit) -> dict[str, Any] | None:
    """The ndd_matches row of a hit (None for the query itself or an id that is not an asset's)."""
    try:
        other = int(hit.item_id)
    except ValueError:
        return None
    if other == query_id:
        return None
    a, b = sorted((query_id, other))
    segments = None
    if hit.segments is not None:  # NDD speaks of query and reference: store them as the pair's a and b
        flip = query_id != a
        segments = [{"a_start": s["reference_start" if flip else "query_start"],
                     "a_end": s["reference_end" if flip else "query_end"],
                     "b_start": s["query_start" if flip else "reference_start"],
                     "b_end": s["query_end" if flip else "reference_end"]} for s in hit.segments]
    return {"a": a, "b": b, "score": round(hit.score, 4), "segments": json.dumps(segments) if segments else None}


class NddSync:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: NddClient, blobs: BlobStore,
                 options: DamOptions) -> None:
        self._sessions = sessions
        self._client = client
        self._blobs = blobs
        self._options = options
        self._names = collections(options)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ndd-sync")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.close()

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.step()
            except Exception:  # the database is briefly away; NDD errors are handled per batch
                log.exception("near-duplicate sync step failed")
                busy = False
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._options.ndd_interval_s)

    async def step(self) -> bool:
        """One round: new and stale rows found, one batch removed, one batch indexed. True if it did work."""
        async with self._sessions.begin() as session:
            await session.execute(DISCOVER, self._names)
            await session.execute(STALE, self._names)
        removed = await self._remove_batch()
        indexed = await self._index_batch()
        return bool(removed or indexed)

    async def _claim(self, state: str) -> list[Claimed]:
        async with self._sessions.begin() as session:
            rows = (await session.execute(CLAIM, {"state": state, "n": self._options.ndd_batch,
                                                  "lease": LEASE_S})).all()
        return [Claimed(*row) for row in rows]

    async def _retry(self, rows: list[Claimed], state: str, error: str) -> None:
        attempt = max(r.attempts for r in rows)
        delay = backoff_seconds(attempt, self._options.retry_base_s, self._options.retry_max_s)
        log.warning("NDD sync: %d asset(s) retried in %.1f s: %s", len(rows), delay, error)
        async with self._sessions.begin() as session:
            await session.execute(RETRY, {"ids": [r.asset_id for r in rows], "delay": delay, "error": error[:2000],
                                          "state": state})

    async def _remove_batch(self) -> int:
        rows = await self._claim("removing")
        for row in rows:
            try:
                await self._client.delete(row.kind, row.collection, str(row.asset_id))
            except (NddUnavailableError, NddRejectedError) as exc:
                await self._retry([row], "removing", str(exc))
                continue
            async with self._sessions.begin() as session:
                await session.execute(REMOVED, {"id": row.asset_id, "collection": row.collection})
                await session.execute(FORGET_MATCHES, {"id": row.asset_id})
        return len(rows)

    async def _index_batch(self) -> int:
        rows = await self._claim("queued")
        groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            groups[(row.kind, row.collection)].append(row)
        for (kind, collection), group in groups.items():
            try:
                await self._index_group(kind, collection, group)
            except NddUnavailableError as exc:
                await self._retry(group, "queued", str(exc))
            except NddRejectedError as exc:  # the whole job was refused: its items one by one decide
                if len(group) == 1:
                    await self._mark_failed(group[0], str(exc))
                else:
                    for row in group:
                        try:
                            await self._index_group(kind, collection, [row])
                        except NddUnavailableError as again:
                            await self._retry([row], "queued", str(again))
                        except NddRejectedError as refused:
                            await self._mark_failed(row, str(refused))
        return len(rows)

    async def _mark_failed(self, row: Claimed, error: str) -> None:
        log.warning("NDD refused asset %d: %s", row.asset_id, error)
        async with self._sessions.begin() as session:
            await session.execute(FAILED, {"id": row.asset_id, "collection": row.collection, "error": error[:2000]})

    async def _index_group(self, kind: str, collection: str, group: list[Claimed]) -> None:
        async with self._sessions() as session:
            assets = {r.id: r for r in (await session.execute(text(
                "SELECT id, sha256, filename, owner_id FROM assets WHERE id = ANY(:ids)"),
                {"ids": [g.asset_id for g in group]})).all()}
        live = [g for g in group if g.asset_id in assets]  # a purged asset's row turns `removing` next round
        data = {g.asset_id: await asyncio.to_thread(self._blobs.read, assets[g.asset_id].sha256) for g in live}
        result = await self._client.index(kind, collection, [(str(g.asset_id), data[g.asset_id],
                                                             assets[g.asset_id].filename) for g in live])
        for row in live:
            key = str(row.asset_id)
            if key in result.errors:
                await self._mark_failed(row, result.errors[key])
                continue
            if key not in result.indexed:
                continue  # neither indexed nor refused: the lease brings it back
            other = (f"{self._names['owner']}{assets[row.asset_id].owner_id}" if collection == self._names["public"]
                     else self._names["public"])
            threshold = self._options.ndd_threshold
            hits = await self._client.search_by_id(kind, collection, key, threshold, T_RANK)
            # The other collection is searched with the descriptors NDD stored for this item (computed once).
            hits += await self._client.search_by_id(kind, other, key, threshold, T_RANK, source=collection)
            async with self._sessions.begin() as session:
                for hit in hits:
                    if (pair := pair_of(row.asset_id, hit)) is not None:
                        await session.execute(PAIR, pair)
                await session.execute(INDEXED, {"id": row.asset_id, "collection": collection})
