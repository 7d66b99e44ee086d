"""Annotation workers: claim outbox rows with FOR UPDATE SKIP LOCKED, stream the asset to the annotation
service and store each model's result the moment it arrives. Failures are retried with backoff.

On shutdown the workers stop claiming, jobs in flight get a grace period to finish, and a job cut
short is released back to `queued` (its attempt not counted), so a restart picks it up at once
instead of after the claim's lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam import metrics
from services.dam.annotation.client import AnnotationClient, AnnotationServiceError
from services.dam.annotation.results import parse_stream_message
from services.dam.annotation.store import (
    fail_asset,
    finish_asset,
    release_asset,
    retry_asset,
    start_asset,
    store_result,
)
from services.dam.blobstore import BlobStore
from services.dam.core.config import DamOptions
from services.dam.indexer import Indexer

log = logging.getLogger(__name__)

# A claim is a lease: a worker that dies mid-stream leaves the row to be claimed again after it expires.
_CLAIM = text("""
UPDATE annotation_jobs j SET state = 'running', attempts = j.attempts + 1,
    locked_until = now() + make_interval(secs => :lease)
WHERE j.id = (
    SELECT id FROM annotation_jobs
    WHERE (state = 'queued' AND available_at <= now()) OR (state = 'running' AND locked_until < now())
    ORDER BY available_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING j.id, j.asset_id, j.attempts
""")
# Undoes a claim: the job is free again now, and the interrupted try does not count as an attempt.
_RELEASE = text("""
UPDATE annotation_jobs SET state = 'queued', locked_until = NULL, attempts = GREATEST(attempts - 1, 0)
WHERE id = :id AND state = 'running' RETURNING asset_id
""")


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential with full jitter in its upper half, so retries of many assets spread out."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (0.5 + random.random() / 2)


async def enqueue(session: AsyncSession, asset_id: int, models: list[str] | None = None) -> int:
    """The outbox row, written in the caller's transaction; `models` runs only those (None: the configured set).
    Returns the job's id."""
    return int((await session.execute(text(
        "INSERT INTO annotation_jobs (asset_id, models) VALUES (:id, :models) RETURNING id"),
        {"id": asset_id, "models": models})).scalar_one())


class AnnotationWorkers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: AnnotationClient, blobs: BlobStore,
                 indexer: Indexer, options: DamOptions, poll_interval_s: float = 0.5) -> None:
        self._sessions = sessions
        self._client = client
        self._blobs = blobs
        self._indexer = indexer
        self._options = options
        self._poll = poll_interval_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    def start(self, count: int) -> None:
        self._tasks = [asyncio.create_task(self._loop(i), name=f"annotation-worker-{i}") for i in range(count)]

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop_claiming(self) -> None:
        """No new jobs from now on; safe to call from a signal handler (it only sets a flag)."""
        self._stopping = True

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stops claiming, lets running jobs finish within `grace_s`, then cancels the rest, whose
        claims are released (see `run_job`)."""
        self._stopping = True
        self._wake.set()  # idle workers leave their wait now
        pending = {task for task in self._tasks if not task.done()}
        if pending and grace_s > 0:
            _, pending = await asyncio.wait(pending, timeout=grace_s)
        if pending:
            log.warning("%d annotation job(s) still running after %.0f s; releasing them", len(pending), grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self, index: int) -> None:
        while not self._stopping:
            try:
                job = await self._claim()
            except Exception:  # the database is briefly away: wait and try again
                log.exception("worker %d: cannot claim a job", index)
                job = None
            if job is None:
                self._wake.clear()
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                continue
            if self._stopping:  # claimed while the stop began: hand it back untouched
                await self._release(job[0])
                break
            await self.run_job(*job)

    async def _claim(self) -> tuple[int, int, int] | None:
        async with self._sessions.begin() as session:
            row = (await session.execute(_CLAIM, {"lease": self._options.job_lease_s})).first()
            if row:
                await start_asset(session, row[1])
        return (row[0], row[1], row[2]) if row else None

    async def run_job(self, job_id: int, asset_id: int, attempt: int) -> None:
        try:
            await self._run_job(job_id, asset_id, attempt)
        except asyncio.CancelledError:
            # Shutdown cut the job short: release the claim rather than leave the row `running`
            # until its lease ends. Results already stored stay; the re-run replaces them.
            await self._release(job_id)
            raise

    async def _release(self, job_id: int) -> None:
        try:
            async with self._sessions.begin() as session:
                asset_id = (await session.execute(_RELEASE, {"id": job_id})).scalar_one_or_none()
                if asset_id is not None:
                    await release_asset(session, asset_id)
            log.info("annotation job %d released back to the queue", job_id)
        except Exception:  # the lease still frees it later
            log.exception("annotation job %d: cannot release its claim", job_id)

    async def _run_job(self, job_id: int, asset_id: int, attempt: int) -> None:
        async with self._sessions() as session:
            asset = (await session.execute(text(
                "SELECT a.kind, a.sha256, a.deleted_at, j.models FROM assets a JOIN annotation_jobs j ON j.id = :job "
                "WHERE a.id = :id"), {"id": asset_id, "job": job_id})).first()
        if asset is None or asset.deleted_at is not None:
            await self._finish_job(job_id, "done", "asset deleted before annotation")
            return
        try:
            data = await asyncio.to_thread(self._blobs.read, asset.sha256)
            async for message in self._client.stream(asset.kind, data, models=asset.models):
                result = parse_stream_message(message)
                if result is None:
                    continue
                async with self._sessions.begin() as session:
                    await store_result(session, asset_id, result)
                metrics.ANNOTATION_RESULTS.labels(result.task, str(result.ok).lower()).inc()
                self._indexer.mark(asset_id)  # written with the next bulk, or below at the end
        except (AnnotationServiceError, OSError) as exc:
            permanent = isinstance(exc, AnnotationServiceError) and exc.permanent
            await self._failed(job_id, asset_id, attempt, str(exc), permanent)
            return
        except Exception as exc:
            log.exception("asset %d: annotation failed", asset_id)
            await self._failed(job_id, asset_id, attempt, f"{type(exc).__name__}: {exc}", permanent=False)
            return
        await self._indexer.flush(asset_id)  # `done` means searchable
        async with self._sessions.begin() as session:
            failed = await finish_asset(session, asset_id)
            await session.execute(text("UPDATE annotation_jobs SET state = 'done', finished_at = now(), "
                                       "locked_until = NULL WHERE id = :id"), {"id": job_id})
        metrics.ANNOTATION_JOBS.labels("done_with_failures" if failed else "done").inc()

    async def _failed(self, job_id: int, asset_id: int, attempt: int, error: str, permanent: bool) -> None:
        if permanent or attempt >= self._options.max_attempts:
            log.warning("asset %d: annotation failed for good after %d attempt(s): %s", asset_id, attempt, error)
            await self._indexer.flush(asset_id)  # results that arrived before the failure
            async with self._sessions.begin() as session:
                await fail_asset(session, asset_id, error)
                await session.execute(text("UPDATE annotation_jobs SET state = 'failed', last_error = :e, "
                                           "finished_at = now(), locked_until = NULL WHERE id = :id"),
                                      {"e": error[:2000], "id": job_id})
            metrics.ANNOTATION_JOBS.labels("failed").inc()
            return
        delay = backoff_seconds(attempt, self._options.retry_base_s, self._options.retry_max_s)
        log.info("asset %d: attempt %d failed (%s); retrying in %.1f s", asset_id, attempt, error, delay)
        await self._indexer.flush(asset_id)
        async with self._sessions.begin() as session:
            await session.execute(text("""
                UPDATE annotation_jobs SET state = 'queued', last_error = :e, locked_until = NULL,
                    available_at = now() + make_interval(secs => :delay) WHERE id = :id"""),
                {"e": error[:2000], "delay": delay, "id": job_id})
            await retry_asset(session, asset_id, error)
        metrics.ANNOTATION_JOBS.labels("retry").inc()

    async def _finish_job(self, job_id: int, state: str, note: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(text("UPDATE annotation_jobs SET state = :s, last_error = :n, finished_at = now(), "
                                       "locked_until = NULL WHERE id = :id"), {"s": state, "n": note, "id": job_id})
