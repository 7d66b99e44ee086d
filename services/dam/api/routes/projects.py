"""Projects (source document 2.2): semantically coherent groups of assets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import delete, func, select

from services.dam.api import query_vectors
from services.dam.api.deps import (
    Ctx,
    CurrentUser,
    Session,
    can_see,
    require_owner,
    require_visible,
    visible_clause,
)
from services.dam.api.validation import DbId, PageNumber, SafeStr
from services.dam.models import Asset, Project, ProjectAsset, User
from services.dam.schemas import (
    AssetOut,
    ExpandOut,
    Page,
    ProjectAssetsIn,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)
from services.dam.search.base import SearchQuery

router = APIRouter(prefix="/projects", tags=["projects"])


async def _out(session: Session, project: Project, user: User) -> ProjectOut:
    """The project with the number of its members this user may see."""
    where = [ProjectAsset.project_id == project.id, Asset.deleted_at.is_(None)]
    if (visible := visible_clause(Asset, user)) is not None:
        where.append(visible)
    count = (await session.execute(select(func.count()).select_from(ProjectAsset).join(
        Asset, Asset.id == ProjectAsset.asset_id).where(*where))).scalar_one()
    return ProjectOut.model_validate(project).model_copy(update={"asset_count": count})


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
async def create_project(body: ProjectCreate, user: CurrentUser, session: Session) -> ProjectOut:
    project = Project(owner_id=user.id, **body.model_dump())
    session.add(project)
    await session.commit()
    return await _out(session, project, user)


@router.get("", response_model=list[ProjectOut])
async def list_projects(user: CurrentUser, session: Session, mine: bool = False) -> list[ProjectOut]:
    stmt = select(Project).order_by(Project.id)
    if (visible := visible_clause(Project, user, mine)) is not None:
        stmt = stmt.where(visible)
    return [await _out(session, p, user) for p in (await session.execute(stmt)).scalars()]


@router.get("/{project_id}", response_model=ProjectOut)
async def get_project(project_id: DbId, user: CurrentUser, session: Session) -> ProjectOut:
    return await _out(session, require_visible(await session.get(Project, project_id), user, "project"), user)


@router.patch("/{project_id}", response_model=ProjectOut)
async def update_project(project_id: DbId, body: ProjectUpdate, user: CurrentUser, session: Session) -> ProjectOut:
    project = require_owner(await session.get(Project, project_id), user, "project")
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(project, key, value)
    await session.commit()
    return await _out(session, project, user)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> None:
    project = require_owner(await session.get(Project, project_id), user, "project")
    members = [r[0] for r in (await session.execute(
        select(ProjectAsset.asset_id).where(ProjectAsset.project_id == project.id))).all()]
    await session.delete(project)
    await session.commit()
    await ctx.indexer.sync(members)


@router.get("/{project_id}/assets", response_model=Page)
async def project_assets(project_id: DbId, user: CurrentUser, session: Session,
                         page: Annotated[PageNumber, Query()] = 1,
                         size: Annotated[int, Query(ge=1, le=100)] = 20) -> Page:
    """The project's assets this user may see (search within a project: /api/search?project=ID)."""
    require_visible(await session.get(Project, project_id), user, "project")
    where = [ProjectAsset.project_id == project_id, Asset.deleted_at.is_(None)]
    if (visible := visible_clause(Asset, user)) is not None:
        where.append(visible)
    base = select(Asset).join(ProjectAsset, ProjectAsset.asset_id == Asset.id).where(*where)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = await session.execute(base.order_by(ProjectAsset.added_at.desc(), Asset.id.desc())
                                 .offset((page - 1) * size).limit(size))
    return Page(total=total, page=page, size=size, items=[AssetOut.model_validate(a) for a in rows.scalars()])


@router.post("/{project_id}/assets", response_model=ProjectOut)
async def add_assets(project_id: DbId, body: ProjectAssetsIn, user: CurrentUser, session: Session,
                     ctx: Ctx) -> ProjectOut:
    project = require_owner(await session.get(Project, project_id), user, "project")
    ids = sorted(set(body.asset_ids))
    assets = (await session.execute(select(Asset).where(Asset.id.in_(ids)))).scalars().all()
    visible = {a.id for a in assets if a.deleted_at is None and can_see(a, user)}
    missing = [i for i in ids if i not in visible]
    if missing:
        raise HTTPException(404, f"asset(s) not found: {missing[:20]}")
    for asset_id in ids:
        await session.merge(ProjectAsset(project_id=project.id, asset_id=asset_id))
    await session.commit()
    await ctx.indexer.sync(ids)
    return await _out(session, project, user)


@router.delete("/{project_id}/assets/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_asset(project_id: DbId, asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> None:
    require_owner(await session.get(Project, project_id), user, "project")
    result = await session.execute(delete(ProjectAsset).where(ProjectAsset.project_id == project_id,
                                                              ProjectAsset.asset_id == asset_id))
    if result.rowcount == 0:
        raise HTTPException(404, "asset not in this project")
    await session.commit()
    await ctx.indexer.sync(asset_id)


@router.post("/{project_id}/expand", response_model=ExpandOut)
async def expand(project_id: DbId, user: CurrentUser, session: Session, ctx: Ctx,
                 k: Annotated[int, Query(ge=1, le=100)] = 10, add: bool = False,
                 space: Annotated[SafeStr | None, Query(max_length=200, description=(
                     "The embedding space; default: the one most members have a vector in."))] = None,
                 ) -> ExpandOut:
    """"Expand with similar assets": the k visible assets nearest to the centroid of the members' image
    embeddings (one space), excluding members; `add=true` also adds them to the project (owner only)."""
    project = require_visible(await session.get(Project, project_id), user, "project")
    if add:
        require_owner(project, user, "project")
    members = [r[0] for r in (await session.execute(
        select(ProjectAsset.asset_id).where(ProjectAsset.project_id == project_id))).all()]
    centroid = await query_vectors.of_members(ctx, session, members, user, space)
    result = await ctx.backend.search(SearchQuery(viewer_id=user.id, is_admin=user.is_admin, vector=centroid.values,
                                                  vector_model=centroid.space, exclude_ids=members, size=k,
                                                  facets=False))
    ids = [h.asset_id for h in result.hits]
    assets = {a.id: a for a in (await session.execute(select(Asset).where(Asset.id.in_(ids)))).scalars()}
    found = [assets[i] for i in ids if i in assets and assets[i].deleted_at is None]
    if add and found:
        for asset in found:
            await session.merge(ProjectAsset(project_id=project_id, asset_id=asset.id))
        await session.commit()
        await ctx.indexer.sync([a.id for a in found])
    return ExpandOut(space=centroid.space, assets=[AssetOut.model_validate(a) for a in found])
