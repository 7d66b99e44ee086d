"""Search backend `elasticsearch`: the official async client; text with highlights, dense_vector kNN with
filters, aggregations for facets. Same contract as the `postgres` backend.

Layout: searches and writes go to an alias (`elasticsearch_index`, default `maam-assets`); the index behind
it is created from an index template (`<alias>-template`, patterns `<alias>-*`), so every generation gets the
same settings and mappings. `maam dam reindex` builds a new generation and swaps the alias in one atomic
update, so there is never an empty window; writes require the alias (`require_alias`), so a write can never
auto-create an index with dynamic mappings. Each embedding space is one `dense_vector` field (`index_options`
`hnsw` by default: float vectors, no quantization), created when the space first appears and checked against
the database's dimensions at start. Writes carry the document's version (`external_gte`) and wait for the
refresh that makes them searchable (`refresh=wait_for`)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError, NotFoundError
from elasticsearch.helpers import async_bulk
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.people.documents import PERSON_LABEL
from services.dam.search.base import (
    MAX_KNN_WINDOW,
    MAX_RESULT_WINDOW,
    TOTAL_EXACT_UP_TO,
    Hit,
    Rebuild,
    SearchBackend,
    SearchDoc,
    SearchIndexError,
    SearchPage,
    SearchQuery,
)
from services.dam.search.query_syntax import es_query
from services.dam.search.words import doc_words

log = logging.getLogger(__name__)

_TEXT_FIELDS = ["title^3", "tags^3", "name_words^3", "description^2", "captions^2", "object_words^2", "ocr_text",
               "text_words"]
_HIGHLIGHTED = ("title", "description", "tags", "captions", "ocr_text")
# Elasticsearch's ceiling for num_candidates; MAX_KNN_WINDOW x 4 stays within it.
MAX_NUM_CANDIDATES = 10_000
assert MAX_KNN_WINDOW * 4 <= MAX_NUM_CANDIDATES


def space_field(space: str) -> str:
    """The dense_vector field of an embedding space: a readable slug plus a hash (names may hold dots)."""
    slug = re.sub(r"[^a-z0-9_]+", "_", space.lower()).strip("_")[:48]
    return f"vector_{slug}_{hashlib.sha1(space.encode()).hexdigest()[:8]}"


# The findable words inside names, detected objects and glued OCR runs (search/words.py), added to older
# indexes at start.
WORD_FIELDS = {name: {"type": "text", "analyzer": "english"} for name in ("name_words", "object_words", "text_words")}


def base_mappings() -> dict[str, Any]:
    keyword = {"type": "keyword"}
    english = {"type": "text", "analyzer": "english"}
    return {
        # Every field is declared; a document with another one is refused, never mapped on the fly.
        "dynamic": "strict",
        "properties": {
            "asset_id": {"type": "long"}, "owner_id": {"type": "long"}, "visibility": keyword, "kind": keyword,
            "mime": keyword, "title": english, "description": english,
            "tags": {**english, "fields": {"raw": keyword}}, "captions": english, "ocr_text": english,
            **WORD_FIELDS,
            "objects": keyword, "faces": {"type": "integer"}, "nsfw": {"type": "boolean"},
            "disturbing": {"type": "boolean"}, "meme": {"type": "boolean"}, "annotation_types": keyword,
            "labels": keyword, "project_ids": {"type": "long"}, "uploaded_at": {"type": "date"},
            # The embedding spaces this document has a vector in (one `vector_*` field each).
            "spaces": keyword,
        },
    }


def vector_mapping(space: str, dims: int, index_type: str) -> dict[str, Any]:
    options: dict[str, Any] = {"type": index_type}
    if index_type.endswith("hnsw"):
        options |= {"m": 16, "ef_construction": 100}
    return {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine", "index_options": options,
            "meta": {"space": space}}


def index_template(alias: str, replicas: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{alias}-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "auto_expand_replicas": replicas,
                         "max_result_window": MAX_RESULT_WINDOW},
            "mappings": base_mappings(),
        },
        "_meta": {"managed_by": "maam-dam", "alias": alias},
    }


def _tri(field: str, mode: str, filters: list, must_not: list) -> None:
    if mode == "exclude":
        must_not.append({"term": {field: True}})
    elif mode == "only":
        filters.append({"term": {field: True}})


def filters_for(query: SearchQuery) -> tuple[list[dict], list[dict]]:
    filters: list[dict] = []
    must_not: list[dict] = []
    if not query.is_admin:
        filters.append({"bool": {"should": [{"term": {"visibility": "public"}},
                                            {"term": {"owner_id": query.viewer_id}}], "minimum_should_match": 1}})
    if query.kinds:
        filters.append({"terms": {"kind": query.kinds}})
    filters += [{"term": {"objects": o}} for o in query.objects]
    filters += [{"term": {"labels": label}} for label in query.labels]
    if query.faces is not None:
        filters.append({"range": {"faces": {"gt": 0}}} if query.faces else {"term": {"faces": 0}})
    filters += [{"term": {"annotation_types": t}} for t in query.annotations]
    if query.has_text is not None:  # any token in the OCR text
        (filters if query.has_text else must_not).append({"regexp": {"ocr_text": ".+"}})
    _tri("nsfw", query.nsfw, filters, must_not)
    _tri("disturbing", query.disturbing, filters, must_not)
    _tri("meme", query.meme, filters, must_not)
    span: dict[str, str] = {}
    if query.uploaded_from:
        span["gte"] = query.uploaded_from.isoformat()
    if query.uploaded_to:
        span["lt"] = query.uploaded_to.isoformat()
    if span:
        filters.append({"range": {"uploaded_at": span}})
    if query.owner_id is not None:
        filters.append({"term": {"owner_id": query.owner_id}})
    if query.project_id is not None:
        filters.append({"term": {"project_ids": query.project_id}})
    if query.asset_ids is not None:
        filters.append({"terms": {"asset_id": query.asset_ids}})
    if query.exclude_ids:
        must_not.append({"terms": {"asset_id": query.exclude_ids}})
    if query.vector is not None and query.vector_model is not None:
        filters.append({"term": {"spaces": query.vector_model}})
    if query.q:
        filters.append(es_query(query.q, _TEXT_FIELDS))
    return filters, must_not


_AGGS = {
    "kind": {"terms": {"field": "kind", "size": 10}},
    "objects": {"terms": {"field": "objects", "size": 50}},
    "nsfw": {"terms": {"field": "nsfw", "size": 3}},
    "meme": {"terms": {"field": "meme", "size": 3}},
    "month": {"date_histogram": {"field": "uploaded_at", "calendar_interval": "month", "format": "yyyy-MM",
                                 "min_doc_count": 1}},
    "annotation_types": {"terms": {"field": "annotation_types", "size": 30}},
    # Persons ride on the labels field under their prefix (services/dam/people/documents.py).
    "people": {"terms": {"field": "labels", "include": PERSON_LABEL + ".*", "size": 50}},
}


def _bucket_key(bucket: dict) -> str:
    key = bucket.get("key_as_string", bucket["key"])
    if isinstance(key, bool) or (key in (0, 1) and "key_as_string" in bucket):
        return str(key).lower()
    return str(key)


def search_bodies(query: SearchQuery) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The search request (keyword names of the Python client: `from_`, `source`) and, for a kNN, the request
    that counts and facets every match (a kNN's own total is only its k)."""
    query.check()
    filters, must_not = filters_for(query)
    offset = (query.page - 1) * query.size
    body: dict[str, Any] = {"from_": offset, "size": query.size, "source": ["asset_id"]}
    count: dict[str, Any] | None = None
    if query.vector is not None and query.vector_model is not None:
        k = offset + query.size
        field = space_field(query.vector_model)
        knn: dict[str, Any] = {
            "field": field, "query_vector": query.vector, "k": k,
            "num_candidates": min(MAX_NUM_CANDIDATES, max(100, 4 * k)),
            "filter": {"bool": {"filter": filters, "must_not": must_not}},
        }
        matching: dict[str, Any] = {"bool": {"filter": filters, "must_not": must_not}}
        if query.min_score is not None:
            knn["similarity"] = query.min_score  # the raw cosine, not the (1 + cos) / 2 score
            # Counted exactly: every filtered document whose cosine reaches min_score.
            matching = {"script_score": {
                "query": matching, "min_score": query.min_score + 1.0,
                "script": {"source": "cosineSimilarity(params.v, params.f) + 1.0",
                           "params": {"v": query.vector, "f": field}}}}
        body["knn"] = knn
        body["track_total_hits"] = False
        count = {"size": 0, "query": matching, "track_total_hits": TOTAL_EXACT_UP_TO}
        if query.facets:
            count["aggs"] = _AGGS
    else:
        body["track_total_hits"] = TOTAL_EXACT_UP_TO
        body["query"] = {"bool": {"filter": filters, "must_not": must_not}}
        if query.q:
            # Scored by the text; the same clause also sits in `filter` (no score there), which changes nothing.
            body["query"]["bool"]["must"] = [es_query(query.q, _TEXT_FIELDS)]
        else:
            body["sort"] = [{"uploaded_at": "desc"}, {"asset_id": "desc"}]
        if query.facets:
            body["aggs"] = _AGGS
    if query.q and query.highlight:
        body["highlight"] = {"encoder": "html", "pre_tags": ["<mark>"], "post_tags": ["</mark>"],
                             "fields": {f: {} for f in _HIGHLIGHTED},
                             "highlight_query": es_query(query.q, _TEXT_FIELDS)}
    return body, count


