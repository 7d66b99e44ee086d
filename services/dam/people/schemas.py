"""API shapes of persons and faces."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from services.dam.api.validation import MAX_DB_ID

PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PersonOut(BaseModel):
    id: int
    owner_id: int
    space: str
    name: str | None
    hidden: bool
    face_count: int  # the faces this viewer may see
    asset_count: int
    cover_face_id: int | None


class PersonUpdate(BaseModel):
    name: PersonName | None = None
    clear_name: bool = False  # forget the name (the person stays)
    hidden: bool | None = None

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 for c in value):
            raise ValueError("a name must not contain control characters")
        return value


class MergeIn(BaseModel):
    other: int = Field(ge=1, le=MAX_DB_ID, description="The person merged into this one (it goes).")


class MoveIn(BaseModel):
    person_id: int | None = Field(None, ge=1, le=MAX_DB_ID,
                                  description="The person the face belongs to; null: a new person (split).")


class FaceOut(BaseModel):
    id: int
    asset_id: int
    box: list[float]
    frame_index: int | None
    timestamp: float | None
    track: int | None
    score: float
    quality: float
    size_px: float
    attributes: dict[str, Any]
    pinned: bool
    space: str | None
    person_id: int | None
    person_name: str | None


class ReclusterOut(BaseModel):
    faces: int
    persons: int
    new_persons: int
    removed_persons: int
    changed_assets: int
