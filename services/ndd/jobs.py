"""Indexing jobs: queued in a bounded in-process queue, run one at a time by a background worker,
with progress and per-item errors readable while they run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    pass


@dataclass
class JobItem:
    item_id: str
    url: str | None = None
    data: bytes | None = None
    filename: str | None = None


@dataclass
class Job:
    id: str
    kind: str  # "image" or "video"
    collection_id: str
    items: list[JobItem]
    status: str = "queued"  # queued, running, done, failed
    processed: int = 0
    indexed: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        total = len(self.items)
        return {
            "job_id": self.id,
            "media_type": self.kind,
            "collection_id": self.collection_id,
            "status": self.status,
            "total": total,
            "processed": self.processed,
            "progress": round(self.processed / total, 4) if total else 1.0,
            "indexed": list(self.indexed),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "created": self.created,
            "finished": self.finished,
        }


# Indexes one item; returns warnings (e.g. a descriptor that could not be computed) or raises.
ItemHandler = Callable[[Job, JobItem], Awaitable[list[str]]]
JobDone = Callable[[Job], Awaitable[None]]


class JobManager:
    def __init__(self, handler: ItemHandler, on_done: JobDone, queue_size: int, kept: int) -> None:
        self._handler = handler
        self._on_done = on_done
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._kept = kept
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="ndd-job-worker")

    async def stop(self, grace_s: float = 0.0) -> None:
        """Lets the accepted jobs finish within `grace_s` (a job the caller got a 202 for is not
        dropped at the first SIGTERM), then cancels what is left."""
        if self._worker:
            if grace_s > 0 and not self._worker.done():
                try:
                    await asyncio.wait_for(self._queue.join(), grace_s)
                except TimeoutError:
                    log.warning("%d indexing job(s) unfinished after %.0f s; cancelling them",
                                self._queue.qsize() + 1, grace_s)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def submit(self, kind: str, collection_id: str, items: list[JobItem]) -> Job:
        job = Job(uuid.uuid4().hex, kind, collection_id, items)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull as exc:
            raise QueueFullError(f"{self._queue.maxsize} jobs are already waiting; retry later") from exc
        self._jobs[job.id] = job
        while len(self._jobs) > self._kept:
            oldest = next(iter(self._jobs.values()))
            if oldest.status in ("queued", "running"):
                break
            self._jobs.popitem(last=False)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            job.status = "running"
            try:
                for item in job.items:
                    try:
                        for warning in await self._handler(job, item):
                            job.warnings.append({"id": item.item_id, "warning": warning})
                        job.indexed.append(item.item_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        job.errors.append({"id": item.item_id, "error": str(exc) or type(exc).__name__})
                    finally:
                        item.data = None  # free the upload as soon as it is indexed
                        job.processed += 1
                await self._on_done(job)
                job.status = "done" if job.indexed or not job.items else "failed"
            except asyncio.CancelledError:
                job.status = "failed"
                raise
            except Exception as exc:
                log.exception("job %s failed", job.id)
                job.errors.append({"id": "", "error": f"the job failed: {exc}"})
                job.status = "failed"
            finally:
                job.finished = time.time()
                self._queue.task_done()
