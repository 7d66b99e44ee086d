"""Building an asset's search document from PostgreSQL, the source of truth."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.annotation.results import doc_fields
from services.dam.search.base import SearchDoc

_ASSET = text("""
SELECT a.id, a.owner_id, a.visibility, a.kind, a.mime, a.created_at, a.title, a.description, a.tags,
       ARRAY(SELECT pa.project_id FROM project_assets pa WHERE pa.asset_id = a.id ORDER BY 1) AS project_ids,
       ARRAY(SELECT DISTINCT al.label FROM asset_labels al WHERE al.asset_id = a.id) AS labels,
       e.embedding, e.model AS embedding_model
FROM assets a
LEFT JOIN LATERAL (
    -- The whole-image vector of the cross-modal model (the space of text and image queries) when there is one.
    SELECT v.embedding::text AS embedding, v.model FROM asset_vectors v WHERE v.asset_id = a.id AND v.kind = 'image'
    ORDER BY (SELECT an.task FROM annotations an WHERE an.asset_id = a.id AND an.model = v.source)
             = 'cross_modal_embedding' DESC, v.id LIMIT 1) e ON true
WHERE a.id = :id AND a.deleted_at IS NULL
""")
_ANNOTATIONS = text("SELECT task, state, data FROM annotations WHERE asset_id = :id")


async def load_doc(session: AsyncSession, asset_id: int, object_min_score: float) -> SearchDoc | None:
    row = (await session.execute(_ASSET, {"id": asset_id})).mappings().first()
    if row is None:
        return None
    annotations = [tuple(r) for r in (await session.execute(_ANNOTATIONS, {"id": asset_id})).all()]
    fields = doc_fields(annotations, object_min_score)  # type: ignore[arg-type]
    embedding = [float(x) for x in row["embedding"].strip("[]").split(",")] if row["embedding"] else None
    return SearchDoc(
        asset_id=row["id"], owner_id=row["owner_id"], visibility=row["visibility"], kind=row["kind"],
        mime=row["mime"], uploaded_at=row["created_at"], title=row["title"], description=row["description"],
        tags=list(row["tags"]), project_ids=list(row["project_ids"]), labels=list(row["labels"]),
        embedding=embedding, embedding_model=row["embedding_model"], **fields,
    )
