"""The one place search documents are built: from PostgreSQL (the source of truth), many assets at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.annotation.results import doc_fields
from services.dam.models import AssetVector
from services.dam.moderation import apply_verdict
from services.dam.people.documents import detector_labels, persons_of
from services.dam.search.base import SearchDoc

_ASSETS = text("""
SELECT a.id, a.owner_id, a.visibility, a.kind, a.mime, a.created_at, a.title, a.description, a.tags,
       a.filename, a.moderation,
       ARRAY(SELECT pa.project_id FROM project_assets pa WHERE pa.asset_id = a.id ORDER BY 1) AS project_ids,
       ARRAY(SELECT DISTINCT al.label FROM asset_labels al WHERE al.asset_id = a.id ORDER BY 1) AS labels,
       coalesce(s.seq, 0) AS version
FROM assets a LEFT JOIN search_sync s ON s.asset_id = a.id
WHERE a.id = ANY(:ids) AND a.deleted_at IS NULL
""")
_ANNOTATIONS = text("SELECT asset_id, task, state, data FROM annotations WHERE asset_id = ANY(:ids)")


async def load_docs(session: AsyncSession, asset_ids: Sequence[int], object_min_score: float) -> dict[int, SearchDoc]:
    """The documents of the live assets among `asset_ids` (deleted and unknown ones are absent), in five queries
    whatever their number. Each carries the asset's current sync version (search_sync)."""
    ids = sorted(set(asset_ids))
    if not ids:
        return {}
    assets = (await session.execute(_ASSETS, {"ids": ids})).mappings().all()
    annotations: dict[int, list[tuple[str, str, dict[str, Any] | None]]] = defaultdict(list)
    for asset_id, task, state, data in (await session.execute(_ANNOTATIONS, {"ids": ids})).all():
        annotations[asset_id].append((task, state, data))
    # One whole-image vector per space (the first stored, when two results carry the same model's vector).
    vectors = await session.execute(
        select(AssetVector.asset_id, AssetVector.model, AssetVector.embedding)
        .where(AssetVector.asset_id.in_(ids), AssetVector.kind == "image")
        .order_by(AssetVector.asset_id, AssetVector.model, AssetVector.id))
    embeddings: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for asset_id, model, embedding in vectors.all():
        embeddings[asset_id].setdefault(model, [float(x) for x in embedding])
    persons = await persons_of(session, ids)
    docs = {}
    for row in assets:
        fields = apply_verdict(doc_fields(annotations[row["id"]], object_min_score), row["moderation"])
        person_labels, person_names = persons.get(row["id"], ([], []))
        fields["captions"] = "\n".join(t for t in (fields["captions"], *person_names) if t)
        docs[row["id"]] = SearchDoc(
            asset_id=row["id"], owner_id=row["owner_id"], visibility=row["visibility"], kind=row["kind"],
            mime=row["mime"], uploaded_at=row["created_at"], title=row["title"], description=row["description"],
            tags=list(row["tags"]), project_ids=list(row["project_ids"]),
            labels=[*detector_labels(row["labels"]), *person_labels],
            embeddings=dict(embeddings[row["id"]]), version=int(row["version"]), filename=row["filename"] or "",
            **fields,
        )
    return docs
