"""Listing and deleting a user's contents (not in the original service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.cmrr.api.deps import Service, User

router = APIRouter(prefix="/contents", tags=["contents"])


@router.get("")
async def list_contents(service: Service, user: User) -> dict:
    """The user's stored contents per type, oldest first; `id` is the most recent of `ids`."""
    return {"user": user, **service.list_contents(user)}


@router.delete("/{content_id}")
async def delete_content(service: Service, user: User,
                         content_id: Annotated[str, Path(min_length=1, max_length=256)]) -> dict:
    """Removes one id of the user's; the content itself goes with its last id."""
    change = await service.delete(user, content_id)
    assert change.entry is not None
    return {"msg": f"Content {content_id} deleted", "type": change.entry.modality, "remaining_ids": change.entry.ids}
