"""Search backend `elasticsearch`: the official async client; text with highlights, dense_vector kNN with
filters, aggregations for facets. Same contract as the `postgres` backend."""

from __future__ import annotations

import contextlib
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError
from elasticsearch.helpers import async_bulk

from services.dam.search.base import Hit, SearchBackend, SearchDoc, SearchPage, SearchQuery

_TEXT_FIELDS = ["title^3", "tags^3", "description^2", "captions^2", "ocr_text"]


def mapping(dims: int) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    return {
        "properties": {
            "asset_id": {"type": "long"}, "owner_id": {"type": "long"}, "visibility": keyword, "kind": keyword,
            "mime": keyword, "title": {"type": "text", "analyzer": "english"},
            "description": {"type": "text", "analyzer": "english"},
            "tags": {"type": "text", "analyzer": "english", "fields": {"raw": keyword}},
            "captions": {"type": "text", "analyzer": "english"}, "ocr_text": {"type": "text", "analyzer": "english"},
            "objects": keyword, "faces": {"type": "integer"}, "nsfw": {"type": "boolean"},
            "disturbing": {"type": "boolean"}, "meme": {"type": "boolean"}, "annotation_types": keyword,
            "labels": keyword, "project_ids": {"type": "long"}, "uploaded_at": {"type": "date"},
            "embedding": {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"},
            "embedding_model": keyword,
        }
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
        filters.append({"term": {"embedding_model": query.vector_model}})
    return filters, must_not


def _text_query(q: str) -> dict[str, Any]:
    return {"simple_query_string": {"query": q, "fields": _TEXT_FIELDS, "default_operator": "and"}}


_AGGS = {
    "kind": {"terms": {"field": "kind", "size": 10}},
    "objects": {"terms": {"field": "objects", "size": 50}},
    "nsfw": {"terms": {"field": "nsfw", "size": 3}},
    "meme": {"terms": {"field": "meme", "size": 3}},
    "month": {"date_histogram": {"field": "uploaded_at", "calendar_interval": "month", "format": "yyyy-MM",
                                 "min_doc_count": 1}},
    "annotation_types": {"terms": {"field": "annotation_types", "size": 30}},
}


def _bucket_key(bucket: dict) -> str:
    key = bucket.get("key_as_string", bucket["key"])
    if isinstance(key, bool) or (key in (0, 1) and "key_as_string" in bucket):
        return str(key).lower()
    return str(key)


class ElasticsearchSearch(SearchBackend):
    name = "elasticsearch"

    def __init__(self, url: str, index: str, dims: int, refresh_on_write: bool = True) -> None:
        # httpx is already a dependency; the default async node would need aiohttp.
        self._es = AsyncElasticsearch(url, request_timeout=30, node_class="httpxasync")
        self.index = index
        self._dims = dims
        # Search sees a write at once (the API promises read-your-writes); bulk reindex refreshes once at the end.
        self._refresh = "true" if refresh_on_write else "false"

    async def ensure_index(self) -> None:
        if not await self._es.indices.exists(index=self.index):
            await self._es.indices.create(index=self.index, mappings=mapping(self._dims))

    @staticmethod
    def _source(doc: SearchDoc) -> dict[str, Any]:
        source = dict(doc.__dict__)
        source["uploaded_at"] = doc.uploaded_at.isoformat()
        if doc.embedding is None:
            source.pop("embedding")
            source.pop("embedding_model")
        return source

    async def upsert(self, doc: SearchDoc) -> None:
        await self._es.index(index=self.index, id=str(doc.asset_id), document=self._source(doc),
                             refresh=self._refresh)

    async def bulk_upsert(self, docs: list[SearchDoc]) -> None:
        actions = ({"_index": self.index, "_id": str(d.asset_id), "_source": self._source(d)} for d in docs)
        await async_bulk(self._es, actions)

    async def delete(self, asset_id: int) -> None:
        with contextlib.suppress(NotFoundError):
            await self._es.delete(index=self.index, id=str(asset_id), refresh=self._refresh)

    async def reset(self) -> None:
        await self._es.indices.delete(index=self.index, ignore_unavailable=True)
        await self.ensure_index()

    async def refresh(self) -> None:
        await self._es.indices.refresh(index=self.index)

    async def search(self, query: SearchQuery) -> SearchPage:
        filters, must_not = filters_for(query)
        filters_with_text = [*filters, _text_query(query.q)] if query.q else filters
        offset = (query.page - 1) * query.size
        # Keyword names of the Python client (`from_`, `source`), not the raw JSON body keys.
        body: dict[str, Any] = {"from_": offset, "size": query.size, "track_total_hits": True,
                                "source": ["asset_id"]}
        if query.vector is not None:
            k = offset + query.size
            knn: dict[str, Any] = {
                "field": "embedding", "query_vector": query.vector, "k": k, "num_candidates": max(100, 4 * k),
                "filter": {"bool": {"filter": filters_with_text, "must_not": must_not}},
            }
            if query.min_score is not None:
                knn["similarity"] = query.min_score
            body["knn"] = knn
        elif query.q:
            body["query"] = {"bool": {"must": [_text_query(query.q)], "filter": filters, "must_not": must_not}}
        else:
            body["query"] = {"bool": {"filter": filters, "must_not": must_not}}
            body["sort"] = [{"uploaded_at": "desc"}, {"asset_id": "desc"}]
        if query.q and query.highlight:
            body["highlight"] = {"encoder": "html", "pre_tags": ["<mark>"], "post_tags": ["</mark>"],
                                 "fields": {f: {} for f in ("title", "description", "tags", "captions", "ocr_text")},
                                 "highlight_query": _text_query(query.q)}
        reply = await self._es.search(index=self.index, **body)
        hits = []
        for h in reply["hits"]["hits"]:
            score = h.get("_score")
            if query.vector is not None and score is not None:
                score = 2 * score - 1  # ES cosine scores are (1 + cos) / 2
            elif query.q is None:
                score = None
            hits.append(Hit(asset_id=int(h["_source"]["asset_id"]), score=score,
                            highlights={k: list(v) for k, v in h.get("highlight", {}).items()}))
        total = int(reply["hits"]["total"]["value"])
        facets: dict[str, dict[str, int]] = {}
        if query.facets:
            facets = await self._facets(filters_with_text, must_not, query)
        return SearchPage(total=total, hits=hits, facets=facets)

    async def _facets(self, filters: list, must_not: list, query: SearchQuery) -> dict[str, dict[str, int]]:
        extra = [{"exists": {"field": "embedding"}}] if query.vector is not None else []
        reply = await self._es.search(index=self.index, size=0, aggs=_AGGS, track_total_hits=True,
                                      query={"bool": {"filter": filters + extra, "must_not": must_not}})
        facets = {name: {_bucket_key(b): int(b["doc_count"]) for b in agg["buckets"]}
                  for name, agg in reply["aggregations"].items()}
        total = int(reply["hits"]["total"]["value"])
        for flag in ("nsfw", "meme"):  # documents without the annotation, as the postgres backend reports them
            unknown = total - sum(facets[flag].values())
            if unknown:
                facets[flag]["unknown"] = unknown
        return facets

    async def close(self) -> None:
        await self._es.close()