def _facets(reply: dict[str, Any]) -> dict[str, dict[str, int]]:
    facets = {name: {_bucket_key(b): int(b["doc_count"]) for b in agg["buckets"]}
              for name, agg in reply["aggregations"].items()}
    total = int(reply["hits"]["total"]["value"])
    for flag in ("nsfw", "meme"):  # documents without the annotation, as the postgres backend reports them
        unknown = total - sum(facets[flag].values())
        if unknown:
            facets[flag]["unknown"] = unknown
    return facets


def _total(reply: dict[str, Any]) -> tuple[int, Literal["eq", "gte"]]:
    total = reply["hits"]["total"]
    value = min(int(total["value"]), TOTAL_EXACT_UP_TO)
    return value, ("gte" if total.get("relation") == "gte" or value == TOTAL_EXACT_UP_TO else "eq")


def _bulk_failures(errors: int | list[Any], ignore: int) -> list[dict[str, Any]]:
    """The items of a bulk reply that failed with another status than `ignore`."""
    items = errors if isinstance(errors, list) else []
    return [e for e in items if isinstance(e, dict) and next(iter(e.values()), {}).get("status") != ignore]


class _NewIndex(Rebuild):
    def __init__(self, backend: ElasticsearchSearch, index: str) -> None:
        self._backend, self._index = backend, index

    async def write(self, docs: Sequence[SearchDoc]) -> None:
        await self._backend._bulk_index(docs, self._index, refresh=False, require_alias=False)


