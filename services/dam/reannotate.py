"""Bringing annotations up to date after models change (`maam dam reannotate`).

`missing`: image assets without a vector from an installed embedding model (annotated before it was
installed, or its run failed) get a job that runs only those models; the other results stay. `all`: every
image and video asset is annotated again by every model. Jobs go through the outbox like uploads, so the
DAM's workers run them and a restart loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text

from services.dam.annotation.worker import enqueue
from services.dam.context import DamContext
from services.dam.spaces import NO_EMBEDDER, installed_embedders

Mode = Literal["missing", "all"]
BATCH = 500

# Live image assets without a whole-image vector of the model, and no job already queued or running.
_MISSING = text("""
SELECT a.id FROM assets a
WHERE a.deleted_at IS NULL AND a.kind = 'image'
  AND NOT EXISTS (SELECT 1 FROM asset_vectors v WHERE v.asset_id = a.id AND v.model = :model AND v.kind = 'image')
  AND NOT EXISTS (SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id AND j.state IN ('queued', 'running'))
ORDER BY a.id
""")
_ALL = text("""
SELECT a.id FROM assets a
WHERE a.deleted_at IS NULL AND a.kind IN ('image', 'video')
  AND NOT EXISTS (SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id AND j.state IN ('queued', 'running'))
ORDER BY a.id
""")


class NothingToRun(RuntimeError):
    """No model the mode needs is installed."""


@dataclass
class Plan:
    jobs: dict[int, list[str] | None]  # asset -> models to run (None: every configured model)
    models: list[str]


async def plan(ctx: DamContext, mode: Mode) -> Plan:
    async with ctx.db.sessions() as session:
        if mode == "all":
            ids = [r[0] for r in (await session.execute(_ALL)).all()]
            return Plan(dict.fromkeys(ids), [])
        embedders = await asyncio.to_thread(installed_embedders, ctx.settings.model_repository)
        if not embedders:
            raise NothingToRun(f"{NO_EMBEDDER} (model repository: {ctx.settings.model_repository})")
        jobs: dict[int, list[str] | None] = {}
        for embedder in embedders:
            for (asset_id,) in (await session.execute(_MISSING, {"model": embedder.name})).all():
                jobs[asset_id] = [*(jobs.get(asset_id) or []), embedder.name]
    return Plan(jobs, sorted(e.name for e in embedders))


async def enqueue_plan(ctx: DamContext, work: Plan, progress: Callable[[int], None] | None = None) -> list[int]:
    """Queues the jobs (a batch per transaction); returns their ids."""
    items = sorted(work.jobs.items())
    job_ids: list[int] = []
    for start in range(0, len(items), BATCH):
        batch = items[start:start + BATCH]
        async with ctx.db.sessions.begin() as session:
            job_ids += [await enqueue(session, asset_id, models) for asset_id, models in batch]
            await session.execute(text(
                "UPDATE assets SET annotation_state = 'pending', updated_at = now() WHERE id = ANY(:ids)"),
                {"ids": [a for a, _ in batch]})
        if progress:
            progress(len(batch))
    return job_ids


async def wait_for(ctx: DamContext, job_ids: list[int], progress: Callable[[int, int], None],
                   poll_s: float = 1.0) -> dict[str, int]:
    """Polls the jobs until each is done or failed; returns the count per final state."""
    while True:
        async with ctx.db.sessions() as session:
            rows = dict((await session.execute(text(
                "SELECT state, count(*) FROM annotation_jobs WHERE id = ANY(:ids) GROUP BY state"),
                {"ids": job_ids})).all())
        finished = int(rows.get("done", 0)) + int(rows.get("failed", 0))
        progress(finished, len(job_ids))
        if finished >= len(job_ids):
            return {"done": int(rows.get("done", 0)), "failed": int(rows.get("failed", 0))}
        await asyncio.sleep(poll_s)
