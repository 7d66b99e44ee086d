"""Annotation workers: claim outbox rows with FOR UPDATE SKIP LOCKED, stream the asset to the annotation
service and store each model's result the moment it arrives (results that arrived while the previous ones
were written share one transaction). Failures are retried with backoff.

On shutdown the workers stop claiming, jobs in flight get a grace period to finish, and a job cut
short is released back to `queued` (its attempt not counted), so a restart picks it up at once
instead of after the claim's lease. After a crash, the restarted DAM reclaims its previous run's jobs
at startup (claims.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protos.media_annotation_pb2 import ImageAnnotationStreamResponse
from services.dam import metrics
from services.dam.annotation.claims import CLAIM, HEARTBEAT, RECLAIM, RELEASE, Node
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
from services.dam.core.blob_links import BlobLinks
from services.dam.core.config import DamOptions
from services.dam.core.priority import Foreground
from services.dam.indexer import Indexer

log = logging.getLogger(__name__)
T = TypeVar("T")

def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential with full jitter in its upper half, so retries of many assets spread out."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class _End:
    """The end of the stream read by `arrivals`, with its error if it failed."""

    error: BaseException | None = None


async def arrivals(stream: AsyncIterator[T], most: int = 64) -> AsyncIterator[list[T]]:
    """The stream's items in lists: the first one as soon as it comes, with every item that arrived while the
    consumer was busy with the previous list (no added wait). The stream's error is raised here."""
    queue: asyncio.Queue[T | _End] = asyncio.Queue()

    async def read() -> None:
        try:
            async for item in stream:
                queue.put_nowait(item)
            queue.put_nowait(_End())
        except BaseException as exc:  # handed to the consumer, cancellation included
            queue.put_nowait(_End(exc))

    reader = asyncio.create_task(read())
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            batch = [item]
            while len(batch) < most and not queue.empty():
                item = queue.get_nowait()
                if isinstance(item, _End):
                    queue.put_nowait(item)  # the end (or the error) after this list
                    break
                batch.append(item)
            yield batch
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def enqueue(session: AsyncSession, asset_id: int, models: list[str] | None = None) -> int:
    """The outbox row, written in the caller's transaction; `models` runs only those (None: the configured set).
    Returns the job's id."""
    return int((await session.execute(text(
        "INSERT INTO annotation_jobs (asset_id, models) VALUES (:id, :models) RETURNING id"),
        {"id": asset_id, "models": models})).scalar_one())


