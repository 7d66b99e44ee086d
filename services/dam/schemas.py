"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.dam.api.validation import DbId, SafeStr, Sha256Hex, StoredSimilarity

Visibility = Literal["private", "public"]


class UserCreate(BaseModel):
    email: SafeStr = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=1024)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    role: str
    is_active: bool
    created_at: datetime


class UserAdminUpdate(BaseModel):
    role: Literal["admin", "user"] | None = None
    is_active: bool | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None = None


class ApiKeyCreate(BaseModel):
    name: SafeStr = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    key: str | None = None  # only in the response that creates it


class AnnotationOut(BaseModel):
    model: str
    task: str
    state: str
    data: dict[str, Any] | None = None
    error: str | None = None
    updated_at: datetime


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    owner_id: int
    visibility: str
    title: str
    description: str
    tags: list[str]
    filename: str
    mime: str
    kind: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    # pending -> running -> done | failed (skipped: never annotated, e.g. 3D models).
    annotation_state: Literal["pending", "running", "done", "failed", "skipped"]
    annotation_error: str | None = None
    # Models whose result is a failure (done with failures: > 0).
    annotation_failed_models: int = 0
    created_at: datetime
    updated_at: datetime
    # safe | sensitive: an owner's or admin's verdict over the NSFW/disturbing models; None: the models decide.
    moderation: Literal["safe", "sensitive"] | None = None


class UploadOut(AssetOut):
    duplicate: bool = False


class AssetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: SafeStr | None = Field(default=None, max_length=500)
    description: SafeStr | None = Field(default=None, max_length=10_000)
    tags: list[Annotated[SafeStr, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    visibility: Visibility | None = None


class Page(BaseModel):
    total: int
    page: int
    size: int
    items: list[Any]


class LookupIn(BaseModel):
    sha256: list[Sha256Hex] = Field(max_length=10_000)


class ProjectCreate(BaseModel):
    name: SafeStr = Field(min_length=1, max_length=200)
    description: SafeStr = Field(default="", max_length=10_000)
    visibility: Visibility = "private"


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeStr | None = Field(default=None, min_length=1, max_length=200)
    description: SafeStr | None = Field(default=None, max_length=10_000)
    visibility: Visibility | None = None


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    owner_id: int
    name: str
    description: str
    visibility: str
    created_at: datetime
    asset_count: int = 0


class ProjectAssetsIn(BaseModel):
    asset_ids: list[DbId] = Field(min_length=1, max_length=10_000)


class DetectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    owner_id: int
    name: str
    label: str
    visibility: str
    threshold: float
    model: str
    created_at: datetime
    prototypes: int = 0


class DetectorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeStr | None = Field(default=None, min_length=1, max_length=100)
    threshold: StoredSimilarity | None = None
    visibility: Visibility | None = None


class Match(BaseModel):
    asset_id: int
    score: float
    matched: Literal["image", "region"]
    box: list[float] | None = None
    space: str  # the embedding space of the prototype and vector that matched


class SearchHitOut(BaseModel):
    asset: AssetOut
    score: float | None = None
    highlights: dict[str, list[str]] = {}


class SearchOut(BaseModel):
    total: int
    total_relation: Literal["eq", "gte"] = "eq"
    page: int
    size: int
    hits: list[SearchHitOut]
    facets: dict[str, dict[str, int]]
    # The embedding space a kNN searched (None: a text search or browse).
    space: str | None = None


class ExpandOut(BaseModel):
    space: str  # the embedding space of the members' centroid and the kNN
    assets: list[AssetOut]


