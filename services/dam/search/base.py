"""The search contract both backends implement (checked by one test suite)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

Tri = Literal["include", "exclude", "only"]
FACETS = ("kind", "objects", "nsfw", "meme", "month", "annotation_types")
MAX_QUERY_CHARS = 500
MAX_PAGE_SIZE = 100
# Totals are exact up to this many hits and reported as a lower bound beyond it (Elasticsearch's default too):
# counting every match of a common word, or every vector, would cost more than the search itself.
TOTAL_EXACT_UP_TO = 10_000
# The deepest hit a text search or browse may reach (page x size): Elasticsearch's max_result_window, and past
# it an OFFSET scan in PostgreSQL. Narrowing the search is the way further.
MAX_RESULT_WINDOW = 10_000
# The deepest kNN hit: k = page x size nearest neighbours out of 4k candidates, and Elasticsearch takes at
# most 10 000 candidates.
MAX_KNN_WINDOW = 2_500


class SearchIndexError(RuntimeError):
    """The search index cannot serve this DAM as configured (a mapping that disagrees with the database)."""


class QueryError(ValueError):
    """A query the backends refuse (e.g. a page past the deepest one); the API answers 422 with the message."""


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
    # The asset's whole-image vector in each embedding space it has one in (space name -> vector).
    embeddings: dict[str, list[float]] = field(default_factory=dict)
    # Taken before the document was built from PostgreSQL: a write never replaces a newer version.
    version: int = 0
    # The stored file name: not a field of its own, its words are findable (search/words.py).
    filename: str = ""


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
    vector_model: str | None = None  # the embedding space of `vector`: kNN over that space only
    min_score: float | None = None
    page: int = 1
    size: int = 20
    facets: bool = True
    highlight: bool = True
    annotations: list[str] = field(default_factory=list)  # annotation types (tasks), all must be present
    has_text: bool | None = None  # OCR found text in it (True) or not (False)

    def check(self) -> None:
        """Raises QueryError for what no backend serves."""
        if self.vector is not None and not self.vector_model:
            raise QueryError("a vector query must name its embedding space (vector_model)")
        deepest = self.page * self.size
        if self.vector is not None and deepest > MAX_KNN_WINDOW:
            raise QueryError(f"similarity search reaches at most hit {MAX_KNN_WINDOW} (page x size); "
                             f"page {self.page} of size {self.size} asks for hit {deepest}: narrow it with filters")
        if self.vector is None and deepest > MAX_RESULT_WINDOW:
            raise QueryError(f"search reaches at most hit {MAX_RESULT_WINDOW} (page x size); page {self.page} of "
                             f"size {self.size} asks for hit {deepest}: narrow it with filters or a date range")


@dataclass
class Hit:
    asset_id: int
    score: float | None = None
    highlights: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SearchPage:
    # Text and browse: the matching documents. kNN: the matching documents that have a vector in the space
    # (and reach min_score), of which `hits` are the nearest on this page.
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    total_relation: Literal["eq", "gte"] = "eq"  # "gte": at least `total` hits
    space: str | None = None  # the embedding space a kNN searched


class Rebuild(ABC):
    """A rebuild of the whole index in progress: documents written here replace the live index only when the
    context exits cleanly; until then searches see the previous index, complete."""

    @abstractmethod
    async def write(self, docs: Sequence[SearchDoc]) -> None: ...


class SearchBackend(ABC):
    name: str

    async def start(self, spaces: dict[str, int]) -> None:  # noqa: B027 - optional hook
        """Creates or checks the index at startup; `spaces` are the known embedding spaces and their dims."""

    @abstractmethod
    async def upsert_many(self, docs: Sequence[SearchDoc]) -> None: ...

    @abstractmethod
    async def delete_many(self, asset_ids: Sequence[int]) -> None: ...

    async def upsert(self, doc: SearchDoc) -> None:
        await self.upsert_many([doc])

    async def delete(self, asset_id: int) -> None:
        await self.delete_many([asset_id])

    @abstractmethod
    def rebuild(self, spaces: dict[str, int]) -> AbstractAsyncContextManager[Rebuild]: ...

    @abstractmethod
    async def search(self, query: SearchQuery, session: AsyncSession | None = None) -> SearchPage:
        """`session`: the caller's open session (a request's), which a backend on the DAM's database runs in
        instead of checking out a connection of its own; other backends ignore it."""

    async def refresh(self) -> None:  # noqa: B027 - optional hook
        """Makes recent writes visible to search (Elasticsearch near-real-time); no-op elsewhere."""

    async def close(self) -> None:
        return None
