"""The search contract both backends implement (checked by one test suite)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Tri = Literal["include", "exclude", "only"]
FACETS = ("kind", "objects", "nsfw", "meme", "month", "annotation_types")
MAX_QUERY_CHARS = 500
MAX_PAGE_SIZE = 100


@dataclass
class SearchDoc:
    asset_id: int
    owner_id: int
    visibility: str
    kind: str
    mime: str
    uploaded_at: datetime
    title: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    captions: str = ""
    ocr_text: str = ""
    objects: list[str] = field(default_factory=list)
    faces: int = 0
    nsfw: bool | None = None
    disturbing: bool | None = None
    meme: bool | None = None
    annotation_types: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    project_ids: list[int] = field(default_factory=list)
    embedding: list[float] | None = None
    embedding_model: str | None = None


@dataclass
class SearchQuery:
    viewer_id: int
    is_admin: bool = False
    q: str | None = None
    kinds: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)  # all must be present
    labels: list[str] = field(default_factory=list)  # detector labels, all must be present
    faces: bool | None = None
    nsfw: Tri = "include"
    disturbing: Tri = "include"
    meme: Tri = "include"
    uploaded_from: datetime | None = None
    uploaded_to: datetime | None = None
    owner_id: int | None = None
    project_id: int | None = None
    asset_ids: list[int] | None = None  # restrict to these (e.g. a project's members)
    exclude_ids: list[int] = field(default_factory=list)
    vector: list[float] | None = None
    vector_model: str | None = None  # kNN only over documents embedded by this model
    min_score: float | None = None
    page: int = 1
    size: int = 20
    facets: bool = True
    highlight: bool = True


@dataclass
class Hit:
    asset_id: int
    score: float | None = None
    highlights: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SearchPage:
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


class SearchBackend(ABC):
    name: str

    @abstractmethod
    async def upsert(self, doc: SearchDoc) -> None: ...

    @abstractmethod
    async def delete(self, asset_id: int) -> None: ...

    @abstractmethod
    async def search(self, query: SearchQuery) -> SearchPage: ...

    async def reset(self) -> None:  # noqa: B027 - optional hook
        """Drops every document (reindex starts from empty)."""

    async def refresh(self) -> None:  # noqa: B027 - optional hook
        """Makes recent writes visible to search (Elasticsearch near-real-time); no-op elsewhere."""

    async def close(self) -> None:
        return None


def doc_as_dict(doc: SearchDoc) -> dict[str, Any]:
    return dict(doc.__dict__)
