"""The job queue is bounded, durable, runs jobs in order and keeps going after a failing item."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.ndd.jobs import Job, JobItem, JobQueue, JobWorker, NewItem, QueueFullError


async def _until(condition, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_bounded_queue_progress_and_errors(tmp_path: Path):
    gate = asyncio.Event()
    done: list[str] = []

    async def handler(job: Job, item: JobItem) -> list[str]:
        await gate.wait()
        if item.item_id == "bad":
            raise ValueError("this item is broken")
        return ["a warning"] if item.item_id == "warn" else []

    async def on_done(job: Job) -> None:
        done.append(job.id)

    queue = JobQueue(tmp_path / "jobs.sqlite3", queue_size=1, kept=10)
    worker = JobWorker(queue, handler, on_done)
    worker.start()
    try:
        first = queue.submit("image", "default", [NewItem("ok"), NewItem("bad"), NewItem("warn")])
        worker.wake()
        # The worker takes the first job, freeing the queue slot.
        await _until(lambda: queue.report(first["job_id"])["status"] == "running")
        second = queue.submit("image", "default", [NewItem("ok2")])
        with pytest.raises(QueueFullError, match="retry later"):
            queue.submit("image", "default", [NewItem("x")])
        assert second["status"] == "queued" and queue.report(first["job_id"])["processed"] == 0
        gate.set()
        worker.wake()
        await _until(lambda: len(done) == 2)  # on_done runs once a job is finished
        report = queue.report(first["job_id"])
        assert report["status"] == "done" and report["progress"] == 1.0
        assert report["indexed"] == ["ok", "warn"]
        assert report["errors"] == [{"id": "bad", "error": "this item is broken"}]
        assert report["warnings"] == [{"id": "warn", "warning": "a warning"}]
        assert done == [first["job_id"], second["job_id"]]
    finally:
        await worker.stop()
        queue.close()


async def test_job_of_only_bad_items_fails(tmp_path: Path):
    async def handler(job: Job, item: JobItem) -> list[str]:
        raise ValueError("nope")

    async def on_done(job: Job) -> None:
        return None

    queue = JobQueue(tmp_path / "jobs.sqlite3", queue_size=4, kept=10)
    worker = JobWorker(queue, handler, on_done)
    worker.start()
    try:
        job = queue.submit("video", "default", [NewItem("a")])
        worker.wake()
        await _until(lambda: queue.report(job["job_id"])["status"] not in ("queued", "running"))
        report = queue.report(job["job_id"])
        assert report["status"] == "failed" and report["errors"][0]["error"] == "nope"
    finally:
        await worker.stop()
        queue.close()


async def test_an_interrupted_job_resumes_where_it_stopped_and_old_reports_are_pruned(tmp_path: Path):
    """A worker stopped mid-job (as by a crash) leaves the rest pending; a new worker on the same file
    finishes it, uploaded bytes included, without redoing the items already settled."""
    seen: list[tuple[str, bytes | None]] = []
    first_item_done = asyncio.Event()

    async def slow(job: Job, item: JobItem) -> list[str]:
        seen.append((item.item_id, item.data))
        if item.position == 0:
            first_item_done.set()
            return []
        await asyncio.Event().wait()  # never finishes: the worker is stopped here
        return []

    async def fast(job: Job, item: JobItem) -> list[str]:
        seen.append((item.item_id, item.data))
        return []

    async def nothing(job: Job) -> None:
        return None

    path = tmp_path / "jobs.sqlite3"
    queue = JobQueue(path, queue_size=4, kept=1)
    worker = JobWorker(queue, slow, nothing)
    worker.start()
    job = queue.submit("image", "default", [NewItem("a", data=b"A"), NewItem("b", data=b"B"), NewItem("c", url="u")])
    worker.wake()
    await asyncio.wait_for(first_item_done.wait(), 30)
    await _until(lambda: len(seen) == 2)
    await worker.stop()  # no grace: what is left resumes at the next start
    queue.close()
    assert [i for i, _ in seen] == ["a", "b"]

    seen.clear()
    reopened = JobQueue(path, queue_size=4, kept=1)
    assert reopened.report(job["job_id"])["processed"] == 1
    worker = JobWorker(reopened, fast, nothing)
    worker.start()
    try:
        await _until(lambda: reopened.report(job["job_id"])["status"] == "done")
        assert seen == [("b", b"B"), ("c", None)]
        assert reopened.report(job["job_id"])["indexed"] == ["a", "b", "c"]
        later = reopened.submit("image", "default", [NewItem("d")])
        worker.wake()
        await _until(lambda: reopened.report(later["job_id"])["status"] == "done")
        assert reopened.report(job["job_id"]) is None  # only the last `kept` finished jobs are kept
    finally:
        await worker.stop()
        reopened.close()
