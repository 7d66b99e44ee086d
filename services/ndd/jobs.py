"""Indexing jobs, durable: a job and its items (URLs or uploaded bytes) are committed to SQLite before the
caller gets its 202, and a background worker indexes them one at a time, in order. After a crash the worker
resumes with the first item not yet done; an item indexed just before the crash but not yet marked done is
indexed again, which replaces it with itself. Reports (progress, per-item errors and warnings) are read from
the same tables, so they survive restarts too; the last `kept` finished jobs are kept."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (finished, created);
CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    url TEXT,
    filename TEXT,
    data BLOB,
    state TEXT NOT NULL DEFAULT 'pending',
    message TEXT,
    warnings TEXT,
    PRIMARY KEY (job_id, position)
)
"""


class QueueFullError(RuntimeError):
    pass


@dataclass(frozen=True)
class NewItem:
    item_id: str
    url: str | None = None
    data: bytes | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    kind: str  # "image" or "video"
    collection_id: str


@dataclass(frozen=True)
class JobItem:
    job_id: str
    position: int
    item_id: str
    url: str | None
    data: bytes | None
    filename: str | None


class JobQueue:
    """The job tables, on a connection of their own (uploads are written without blocking searches)."""

    def __init__(self, path: Path, queue_size: int, kept: int) -> None:
        self.db = SqliteDatabase(path, SCHEMA)
        self.queue_size = queue_size
        self.kept = kept

    def close(self) -> None:
        self.db.close()

    def submit(self, kind: str, collection_id: str, items: list[NewItem]) -> dict[str, Any]:
        """Commits the job (durably) and returns its report; QueueFullError when too many wait."""
        job_id = uuid.uuid4().hex
        with self.db.transaction() as db:
            if db.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()[0] >= self.queue_size:
                raise QueueFullError(f"{self.queue_size} jobs are already waiting; retry later")
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, 'queued', ?, NULL)",
                       (job_id, kind, collection_id, time.time()))
            db.executemany("INSERT INTO job_items (job_id, position, item_id, url, filename, data) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(job_id, n, i.item_id, i.url, i.filename, i.data) for n, i in enumerate(items)])
        report = self.report(job_id)
        assert report is not None
        return report

    @property
    def waiting(self) -> int:
        with self.db.reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()[0])

    def next_job(self) -> Job | None:
        """The oldest unfinished job (one that a crash interrupted comes first)."""
        with self.db.reading() as db:
            row = db.execute("SELECT id, media_type, collection_id FROM jobs WHERE finished IS NULL "
                             "ORDER BY status='queued', created LIMIT 1").fetchone()
        return Job(*row) if row else None

    def start(self, job: Job) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE jobs SET status='running' WHERE id=?", (job.id,))

    def next_item(self, job: Job) -> JobItem | None:
        with self.db.reading() as db:
            row = db.execute("SELECT job_id, position, item_id, url, data, filename FROM job_items "
                             "WHERE job_id=? AND state='pending' ORDER BY position LIMIT 1", (job.id,)).fetchone()
        return JobItem(*row) if row else None

    def complete(self, item: JobItem, warnings: list[str]) -> None:
        self._settle(item, "done", None, warnings)

    def fail(self, item: JobItem, error: str) -> None:
        self._settle(item, "failed", error, [])

    def _settle(self, item: JobItem, state: str, message: str | None, warnings: list[str]) -> None:
        with self.db.transaction() as db:  # the upload is freed as soon as its item is settled
            db.execute("UPDATE job_items SET state=?, message=?, warnings=?, data=NULL WHERE job_id=? AND position=?",
                       (state, message, json.dumps(warnings) if warnings else None, item.job_id, item.position))

    def finish(self, job: Job) -> None:
        with self.db.transaction() as db:
            indexed, total = db.execute("SELECT COALESCE(SUM(state='done'), 0), COUNT(*) FROM job_items WHERE job_id=?",
                                        (job.id,)).fetchone()
            status = "done" if indexed or not total else "failed"
            db.execute("UPDATE jobs SET status=?, finished=? WHERE id=?", (status, time.time(), job.id))
            db.execute("DELETE FROM jobs WHERE finished IS NOT NULL AND id NOT IN "
                       "(SELECT id FROM jobs WHERE finished IS NOT NULL ORDER BY finished DESC LIMIT ?)", (self.kept,))

    def report(self, job_id: str) -> dict[str, Any] | None:
        with self.db.reading() as db:
            job = db.execute("SELECT id, media_type, collection_id, status, created, finished FROM jobs WHERE id=?",
                             (job_id,)).fetchone()
            if job is None:
                return None
            items = db.execute("SELECT item_id, state, message, warnings FROM job_items WHERE job_id=? "
                               "ORDER BY position", (job_id,)).fetchall()
        total = len(items)
        processed = sum(1 for _, state, _, _ in items if state != "pending")
        return {
            "job_id": job[0], "media_type": job[1], "collection_id": job[2], "status": job[3],
            "total": total, "processed": processed,
            "progress": round(processed / total, 4) if total else 1.0,
            "indexed": [i for i, state, _, _ in items if state == "done"],
            "errors": [{"id": i, "error": message} for i, state, message, _ in items if state == "failed"],
            "warnings": [{"id": i, "warning": w} for i, _, _, warnings in items for w in json.loads(warnings or "[]")],
            "created": job[4], "finished": job[5],
        }


# Indexes one item; returns warnings (e.g. a descriptor that could not be computed) or raises.
ItemHandler = Callable[[Job, JobItem], Awaitable[list[str]]]
JobDone = Callable[[Job], Awaitable[None]]


class JobWorker:
    """Runs the queue's jobs in order, one item at a time, until stopped."""

    def __init__(self, queue: JobQueue, handler: ItemHandler, on_done: JobDone) -> None:
        self.queue = queue
        self._handler = handler
        self._on_done = on_done
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ndd-job-worker")

    def wake(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def stop(self, grace_s: float = 0.0) -> None:
        """Lets the accepted jobs finish within `grace_s`, then stops; what is left resumes at the next start."""
        if self._task is None:
            return
        if grace_s > 0 and not self._task.done():
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except TimeoutError:
                log.warning("indexing jobs unfinished after %.0f s; they resume at the next start", grace_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            job = await asyncio.to_thread(self.queue.next_job)
            if job is None:
                self._idle.set()
                await self._wake.wait()
                continue
            try:
                await self._run_job(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken database, say: retry the job after a pause rather than spin
                log.exception("job %s could not be run; retrying", job.id)
                await asyncio.sleep(1.0)

    async def _run_job(self, job: Job) -> None:
        await asyncio.to_thread(self.queue.start, job)
        while (item := await asyncio.to_thread(self.queue.next_item, job)) is not None:
            try:
                warnings = await self._handler(job, item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await asyncio.to_thread(self.queue.fail, item, str(exc) or type(exc).__name__)
            else:
                await asyncio.to_thread(self.queue.complete, item, warnings)
        await asyncio.to_thread(self.queue.finish, job)
        try:
            await self._on_done(job)
        except Exception:  # saving the index caches is an optimisation: the items are in the database
            log.exception("after job %s: saving the indexes failed", job.id)
