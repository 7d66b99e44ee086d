"""Query vectors of every kNN the API runs, each in one named embedding space.

Stored vectors are read from `asset_vectors` (PostgreSQL, the source of truth), never from a search
backend's index, so similar-asset search and project expansion work on every backend. New vectors (an
uploaded image, a region, a text) come from the annotation service in the space the search runs in. When
the caller names no space, `spaces.choose` picks one (the configured preference, else a whole-image
model's space covering most assets)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.annotation.client import AnnotationServiceError
from services.dam.capabilities import REANNOTATE
from services.dam.context import DamContext
from services.dam.models import Asset, AssetVector, User
from services.dam.spaces import (
    NO_EMBEDDER,
    PULL_CLIP,
    Embedder,
    Space,
    choose,
    coverage,
    installed_embedders,
    known,
)

WHOLE = (0.0, 0.0, 1.0, 1.0)


@dataclass
class QueryVector:
    space: str
    values: list[float]


async def no_embedder(ctx: DamContext) -> str | None:
    """Why no image embedding can exist, naming the command that installs one (the annotation service says
    which rows it serves), or None when an embedding model is installed."""
    feature = (await ctx.capabilities.get()).feature("similar")
    if feature["available"] is not False:
        return None
    command = feature["command"] or "maam models install-shipped"
    return (f"no image embedding model is installed in the annotation service: `{command}` installs one, "
            f"then `{REANNOTATE}` embeds the assets already stored")


def service_error(exc: AnnotationServiceError) -> HTTPException:
    if exc.permanent:
        return HTTPException(422, str(exc))
    return HTTPException(503, f"the annotation service is not reachable now ({exc}); try again later")


async def _embedders(ctx: DamContext) -> list[Embedder]:
    return await asyncio.to_thread(installed_embedders, ctx.settings.model_repository)


async def pick_space(ctx: DamContext, session: AsyncSession, candidates: list[str], requested: str | None,
                     what: str) -> str:
    """The requested space (which must be a candidate), or the default among the candidates."""
    if requested is not None:
        if requested not in candidates:
            offered = ", ".join(sorted(candidates)) or "none"
            raise HTTPException(422, f"{what} has no vector in embedding space {requested!r} (it has: {offered})")
        return requested
    primary = [e.name for e in await _embedders(ctx) if e.task == "image_embedding"]
    chosen = choose(candidates, ctx.settings.dam.embedding_spaces, await coverage(session), primary or candidates)
    if chosen is None:
        raise HTTPException(409, f"{what} has no image embedding yet")
    return chosen


async def of_asset(ctx: DamContext, session: AsyncSession, asset: Asset, space: str | None) -> QueryVector:
    """The asset's stored whole-image vector in `space` (or its default space)."""
    rows = (await session.execute(
        select(AssetVector.model, AssetVector.embedding).where(AssetVector.asset_id == asset.id,
                                                                AssetVector.kind == "image")
        .order_by(AssetVector.id))).all()
    vectors: dict[str, list[float]] = {}
    for model, embedding in rows:
        vectors.setdefault(model, [float(x) for x in embedding])
    if not vectors:
        missing = await no_embedder(ctx)
        if missing:
            raise HTTPException(409, missing)
        if asset.annotation_state in ("queued", "running", "pending"):
            raise HTTPException(409, f"asset {asset.id} has no image embedding yet (annotation state: "
                                     f"{asset.annotation_state}); try again when it is annotated")
        raise HTTPException(409, f"asset {asset.id} has no image embedding (annotation state: "
                                 f"{asset.annotation_state}): it was annotated before an embedding model was "
                                 f"installed, or that model failed on it; `{REANNOTATE}` embeds it")
    chosen = await pick_space(ctx, session, list(vectors), space, f"asset {asset.id}")
    return QueryVector(chosen, vectors[chosen])


async def of_members(ctx: DamContext, session: AsyncSession, member_ids: list[int], user: User,
                     space: str | None) -> QueryVector:
    """The centroid of the visible members' whole-image vectors in one space (vectors of two spaces never
    mix): `space`, else the space most members have a vector in (ties: the default order)."""
    visible = [Asset.deleted_at.is_(None)]
    if not user.is_admin:
        visible.append((Asset.owner_id == user.id) | (Asset.visibility == "public"))
    per_space = dict((await session.execute(
        select(AssetVector.model, func.count(func.distinct(AssetVector.asset_id)))
        .join(Asset, Asset.id == AssetVector.asset_id)
        .where(AssetVector.asset_id.in_(member_ids), AssetVector.kind == "image", *visible)
        .group_by(AssetVector.model))).all())
    if not per_space:
        raise HTTPException(409, "no member of this project has an image embedding yet")
    if space is None:
        most = max(per_space.values())
        space = await pick_space(ctx, session, [s for s, n in per_space.items() if n == most], None, "this project")
    elif space not in per_space:
        raise HTTPException(422, f"no member of this project has a vector in embedding space {space!r} "
                                 f"(they have: {', '.join(sorted(per_space))})")
    vectors = (await session.execute(
        select(AssetVector.embedding).join(Asset, Asset.id == AssetVector.asset_id)
        .where(AssetVector.asset_id.in_(member_ids), AssetVector.kind == "image", AssetVector.model == space,
               *visible))).scalars().all()
    centroid = np.mean(np.stack([np.asarray(v, dtype=np.float64) for v in vectors]), axis=0)
    return QueryVector(space, [float(x) for x in centroid])


