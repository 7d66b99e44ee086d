"""People: persons (faces clustered across the library), their faces and assets; naming, merging, moving
and rejecting faces; the full re-clustering; an asset's faces. Logic in services/dam/people."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from services.common.media import MediaError
from services.dam.api.deps import Ctx, CurrentUser, Session, require_visible
from services.dam.api.validation import DbId, SafeStr
from services.dam.models import Asset
from services.dam.people import ops
from services.dam.people.crops import face_crop
from services.dam.people.gallery import export_gallery
from services.dam.people.options import PeopleOptions
from services.dam.people.recluster import recluster_owner
from services.dam.people.schemas import FaceOut, MergeIn, MoveIn, PersonOut, PersonUpdate, ReclusterOut

router = APIRouter(tags=["people"])


def _http(exc: Exception) -> HTTPException:
    code = {ops.NotFound: 404, ops.Forbidden: 403, ops.Conflict: 409}.get(type(exc), 400)
    return HTTPException(code, str(exc))


def _out(person: ops.PersonRow) -> PersonOut:
    return PersonOut(**person.__dict__)


@router.get("/people", response_model=list[PersonOut])
async def list_people(
    user: CurrentUser, session: Session,
    mine: Annotated[bool, Query(description="Only my persons (default); false: every person I may see, "
                                            "others' through their public assets.")] = True,
    named: bool | None = None, hidden: Annotated[bool, Query(description="Include hidden persons.")] = False,
    q: Annotated[SafeStr | None, Query(max_length=200, description="Part of the name.")] = None,
) -> list[PersonOut]:
    return [_out(p) for p in await ops.list_persons(session, user, mine, named, hidden, q)]


@router.post("/people/recluster", response_model=ReclusterOut)
async def recluster(user: CurrentUser, session: Session, ctx: Ctx) -> ReclusterOut:
    """Clusters all my faces afresh (names, moved faces, merges and rejections are kept)."""
    report = await recluster_owner(session, user.id, PeopleOptions.of(ctx.settings.dam))
    await session.commit()
    await ctx.indexer.sync(report.changed_assets, cause="people")
    return ReclusterOut(faces=report.faces, persons=report.persons, new_persons=report.new_persons,
                        removed_persons=report.removed_persons, changed_assets=len(report.changed_assets))


@router.get("/people/gallery", responses={200: {"content": {"application/octet-stream": {}}}})
async def gallery(user: CurrentUser, session: Session,
                  space: Annotated[SafeStr, Query(max_length=200, description="The face-embedding space.")] = "faceres",
                  public: Annotated[bool, Query(description="Also other users' named persons seen through "
                                                            "their public assets.")] = True,
                  ) -> Response:
    """My named persons and other users' public ones as a face gallery .npz (`names`, unit `vectors`): the
    file the annotation service's MAAM_ANNOTATION__FACE_GALLERY names, so ImageFaceRecognition /
    VideoFaceRecognition identify them."""
    return Response(await export_gallery(session, user.id, space, public), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="gallery-{user.id}.npz"'})


@router.get("/people/{person_id}", response_model=PersonOut)
async def get_person(person_id: DbId, user: CurrentUser, session: Session) -> PersonOut:
    try:
        return _out(await ops.get_person(session, user, person_id))
    except ops.NotFound as exc:
        raise _http(exc) from exc


@router.get("/people/{person_id}/faces", response_model=list[FaceOut])
async def person_faces(person_id: DbId, user: CurrentUser, session: Session) -> list[FaceOut]:
    try:
        await ops.get_person(session, user, person_id)
    except ops.NotFound as exc:
        raise _http(exc) from exc
    return [FaceOut(**f) for f in await ops.faces(session, user, "f.person_id = :p AND NOT coalesce(p.hidden, false)",
                                                  {"p": person_id})]


@router.patch("/people/{person_id}", response_model=PersonOut)
async def update_person(person_id: DbId, body: PersonUpdate, user: CurrentUser, session: Session,
                        ctx: Ctx) -> PersonOut:
    """Name (or un-name) a person, hide or show it."""
    try:
        person = await ops.owned_person(session, user, person_id)
    except (ops.NotFound, ops.Forbidden) as exc:
        raise _http(exc) from exc
    changed = await ops.update_person(session, person, body.name, body.clear_name, body.hidden)
    await session.commit()
    await ctx.indexer.sync(changed, cause="people")
    return _out(await ops.get_person(session, user, person_id))


@router.post("/people/{person_id}/merge", response_model=PersonOut)
async def merge_people(person_id: DbId, body: MergeIn, user: CurrentUser, session: Session, ctx: Ctx) -> PersonOut:
    """`other` becomes part of this person."""
    try:
        into = await ops.owned_person(session, user, person_id)
        other = await ops.owned_person(session, user, body.other)
        changed = await ops.merge(session, into, other)
    except (ops.NotFound, ops.Forbidden, ops.Conflict) as exc:
        raise _http(exc) from exc
    await session.commit()
    await ctx.indexer.sync(changed, cause="people")
    return _out(await ops.get_person(session, user, person_id))


@router.get("/assets/{asset_id}/faces", response_model=list[FaceOut])
async def asset_faces(asset_id: DbId, user: CurrentUser, session: Session) -> list[FaceOut]:
    require_visible(await session.get(Asset, asset_id), user, "asset")
    return [FaceOut(**f) for f in await ops.faces(session, user, "f.asset_id = :a", {"a": asset_id})]


async def _face(session: Session, user: CurrentUser, face_id: int) -> dict:
    try:
        return await ops.owned_face(session, user, face_id)
    except (ops.NotFound, ops.Forbidden) as exc:
        raise _http(exc) from exc


@router.get("/faces/{face_id}", response_model=FaceOut)
async def get_face(face_id: DbId, user: CurrentUser, session: Session) -> FaceOut:
    found = await ops.faces(session, user, "f.id = :id", {"id": face_id})
    if not found:
        raise HTTPException(404, "face not found")
    return FaceOut(**found[0])


@router.get("/faces/{face_id}/picture")
async def face_picture(face_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> Response:
    found = await ops.faces(session, user, "f.id = :id", {"id": face_id})
    if not found:
        raise HTTPException(404, "face not found")
    asset = await session.get(Asset, found[0]["asset_id"])
    assert asset is not None  # the face query joined it
    try:
        jpeg = await asyncio.to_thread(face_crop, ctx.blobs.path(asset.sha256), asset.kind, list(found[0]["box"]),
                                       found[0]["frame_index"])
    except (MediaError, OSError) as exc:
        raise HTTPException(404, f"no picture of this face: {exc}") from exc
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


@router.post("/faces/{face_id}/move", response_model=FaceOut)
async def move_face(face_id: DbId, body: MoveIn, user: CurrentUser, session: Session, ctx: Ctx) -> FaceOut:
    """The face belongs to this person (or, with no person, to a new one: a split); it stays there."""
    face = await _face(session, user, face_id)
    try:
        to = await ops.owned_person(session, user, body.person_id) if body.person_id else None
        _, changed = await ops.move_face(session, face, to, await ops.space_id(session, face["space"]))
    except (ops.NotFound, ops.Forbidden, ops.Conflict) as exc:
        raise _http(exc) from exc
    await session.commit()
    await ctx.indexer.sync(changed, cause="people")
    return FaceOut(**(await ops.faces(session, user, "f.id = :id", {"id": face_id}))[0])


@router.post("/faces/{face_id}/reject", response_model=FaceOut)
async def reject_face(face_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> FaceOut:
    """Not this person: the face leaves its person for good (re-clustering keeps it out)."""
    face = await _face(session, user, face_id)
    try:
        changed = await ops.reject_face(session, face)
    except ops.Conflict as exc:
        raise _http(exc) from exc
    await session.commit()
    await ctx.indexer.sync(changed, cause="people")
    return FaceOut(**(await ops.faces(session, user, "f.id = :id", {"id": face_id}))[0])