class ElasticsearchSearch(SearchBackend):
    name = "elasticsearch"

    def __init__(self, url: str, index: str, vector_index: str = "hnsw", replicas: str = "0-1",
                 node_class: Any = "httpxasync") -> None:
        # httpx is already a dependency; the default async node would need aiohttp.
        self._es = AsyncElasticsearch(url, request_timeout=30, node_class=node_class)
        self.index = index  # the alias
        self._vector_index = vector_index
        self._replicas = replicas
        self._spaces: dict[str, int] = {}  # spaces mapped in the live index

    @property
    def template(self) -> str:
        return f"{self.index}-template"

    # ---- index lifecycle ----------------------------------------------------------------------
    async def start(self, spaces: dict[str, int]) -> None:
        await self._es.indices.put_index_template(name=self.template, **index_template(self.index, self._replicas))
        if not await self._es.indices.exists_alias(name=self.index):
            if await self._es.indices.exists(index=self.index):
                raise SearchIndexError(
                    f"Elasticsearch index {self.index!r} is a plain index of an older layout, not an alias; "
                    "run `maam dam reindex` once to rebuild it behind the alias")
            first = f"{self.index}-1"
            try:
                await self._es.indices.create(
                    index=first, aliases={self.index: {"is_write_index": True}},
                    mappings={"properties": self._vector_properties(spaces)})
            except BadRequestError as exc:  # another DAM process created it first
                if exc.error != "resource_already_exists_exception":
                    raise
        await self._check_spaces(spaces)

    def _vector_properties(self, spaces: dict[str, int]) -> dict[str, Any]:
        return {space_field(name): vector_mapping(name, dim, self._vector_index) for name, dim in spaces.items()}

    async def _check_spaces(self, spaces: dict[str, int]) -> None:
        """Every known space is mapped with its dimension in the live index (missing ones are added)."""
        mappings = await self._es.indices.get_mapping(index=self.index)
        for index, mapping in mappings.items():
            properties = mapping["mappings"].get("properties", {})
            for name, dim in spaces.items():
                mapped = properties.get(space_field(name))
                if mapped is not None and int(mapped.get("dims", -1)) != dim:
                    raise SearchIndexError(
                        f"Elasticsearch index {index!r} maps embedding space {name!r} with {mapped.get('dims')} "
                        f"dims but the database holds {dim}-d vectors; run `maam dam reindex`")
            missing = {n: d for n, d in spaces.items() if space_field(n) not in properties}
            added = self._vector_properties(missing)
            if "title" in properties:  # an index made before the word fields: adding fields is allowed
                added |= {name: spec for name, spec in WORD_FIELDS.items() if name not in properties}
            if added:
                await self._es.indices.put_mapping(index=index, properties=added)
        self._spaces = dict(spaces)

    async def _ensure_spaces(self, docs: Sequence[SearchDoc]) -> None:
        new = {name: len(vec) for d in docs for name, vec in d.embeddings.items() if name not in self._spaces}
        if new:
            await self._es.indices.put_mapping(index=self.index, properties=self._vector_properties(new))
            self._spaces |= new

    @contextlib.asynccontextmanager
    async def rebuild(self, spaces: dict[str, int]) -> AsyncIterator[Rebuild]:
        await self.start(spaces)
        new = f"{self.index}-{time.time_ns() // 1_000_000}"
        # The template gives settings and mappings; refreshes wait until the load is done.
        await self._es.indices.create(index=new, settings={"refresh_interval": "-1"},
                                      mappings={"properties": self._vector_properties(spaces)})
        try:
            yield _NewIndex(self, new)
            await self._es.indices.put_settings(index=new, settings={"refresh_interval": None})
            await self._es.indices.refresh(index=new)
            old = list((await self._es.indices.get_alias(name=self.index)).keys())
            actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.index}} for i in old]
            actions.append({"add": {"index": new, "alias": self.index, "is_write_index": True}})
            await self._es.indices.update_aliases(actions=actions)  # atomic: no moment without an index
        except BaseException:
            with contextlib.suppress(Exception):
                await self._es.indices.delete(index=new, ignore_unavailable=True)
            raise
        for index in old:
            await self._es.indices.delete(index=index, ignore_unavailable=True)
        self._spaces = dict(spaces)

    # ---- writes ---------------------------------------------------------------------------------
    @staticmethod
    def _source(doc: SearchDoc) -> dict[str, Any]:
        source = {k: v for k, v in doc.__dict__.items() if k not in ("embeddings", "version", "filename")}
        source |= doc_words(doc)
        source["uploaded_at"] = doc.uploaded_at.isoformat()
        source["spaces"] = sorted(doc.embeddings)
        for name, vector in doc.embeddings.items():
            source[space_field(name)] = vector
        return source

    async def upsert_many(self, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        await self._ensure_spaces(docs)
        if len(docs) == 1:
            doc = docs[0]
            with contextlib.suppress(ConflictError):  # a newer version is already there
                await self._es.index(index=self.index, id=str(doc.asset_id), document=self._source(doc),
                                     version=doc.version, version_type="external_gte", refresh="wait_for",
                                     require_alias=True)
            return
        await self._bulk_index(docs, self.index, refresh="wait_for", require_alias=True)

    async def _bulk_index(self, docs: Sequence[SearchDoc], index: str, refresh: str | bool,
                          require_alias: bool) -> None:
        actions = ({"_op_type": "index", "_index": index, "_id": str(d.asset_id), "_source": self._source(d),
                    "version": d.version, "version_type": "external_gte"} for d in docs)
        _, errors = await async_bulk(self._es, actions, refresh=refresh, require_alias=require_alias,
                                     raise_on_error=False, stats_only=False)
        failed = _bulk_failures(errors, ignore=409)  # 409: a newer version of that document is already indexed
        if failed:
            raise SearchIndexError(f"Elasticsearch refused {len(failed)} document(s): {failed[:3]}")

    async def delete_many(self, asset_ids: Sequence[int]) -> None:
        if not asset_ids:
            return
        actions = ({"_op_type": "delete", "_index": self.index, "_id": str(i)} for i in asset_ids)
        _, errors = await async_bulk(self._es, actions, refresh="wait_for", raise_on_error=False,
                                     stats_only=False)
        failed = _bulk_failures(errors, ignore=404)  # 404: not indexed (never, or deleted before)
        if failed:
            raise SearchIndexError(f"Elasticsearch did not delete {len(failed)} document(s): {failed[:3]}")

    async def refresh(self) -> None:
        await self._es.indices.refresh(index=self.index)

    # ---- search ---------------------------------------------------------------------------------
    async def search(self, query: SearchQuery, session: AsyncSession | None = None) -> SearchPage:
        body, count = search_bodies(query)
        space = query.vector_model if query.vector is not None else None
        if space is not None and space not in self._spaces:
            await self._refresh_spaces()
            if space not in self._spaces or self._spaces[space] != len(query.vector or ()):
                # Nothing is indexed in that space (or the vector has another size): nothing is near.
                return SearchPage(total=0, hits=[], space=space, facets={} if not query.facets else {
                    name: {} for name in _AGGS})
        reply = (await self._es.search(index=self.index, **body)).body
        hits = []
        for h in reply["hits"]["hits"]:
            score = h.get("_score")
            if query.vector is not None and score is not None:
                score = 2 * score - 1  # ES cosine scores are (1 + cos) / 2
            elif query.q is None:
                score = None
            hits.append(Hit(asset_id=int(h["_source"]["asset_id"]), score=score,
                            highlights={k: list(v) for k, v in h.get("highlight", {}).items()}))
        totals_from = reply
        if count is not None:
            totals_from = (await self._es.search(index=self.index, **count)).body
        total, relation = _total(totals_from)
        facets = _facets(totals_from) if query.facets else {}
        return SearchPage(total=total, hits=hits, facets=facets, total_relation=relation, space=space)

    async def _refresh_spaces(self) -> None:
        """Spaces another process (a worker, a reindex) mapped since this one looked."""
        mappings = await self._es.indices.get_mapping(index=self.index)
        for mapping in mappings.values():
            for spec in mapping["mappings"].get("properties", {}).values():
                if spec.get("type") == "dense_vector" and "space" in spec.get("meta", {}):
                    self._spaces[spec["meta"]["space"]] = int(spec["dims"])

    async def close(self) -> None:
        await self._es.close()


__all__ = ["ElasticsearchSearch", "NotFoundError", "space_field"]