async def _image_spaces(ctx: DamContext, session: AsyncSession) -> tuple[dict[str, Embedder], list[str]]:
    """Installed embedders, and the spaces a new image can be searched in: installed and holding vectors
    (every known space when the model repository cannot be read here)."""
    embedders = {e.name: e for e in await _embedders(ctx)}
    spaces = await known(session)
    usable = [n for n in spaces if n in embedders] if embedders else list(spaces)
    return embedders, usable


async def of_image(ctx: DamContext, session: AsyncSession, data: bytes, space: str | None) -> QueryVector:
    """An uploaded image's vector, computed by the annotation service in the searched space."""
    embedders, usable = await _image_spaces(ctx, session)
    if not usable:
        raise HTTPException(409, (await no_embedder(ctx)) or NO_EMBEDDER if not embedders else
                            "no asset has an image embedding yet; upload and annotate some first")
    chosen = await pick_space(ctx, session, usable, space, "the library")
    try:
        model, vector = await _embed_whole(ctx, embedders.get(chosen), data, chosen)
    except AnnotationServiceError as exc:
        raise service_error(exc) from exc
    return _checked(model, vector, chosen, await known(session))


async def _embed_whole(ctx: DamContext, embedder: Embedder | None, data: bytes, space: str) -> tuple[str, list[float]]:
    if embedder is not None and embedder.task == "region_embedding":
        model, _, vector = await ctx.client.region_embedding(data, WHOLE, model=space)
        return model, vector
    return await ctx.client.image_embedding(data, model=space)


async def prototype_spaces(ctx: DamContext, session: AsyncSession) -> list[str]:
    """The spaces a user-made detector gets a prototype in: every installed embedding model (the known
    spaces when the model repository cannot be read here), the default one first."""
    embedders = await _embedders(ctx)
    if not embedders and await no_embedder(ctx):
        return []  # the service has no image embedding: known spaces (face ones too) cannot take an anchor
    names = [e.name for e in embedders] or list(await known(session))
    if not names:
        return []
    first = choose(names, ctx.settings.dam.embedding_spaces, await coverage(session),
                   [e.name for e in embedders if e.task == "image_embedding"] or names)
    return [first, *sorted(n for n in names if n != first)] if first else sorted(names)


async def of_anchor(ctx: DamContext, session: AsyncSession, data: bytes, space: str) -> tuple[str, list[float]]:
    """An anchor image's vector in `space` (raises AnnotationServiceError: the route decides)."""
    embedders = {e.name: e for e in await _embedders(ctx)}
    model, vector = await _embed_whole(ctx, embedders.get(space), data, space)
    checked = _checked(model, vector, space, await known(session))
    return checked.space, checked.values


async def of_region(ctx: DamContext, session: AsyncSession, asset: Asset, box: tuple[float, float, float, float],
                    space: str | None) -> QueryVector:
    """A region of an asset, embedded on the fly in the asset's (default or named) space."""
    stored = await of_asset(ctx, session, asset, space)
    data = await asyncio.to_thread(ctx.blobs.read, asset.sha256)
    try:
        model, vector, _ = await ctx.client.region_embedding(data, box, model=stored.space)
    except AnnotationServiceError as exc:
        raise service_error(exc) from exc
    return _checked(model, vector, stored.space, await known(session))


async def of_text(ctx: DamContext, session: AsyncSession, q: str, space: str | None) -> QueryVector:
    """A text in a cross-modal space (CLIP): encoded by the text model paired with the space's image model."""
    cross = {e.name: e for e in await _embedders(ctx) if e.cross_modal}
    if space is not None and space not in cross:
        raise HTTPException(422, f"embedding space {space!r} is not cross-modal (no installed text encoder pairs "
                                 f"with it); text-to-image search needs one: `{PULL_CLIP}`")
    if not cross:
        raise HTTPException(409, "text-to-image search needs a cross-modal embedding model (CLIP); the installed "
                                 f"embeddings are visual only. Install one with `{PULL_CLIP}`, then run "
                                 "`maam dam reannotate --missing`")
    chosen = space or await pick_space(ctx, session, list(cross), None, "the library")
    try:
        _, vector = await ctx.client.text_embedding(q, model=cross[chosen].text_model or "")
    except AnnotationServiceError as exc:
        raise service_error(exc) from exc
    return _checked(chosen, vector, chosen, await known(session))


def _checked(model: str, vector: list[float], space: str, spaces: dict[str, Space]) -> QueryVector:
    expected = spaces.get(space)
    if model != space:
        raise HTTPException(409, f"the annotation service embedded the query with {model!r}, not in space "
                                 f"{space!r}; is the same model repository installed on both?")
    if expected is not None and len(vector) != expected.dim:
        raise HTTPException(409, f"the annotation service gave a {len(vector)}-d vector for space {space!r}, "
                                 f"which holds {expected.dim}-d ones: the model changed under the same name")
    return QueryVector(space, vector)
