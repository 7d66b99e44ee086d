"""The job queue is bounded, runs jobs in order and keeps going after a failing item."""

from __future__ import annotations

import asyncio

import pytest

from services.ndd.jobs import Job, JobItem, JobManager, QueueFullError


async def test_bounded_queue_progress_and_errors():
    gate = asyncio.Event()
    done: list[str] = []

    async def handler(job: Job, item: JobItem) -> list[str]:
        await gate.wait()
        if item.item_id == "bad":
            raise ValueError("this item is broken")
        return ["a warning"] if item.item_id == "warn" else []

    async def on_done(job: Job) -> None:
        done.append(job.id)

    manager = JobManager(handler, on_done, queue_size=1, kept=10)
    manager.start()
    try:
        first = manager.submit("image", "default", [JobItem("ok"), JobItem("bad"), JobItem("warn")])
        while first.status != "running":  # the worker takes the first job, freeing the queue slot
            await asyncio.sleep(0.01)
        second = manager.submit("image", "default", [JobItem("ok2")])
        with pytest.raises(QueueFullError, match="retry later"):
            manager.submit("image", "default", [JobItem("x")])
        assert second.to_json()["status"] == "queued" and first.processed == 0
        gate.set()
        while second.status != "done":
            await asyncio.sleep(0.01)
        report = first.to_json()
        assert report["status"] == "done" and report["progress"] == 1.0
        assert report["indexed"] == ["ok", "warn"]
        assert report["errors"] == [{"id": "bad", "error": "this item is broken"}]
        assert report["warnings"] == [{"id": "warn", "warning": "a warning"}]
        assert done == [first.id, second.id]
        assert manager.get(first.id) is first
    finally:
        await manager.stop()


async def test_job_of_only_bad_items_fails():
    async def handler(job: Job, item: JobItem) -> list[str]:
        raise ValueError("nope")

    async def on_done(job: Job) -> None:
        return None

    manager = JobManager(handler, on_done, queue_size=4, kept=10)
    manager.start()
    try:
        job = manager.submit("video", "default", [JobItem("a")])
        while job.status in ("queued", "running"):
            await asyncio.sleep(0.01)
        assert job.status == "failed" and job.errors[0]["error"] == "nope"
    finally:
        await manager.stop()
