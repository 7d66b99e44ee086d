"""Embedding spaces: the embedding models whose vectors the DAM holds, each with its own dimension.

A space is named by the model that produced its vectors (`Embedding.model` in the annotation protocol);
vectors of two spaces are never compared. The registry (`embedding_spaces`) learns a space the first time
one of its vectors is stored, so installing a model of another size needs no database reset. Which models
are installed, and which of them pairs with a text encoder (cross-modal, for text queries), comes from the
model repository's sidecars, as the annotation service itself reads them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.model_repository import ModelRepository

log = logging.getLogger(__name__)

# The repository tasks whose models put assets into an embedding space.
EMBEDDING_TASKS = ("image_embedding", "region_embedding")
# pgvector indexes `vector` columns of at most this many dimensions with HNSW; larger spaces are scanned.
HNSW_MAX_DIM = 2000
PULL_CLIP = "maam models pull clip_vit_b32"
NO_EMBEDDER = ("no image embedding model is installed: `maam models install-shipped` installs the offline visual "
               f"embedding, `{PULL_CLIP}` installs CLIP")


class SpaceError(ValueError):
    """A vector or query that does not fit the space it names."""


@dataclass(frozen=True)
class Space:
    id: int
    name: str
    dim: int


@dataclass(frozen=True)
class Embedder:
    """An installed embedding model, as the repository describes it."""

    name: str
    task: str
    dim: int | None
    text_model: str | None  # the installed text encoder of the same space (cross-modal), if any

    @property
    def cross_modal(self) -> bool:
        return self.text_model is not None


_REGISTER = text("""
INSERT INTO embedding_spaces (name, dim) VALUES (:name, :dim) ON CONFLICT (name) DO NOTHING
""")
_GET = text("SELECT id, name, dim FROM embedding_spaces WHERE name = :name")
_ALL = text("SELECT id, name, dim FROM embedding_spaces ORDER BY id")
# Assets with a whole-image vector in each space: how much a space covers (the default prefers wide ones).
_COVERAGE = text("SELECT model, count(DISTINCT asset_id) FROM asset_vectors WHERE kind = 'image' GROUP BY model")


# Spaces already committed, per database engine: a space row is never changed or removed while the DAM runs
# (only a migration's downgrade drops them), so storing a vector needs no registry round trips (they were a
# third of storing an annotation result). Rows this transaction inserted are not cached: it may roll back.
_committed: weakref.WeakKeyDictionary[object, dict[str, Space]] = weakref.WeakKeyDictionary()


async def register(session: AsyncSession, name: str, dim: int) -> Space:
    """The space `name`, created with `dim` on first sight. A vector of another size is refused: the model
    changed under the same name (rename it, or drop the old space)."""
    cache = _committed.setdefault(session.get_bind(), {})
    inserted = session.info.setdefault("maam_spaces_inserted", set())
    space = cache.get(name)
    if space is None:
        row = (await session.execute(_GET, {"name": name})).one_or_none()
        if row is None:
            await session.execute(_REGISTER, {"name": name, "dim": dim})
            inserted.add(name)
            row = (await session.execute(_GET, {"name": name})).one()
        space = Space(int(row.id), row.name, int(row.dim))
        if name not in inserted:  # read committed: a row this session did not insert is another's, committed
            cache[name] = space
    if space.dim != dim:
        raise SpaceError(f"embedding space {name!r} holds {space.dim}-d vectors; this one has {dim}")
    return space


async def known(session: AsyncSession) -> dict[str, Space]:
    return {r.name: Space(int(r.id), r.name, int(r.dim)) for r in (await session.execute(_ALL)).all()}


async def coverage(session: AsyncSession) -> dict[str, int]:
    return {name: int(n) for name, n in (await session.execute(_COVERAGE)).all()}


def hnsw_index_sql(space: Space) -> str | None:
    """The partial HNSW index of one space in the postgres backend's `search_vectors` (ids are integers,
    so the statement holds no user text)."""
    if space.dim > HNSW_MAX_DIM:
        return None
    return (f"CREATE INDEX IF NOT EXISTS search_vectors_hnsw_{space.id} ON search_vectors USING hnsw "
            f"((embedding::vector({space.dim})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
            f"WHERE space_id = {space.id}")


def installed_embedders(repository: Path) -> list[Embedder]:
    """Installed image/region embedding models, read fresh (a model pulled since start counts)."""
    repo = ModelRepository(repository)
    texts = {s.name for s in repo.installed("text_embedding")}
    found = []
    for task in EMBEDDING_TASKS:
        for spec in repo.installed(task):
            text_model = spec.meta.params.get("text_model")
            dims = [d for d in spec.config.output[0].dims] if spec.config.output else []
            dim = int(dims[-1]) if dims and dims[-1] > 0 else spec.meta.params.get("dim")
            found.append(Embedder(spec.name, task, int(dim) if dim else None,
                                  str(text_model) if text_model and text_model in texts else None))
    return found


def choose(candidates: Iterable[str], preference: Sequence[str], coverage: dict[str, int],
           whole_image: Iterable[str] = ()) -> str | None:
    """The space a kNN searches when the caller names none: the first configured preference among the
    candidates, else a whole-image model's space before a region model's, the one covering most assets,
    then by name (stable)."""
    pool = sorted(set(candidates))
    if not pool:
        return None
    for name in preference:
        if name in pool:
            return name
    primary = set(whole_image)
    return min(pool, key=lambda n: (n not in primary, -coverage.get(n, 0), n))
