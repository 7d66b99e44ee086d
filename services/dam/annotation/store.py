"""Storing annotation results and states in PostgreSQL (one short transaction per model result)."""

from __future__ import annotations

import json
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.annotation.results import ModelResult
from services.dam.search.postgres import vector_literal

log = logging.getLogger(__name__)

_UPSERT_ANNOTATION = text("""
INSERT INTO annotations (asset_id, model, task, state, data, error, updated_at)
VALUES (:asset_id, :model, :task, :state, CAST(:data AS jsonb), :error, now())
ON CONFLICT (asset_id, model) DO UPDATE SET task = EXCLUDED.task, state = EXCLUDED.state, data = EXCLUDED.data,
    error = EXCLUDED.error, updated_at = now()
""")
_INSERT_VECTOR = text("""
INSERT INTO asset_vectors (asset_id, source, model, kind, box, label, embedding)
VALUES (:asset_id, :source, :model, :kind, :box, :label, CAST(:embedding AS vector))
""")


async def store_result(session: AsyncSession, asset_id: int, result: ModelResult, embedding_dim: int) -> None:
    """Replaces this model's result for the asset (never duplicates it) and its vectors."""
    await session.execute(_UPSERT_ANNOTATION, {
        "asset_id": asset_id, "model": result.model, "task": result.task, "state": "done" if result.ok else "failed",
        "data": json.dumps(result.data) if result.data is not None else None, "error": result.error,
    })
    if not result.ok:
        return
    # Vectors are keyed by the producing annotation model, so a re-run replaces them.
    await session.execute(text("DELETE FROM asset_vectors WHERE asset_id = :a AND source = :m"),
                          {"a": asset_id, "m": result.model})
    for vector in result.vectors:
        if len(vector.values) != embedding_dim:
            log.warning("asset %d: %s gave a %d-d vector, the DAM stores %d-d ones; not indexed",
                        asset_id, result.model, len(vector.values), embedding_dim)
            continue
        await session.execute(_INSERT_VECTOR, {
            "asset_id": asset_id, "source": result.model, "model": vector.model, "kind": vector.kind, "box": vector.box,
            "label": vector.label, "embedding": vector_literal(vector.values),
        })
    await session.execute(
        text("UPDATE assets SET annotation_state = 'partial', updated_at = now() "
             "WHERE id = :id AND annotation_state = 'pending'"), {"id": asset_id})


async def finish_asset(session: AsyncSession, asset_id: int) -> str:
    """After a complete stream: done when every model succeeded, partial when some failed."""
    failed = (await session.execute(
        text("SELECT count(*) FILTER (WHERE state = 'failed'), count(*) FROM annotations WHERE asset_id = :id"),
        {"id": asset_id})).one()
    state = "partial" if failed[0] else "done"
    error = f"{failed[0]} of {failed[1]} models failed" if failed[0] else None
    await session.execute(text("UPDATE assets SET annotation_state = :s, annotation_error = :e, updated_at = now() "
                               "WHERE id = :id"), {"s": state, "e": error, "id": asset_id})
    return state


async def fail_asset(session: AsyncSession, asset_id: int, error: str) -> None:
    """No more retries: failed, unless some models had already stored results (then partial)."""
    await session.execute(text("""
        UPDATE assets SET annotation_error = :e, updated_at = now(),
            annotation_state = CASE WHEN EXISTS (SELECT 1 FROM annotations WHERE asset_id = :id AND state = 'done')
                                    THEN 'partial' ELSE 'failed' END
        WHERE id = :id"""), {"e": error[:2000], "id": asset_id})