class AnnotationWorkers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: AnnotationClient, blobs: BlobStore,
                 indexer: Indexer, options: DamOptions, node: Node, links: BlobLinks,
                 foreground: Foreground | None = None, poll_interval_s: float = 0.5) -> None:
        self._sessions = sessions
        self._foreground = foreground or Foreground(0)  # interactive requests go first (core/priority.py)
        self._node = node
        self._held: set[int] = set()  # ids of the jobs this process runs now (renewed by the heartbeat)
        self._client = client
        self._blobs = blobs
        self._links = links
        self._indexer = indexer
        self._options = options
        self._poll = poll_interval_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._keeper: asyncio.Task | None = None
        self._reclaimed = asyncio.Event()  # workers claim only after the previous run's claims are back
        self._stopping = False

    def start(self, count: int) -> None:
        self._tasks = [asyncio.create_task(self._loop(i), name=f"annotation-worker-{i}") for i in range(count)]
        self._keeper = asyncio.create_task(self._keep_claims(), name="annotation-claims")

    async def reclaim(self) -> list[int]:
        """Jobs the previous run of this node held when it died go back to the queue now."""
        if not self._node.exclusive:
            return []
        async with self._sessions.begin() as session:
            rows = (await session.execute(RECLAIM, {"node": self._node.id})).all()
            for _, asset_id in rows:
                await release_asset(session, asset_id)
        ids = [job_id for job_id, _ in rows]
        if ids:
            log.warning("reclaimed %d annotation job(s) the previous run held: %s", len(ids), ids[:20])
            self._wake.set()
        return ids

    async def _keep_claims(self) -> None:
        """Reclaims at startup, then renews this process's claims every quarter lease."""
        while True:
            try:
                await self.reclaim()
                self._reclaimed.set()
                break
            except Exception:  # the database is briefly away
                log.exception("cannot reclaim the previous run's annotation jobs; retrying")
                await asyncio.sleep(self._poll)
        while True:
            await asyncio.sleep(self._options.job_lease_s / 4)
            if not self._held:
                continue
            try:
                async with self._sessions.begin() as session:
                    await session.execute(HEARTBEAT, {"ids": sorted(self._held), "node": self._node.id,
                                                      "lease": self._options.job_lease_s})
            except Exception:  # the next beat tries again; the lease covers three missed ones
                log.exception("annotation claims heartbeat failed")

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
        self._reclaimed.set()
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        pending = {task for task in self._tasks if not task.done()}
        if pending and grace_s > 0:
            _, pending = await asyncio.wait(pending, timeout=grace_s)
        if pending:
            log.warning("%d annotation job(s) still running after %.0f s; releasing them", len(pending), grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self, index: int) -> None:
        await self._reclaimed.wait()
        while not self._stopping:
            try:
                await self._foreground.yield_to()
                jobs = await self._claim()
            except Exception:  # the database is briefly away: wait and try again
                log.exception("worker %d: cannot claim a job", index)
                jobs = []
            if not jobs:
                self._wake.clear()
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                continue
            if self._stopping:  # claimed while the stop began: hand them back untouched
                for job in jobs:
                    await self._release(job[0])
                break
            if len(jobs) == 1:
                await self.run_job(*jobs[0])
            else:
                await self.run_batch(jobs)

    async def _claim(self) -> list[tuple[int, int, int]]:
        """Up to `annotation_batch` waiting jobs (fewer when fewer wait: a lone upload is not held back)."""
        async with self._sessions.begin() as session:
            rows = (await session.execute(CLAIM, {"lease": self._options.job_lease_s, "node": self._node.id,
                                                  "n": self._options.annotation_batch})).all()
            for row in rows:
                await start_asset(session, row[1])
        return sorted((row[0], row[1], row[2]) for row in rows)

    async def run_job(self, job_id: int, asset_id: int, attempt: int) -> None:
        self._held.add(job_id)
        try:
            await self._run_job(job_id, asset_id, attempt)
        except asyncio.CancelledError:
            # Shutdown cut the job short: release the claim rather than leave the row `running`
            # until its lease ends. Results already stored stay; the re-run replaces them.
            await self._release(job_id)
            raise
        finally:
            self._held.discard(job_id)

    async def run_batch(self, jobs: list[tuple[int, int, int]]) -> None:
        """Several jobs: their inline images go in one ImageAnnotationStreamBatch call, the rest (videos,
        linked blobs, a batch of one) one stream each as in `run_job`."""
        self._held.update(job[0] for job in jobs)
        try:
            async with self._sessions() as session:
                rows = {r.job: r for r in (await session.execute(text(
                    "SELECT j.id AS job, a.kind, a.sha256, a.size, a.deleted_at, j.models FROM annotation_jobs j "
                    "JOIN assets a ON a.id = j.asset_id WHERE j.id = ANY(:jobs)"),
                    {"jobs": [job[0] for job in jobs]})).all()}
            inline_max = self._options.inline_max_mb * 1024 * 1024
            together = [job for job in jobs if job[0] in rows and rows[job[0]].deleted_at is None
                        and rows[job[0]].kind == "image" and rows[job[0]].size <= inline_max]
            alone = [job for job in jobs if job not in together]
            if len(together) > 1:
                await self._run_batch(together, rows)
            else:
                alone += together
            for job in alone:
                await self.run_job(*job)
        except asyncio.CancelledError:
            for job_id in list(self._held & {job[0] for job in jobs}):
                await self._release(job_id)
            raise
        finally:
            self._held.difference_update(job[0] for job in jobs)

    async def _run_batch(self, jobs: list[tuple[int, int, int]], rows: dict) -> None:
        """One batch call; each message is stored as soon as it arrives (those that arrived while the previous
        ones were written share one transaction), each asset is finished, retried or failed on its own, and
        all finished ones share one search-index bulk."""
        datas = await asyncio.gather(*(asyncio.to_thread(self._blobs.read, rows[job[0]].sha256) for job in jobs))
        failed: dict[int, AnnotationServiceError] = {}
        try:
            stream = self._client.stream_batch([(data, rows[job[0]].models) for job, data in zip(jobs, datas,
                                                                                                 strict=True)])
            async for arrived in arrivals(stream):
                stored = []
                for index, message in arrived:
                    if isinstance(message, AnnotationServiceError):
                        failed[index] = message
                    elif (result := parse_stream_message(message)) is not None:
                        stored.append((jobs[index][1], result))
                if not stored:
                    continue
                await self._foreground.yield_to()
                others: set[int] = set()
                async with self._sessions.begin() as session:  # what arrived meanwhile: one transaction
                    for asset_id, result in stored:
                        others.update(await store_result(session, asset_id, result))
                for other in others:  # their faces joined a person with this asset's
                    self._indexer.mark(other)
                for asset_id, result in stored:
                    metrics.ANNOTATION_RESULTS.labels(result.task, str(result.ok).lower()).inc()
                    self._indexer.mark(asset_id)
        except (AnnotationServiceError, OSError) as exc:
            if isinstance(exc, AnnotationServiceError) and exc.permanent:
                # The call was refused as a whole (e.g. one request over a limit): each asset on its own
                # stream, so only the one at fault fails (results stored so far are replaced by the re-run).
                log.warning("batch of assets %s refused (%s); one stream each", [j[1] for j in jobs], exc)
                for job in jobs:
                    await self._run_job(*job)
                return
            for job_id, asset_id, attempt in jobs:  # the service is away: every asset of the batch retries
                await self._failed(job_id, asset_id, attempt, str(exc), permanent=False)
            return
        except Exception as exc:
            log.exception("assets %s: batch annotation failed", [job[1] for job in jobs])
            for job_id, asset_id, attempt in jobs:
                await self._failed(job_id, asset_id, attempt, f"{type(exc).__name__}: {exc}", permanent=False)
            return
        for index, exc in failed.items():
            job_id, asset_id, attempt = jobs[index]
            await self._failed(job_id, asset_id, attempt, str(exc), exc.permanent)
        done = [job for index, job in enumerate(jobs) if index not in failed]
        await self._indexer.flush_many([job[1] for job in done])  # `done` means searchable
        async with self._sessions.begin() as session:
            outcomes = [await finish_asset(session, job[1]) for job in done]
            await session.execute(text("UPDATE annotation_jobs SET state = 'done', finished_at = now(), "
                                       "locked_until = NULL WHERE id = ANY(:ids)"), {"ids": [job[0] for job in done]})
        for had_failures in outcomes:
            metrics.ANNOTATION_JOBS.labels("done_with_failures" if had_failures else "done").inc()

    async def _release(self, job_id: int) -> None:
        try:
            async with self._sessions.begin() as session:
                asset_id = (await session.execute(RELEASE, {"id": job_id})).scalar_one_or_none()
                if asset_id is not None:
                    await release_asset(session, asset_id)
            log.info("annotation job %d released back to the queue", job_id)
        except Exception:  # the lease still frees it later
            log.exception("annotation job %d: cannot release its claim", job_id)

    async def _run_job(self, job_id: int, asset_id: int, attempt: int) -> None:
        async with self._sessions() as session:
            asset = (await session.execute(text(
                "SELECT a.kind, a.sha256, a.size, a.deleted_at, j.models FROM assets a "
                "JOIN annotation_jobs j ON j.id = :job WHERE a.id = :id"), {"id": asset_id, "job": job_id})).first()
        if asset is None or asset.deleted_at is not None:
            await self._finish_job(job_id, "done", "asset deleted before annotation")
            return
        try:
            stream = await self._transfer(asset.kind, asset.sha256, asset.size, asset.models)
            async for arrived in arrivals(stream):
                results = [r for r in map(parse_stream_message, arrived) if r is not None]
                if not results:
                    continue
                await self._foreground.yield_to()
                others: set[int] = set()
                async with self._sessions.begin() as session:  # what arrived meanwhile: one transaction
                    for result in results:
                        others.update(await store_result(session, asset_id, result))
                for other in others:  # their faces joined a person with this asset's
                    self._indexer.mark(other)
                for result in results:
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

    async def _transfer(self, kind: str, sha256: str, size: int, models: list[str] | None
                        ) -> AsyncIterator[ImageAnnotationStreamResponse]:
        """The annotation stream of one asset: small images travel inside the request; videos and large
        images as a signed link the service fetches (streamed from the blob store, never read whole here)."""
        if kind == "video" or size > self._options.inline_max_mb * 1024 * 1024:
            return self._client.stream(kind, url=self._links.url(sha256), models=models)
        return self._client.stream(kind, await asyncio.to_thread(self._blobs.read, sha256), models=models)

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
