"""Storing annotation results and states in PostgreSQL (one short transaction per model result).

An asset's annotation state: `pending` (queued, or waiting for a retry) -> `running` (a worker streams it)
-> `done` (the stream ended; `annotation_failed_models` says how many models failed) or `failed` (the job
gave up: a permanent error or too many attempts; results stored before stay)."""

from __future__ import annotations

import json
import logging

from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.annotation.results import ModelResult
from services.dam.models import AssetVector
from services.dam.people.store import store_faces
from services.dam.spaces import SpaceError, register

log = logging.getLogger(__name__)

_UPSERT_ANNOTATION = text("""
INSERT INTO annotations (asset_id, model, task, state, data, error, updated_at)
VALUES (:asset_id, :model, :task, :state, CAST(:data AS jsonb), :error, now())
ON CONFLICT (asset_id, model) DO UPDATE SET task = EXCLUDED.task, state = EXCLUDED.state, data = EXCLUDED.data,
    error = EXCLUDED.error, updated_at = now()
""")
_FAILED_MODELS = "(SELECT count(*) FROM annotations an WHERE an.asset_id = assets.id AND an.state = 'failed')"


async def store_result(session: AsyncSession, asset_id: int, result: ModelResult) -> set[int]:
    """Replaces this model's result for the asset (never duplicates it) and its vectors, each in the space
    of the model that made it (registered on first sight, whatever its dimension), and its faces (people).
    Returns the other assets whose search documents changed with it (faces joining persons)."""
    await session.execute(_UPSERT_ANNOTATION, {
        "asset_id": asset_id, "model": result.model, "task": result.task, "state": "done" if result.ok else "failed",
        "data": json.dumps(result.data) if result.data is not None else None, "error": result.error,
    })
    if not result.ok:
        return set()
    # Vectors are keyed by the producing annotation model, so a re-run replaces them.
    await session.execute(delete(AssetVector).where(AssetVector.asset_id == asset_id,
                                                    AssetVector.source == result.model))
    rows = []
    for vector in result.vectors:
        try:
            await register(session, vector.model, len(vector.values))
        except SpaceError as exc:
            log.warning("asset %d: %s: %s; not stored", asset_id, result.model, exc)
            continue
        rows.append({"asset_id": asset_id, "source": result.model, "model": vector.model, "kind": vector.kind,
                     "box": vector.box, "label": vector.label, "embedding": vector.values})
    if rows:
        await session.execute(insert(AssetVector), rows)
    if result.task == "face_recognition":
        return await store_faces(session, asset_id, result.model, result.faces) - {asset_id}
    return set()


async def start_asset(session: AsyncSession, asset_id: int) -> None:
    await session.execute(text("UPDATE assets SET annotation_state = 'running', updated_at = now() "
                               "WHERE id = :id AND deleted_at IS NULL"), {"id": asset_id})


async def finish_asset(session: AsyncSession, asset_id: int) -> int:
    """After a complete stream: done; returns the number of models whose stored result is a failure."""
    failed = (await session.execute(text("""
        UPDATE assets a SET annotation_state = 'done', annotation_failed_models = f.failed, updated_at = now(),
            annotation_error = CASE WHEN f.failed > 0 THEN f.failed || ' of ' || f.total || ' models failed' END
        FROM (SELECT count(*) FILTER (WHERE state = 'failed') AS failed, count(*) AS total
              FROM annotations WHERE asset_id = :id) f
        WHERE a.id = :id RETURNING a.annotation_failed_models"""), {"id": asset_id})).scalar_one_or_none()
    return int(failed or 0)


async def retry_asset(session: AsyncSession, asset_id: int, error: str) -> None:
    """A transient failure: the job waits for its next attempt."""
    await session.execute(text("UPDATE assets SET annotation_state = 'pending', annotation_error = :e, "
                               "updated_at = now() WHERE id = :id AND annotation_state = 'running'"),
                          {"e": f"retrying: {error}"[:2000], "id": asset_id})


async def release_asset(session: AsyncSession, asset_id: int) -> None:
    """The job went back to the queue untouched (shutdown)."""
    await session.execute(text("UPDATE assets SET annotation_state = 'pending', updated_at = now() "
                               "WHERE id = :id AND annotation_state = 'running'"), {"id": asset_id})


async def fail_asset(session: AsyncSession, asset_id: int, error: str) -> None:
    """No more retries: failed (results stored before stay, and count in the failed-models tally)."""
    await session.execute(text(f"""
        UPDATE assets SET annotation_state = 'failed', annotation_error = :e, updated_at = now(),
            annotation_failed_models = {_FAILED_MODELS}
        WHERE id = :id"""), {"e": error[:2000], "id": asset_id})
