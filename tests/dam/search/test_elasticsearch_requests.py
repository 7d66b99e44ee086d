"""The Elasticsearch backend's requests, recorded through the official client's own transport (a node class
that answers in-process: no server here) and checked against the client's API: its DSL parses every query,
mapping and search body (`elasticsearch.dsl`), knn keys are those of its `Knn` query, index_options types those
its `DenseVectorIndexOptions` allows. What a real server does with them is the contract suite's part, where
MAAM_TEST_ELASTICSEARCH_URL is set."""

from __future__ import annotations

import inspect
import json
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from elastic_transport import ApiResponseMeta, BaseAsyncNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch.dsl import Mapping, Q, Search, query, types

from services.dam.search.base import (
    MAX_KNN_WINDOW,
    MAX_RESULT_WINDOW,
    QueryError,
    SearchDoc,
    SearchIndexError,
    SearchQuery,
)
from services.dam.search.elasticsearch import MAX_NUM_CANDIDATES, ElasticsearchSearch, space_field

ALIAS = "maam-rec"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any


class FakeCluster:
    """Just enough of a cluster's answers to drive the backend; every request is kept."""

    def __init__(self, dims: dict[str, int] | None = None, old_layout: bool = False) -> None:
        self.requests: list[Request] = []
        self.indices: dict[str, dict[str, Any]] = {}  # index -> properties
        self.aliases: dict[str, str] = {}  # index -> alias
        self.old_layout = old_layout
        if dims:  # an index already behind the alias, with these vector fields
            self.indices[f"{ALIAS}-1"] = {space_field(s): {"type": "dense_vector", "dims": d, "meta": {"space": s}}
                                          for s, d in dims.items()}
            self.aliases[f"{ALIAS}-1"] = ALIAS

    def behind(self, name: str) -> list[str]:
        return [i for i, a in self.aliases.items() if a == name] or ([name] if name in self.indices else [])

    def answer(self, request: Request) -> tuple[int, Any]:
        self.requests.append(request)
        method, parts = request.method, [p for p in request.path.split("/") if p]
        if method == "HEAD":
            if parts[0] == "_alias":
                return (200 if self.behind(parts[1]) and parts[1] not in self.indices else 404), None
            return (200 if self.old_layout and parts[0] == ALIAS else 404), None
        if parts[0] == "_index_template" or parts[0] == "_aliases":
            if parts[0] == "_aliases":
                for action in request.body["actions"]:
                    kind, spec = next(iter(action.items()))
                    if kind == "remove":
                        self.aliases.pop(spec["index"], None)
                    elif kind == "add":
                        self.aliases[spec["index"]] = spec["alias"]
            return 200, {"acknowledged": True}
        if parts[0] == "_bulk":
            lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
            items = []
            for line in lines:
                op = next(iter(line))
                if op in ("index", "delete") and isinstance(line[op], dict) and "_id" in line[op]:
                    items.append({op: {"_id": line[op]["_id"], "status": 200}})
            return 200, {"errors": False, "took": 1, "items": items}
        if parts[0] == "_alias":
            return 200, {i: {"aliases": {parts[1]: {}}} for i in self.behind(parts[1])}
        if len(parts) == 1 and method == "PUT":
            self.indices[parts[0]] = dict(request.body.get("mappings", {}).get("properties", {}))
            for alias in request.body.get("aliases", {}):
                self.aliases[parts[0]] = alias
            return 200, {"acknowledged": True, "index": parts[0]}
        if len(parts) == 1 and method == "DELETE":
            self.indices.pop(parts[0], None)
            self.aliases.pop(parts[0], None)
            return 200, {"acknowledged": True}
        if parts[1] == "_mapping":
            if method == "PUT":
                for index in self.behind(parts[0]):
                    self.indices[index].update(request.body["properties"])
                return 200, {"acknowledged": True}
            return 200, {i: {"mappings": {"properties": self.indices[i]}} for i in self.behind(parts[0])}
        if parts[1] in ("_settings", "_refresh"):
            return 200, {"acknowledged": True}
        if parts[1] == "_doc":
            return 201, {"result": "created", "_id": parts[2]}
        if parts[1] == "_search":
            body = request.body
            hits = [] if body.get("size") == 0 else [{"_source": {"asset_id": 1}, "_score": 0.9}]
            reply: dict[str, Any] = {"hits": {"hits": hits, "total": {"value": 7, "relation": "eq"}}}
            if "aggs" in body:
                reply["aggregations"] = {name: {"buckets": []} for name in body["aggs"]}
            return 200, reply
        raise AssertionError(f"unexpected request {method} {request.path}")


def recording_node(cluster: FakeCluster) -> type[BaseAsyncNode]:
    class RecordingNode(BaseAsyncNode):
        async def perform_request(self, method, target, body=None, headers=None, request_timeout=None):
            url = urlsplit(target)
            raw = (body or b"").decode()
            parsed: Any = raw
            if raw and not url.path.endswith("_bulk"):
                parsed = json.loads(raw)
            status, reply = cluster.answer(Request(method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                                   parsed))
            meta = ApiResponseMeta(status=status, http_version="1.1", duration=0.0, node=self.config,
                                   headers=HttpHeaders({"x-elastic-product": "Elasticsearch",
                                                        "content-type": "application/json"}))
            return NodeApiResponse(meta, json.dumps(reply).encode() if reply is not None else b"")

        async def close(self) -> None:
            return None

    return RecordingNode


def _backend(cluster: FakeCluster, **kw: Any) -> ElasticsearchSearch:
    return ElasticsearchSearch("http://es.invalid:9200", ALIAS, node_class=recording_node(cluster), **kw)


def _find(cluster: FakeCluster, method: str, suffix: str) -> list[Request]:
    return [r for r in cluster.requests if r.method == method and r.path.endswith(suffix)]


def _index_option_types() -> tuple[str, ...]:
    hint = inspect.signature(types.DenseVectorIndexOptions.__init__).parameters["type"].annotation
    if isinstance(hint, str):  # postponed annotations
        hint = typing.get_type_hints(types.DenseVectorIndexOptions.__init__)["type"]
    literal = next(a for a in typing.get_args(hint) if typing.get_origin(a) is typing.Literal)
    return typing.get_args(literal)


def _check_vector_field(spec: dict[str, Any], dims: int) -> None:
    assert spec["type"] == "dense_vector" and spec["dims"] == dims and spec["similarity"] == "cosine"
    assert spec["index_options"]["type"] in _index_option_types()
    types.DenseVectorIndexOptions(**spec["index_options"])


def _doc(asset_id: int, **kw: Any) -> SearchDoc:
    return SearchDoc(asset_id, 1, "public", "image", "image/png", datetime(2026, 1, 2, tzinfo=UTC), **kw)


async def test_start_puts_the_template_and_creates_the_first_index_behind_the_alias():
    cluster = FakeCluster()
    backend = _backend(cluster)
    await backend.start({"clip": 4})
    (template,) = _find(cluster, "PUT", f"/_index_template/{ALIAS}-template")
    body = template.body
    assert body["index_patterns"] == [f"{ALIAS}-*"]
    settings = body["template"]["settings"]
    # One node: no replica (green, not yellow); one more node: one replica.
    assert settings["auto_expand_replicas"] == "0-1" and settings["max_result_window"] == MAX_RESULT_WINDOW
    mappings = body["template"]["mappings"]
    assert mappings["dynamic"] == "strict" and mappings["properties"]["spaces"] == {"type": "keyword"}
    Mapping()._update_from_dict(mappings)  # every field type is one the client knows
    (create,) = _find(cluster, "PUT", f"/{ALIAS}-1")
    assert create.body["aliases"] == {ALIAS: {"is_write_index": True}}
    _check_vector_field(create.body["mappings"]["properties"][space_field("clip")], 4)
    assert create.body["mappings"]["properties"][space_field("clip")]["index_options"]["type"] == "hnsw"
    await backend.close()


async def test_quantization_is_an_option_and_dims_are_checked_at_start():
    cluster = FakeCluster()
    await _backend(cluster, vector_index="int8_hnsw").start({"visual": 24})
    (create,) = _find(cluster, "PUT", f"/{ALIAS}-1")
    assert create.body["mappings"]["properties"][space_field("visual")]["index_options"]["type"] == "int8_hnsw"

    mismatch = _backend(FakeCluster(dims={"clip": 512}))
    with pytest.raises(SearchIndexError, match="512 dims but the database holds 768-d"):
        await mismatch.start({"clip": 768})
    old = _backend(FakeCluster(old_layout=True))
    with pytest.raises(SearchIndexError, match="maam dam reindex"):
        await old.start({})
    # A space the index lacks is added to it at start.
    grown = FakeCluster(dims={"clip": 4})
    await _backend(grown).start({"clip": 4, "visual": 24})
    (added,) = _find(grown, "PUT", "/_mapping")
    _check_vector_field(added.body["properties"][space_field("visual")], 24)


async def test_writes_need_the_alias_carry_versions_and_wait_for_refresh():
    cluster = FakeCluster(dims={"clip": 4})
    backend = _backend(cluster)
    await backend.start({"clip": 4})
    await backend.upsert(_doc(1, title="one", embeddings={"clip": [1, 0, 0, 0]}, version=5))
    (single,) = _find(cluster, "PUT", "/_doc/1")
    assert single.path == f"/{ALIAS}/_doc/1"
    assert single.params == {"require_alias": "true", "refresh": "wait_for", "version": "5",
                             "version_type": "external_gte"}
    assert single.body[space_field("clip")] == [1, 0, 0, 0] and single.body["spaces"] == ["clip"]
    assert "embeddings" not in single.body and "version" not in single.body
    # A document in a new space: its field is mapped first, then the bulk write.
    await backend.upsert_many([_doc(2, embeddings={"visual": [0.0] * 24}, version=6), _doc(3, version=7)])
    (mapped,) = _find(cluster, "PUT", "/_mapping")
    _check_vector_field(mapped.body["properties"][space_field("visual")], 24)
    (bulk,) = _find(cluster, "PUT", "/_bulk") + _find(cluster, "POST", "/_bulk")
    assert bulk.params == {"refresh": "wait_for", "require_alias": "true"}
    actions = [json.loads(line) for line in bulk.body.splitlines()][::2]
    assert [a["index"]["version"] for a in actions] == [6, 7]
    assert {a["index"]["version_type"] for a in actions} == {"external_gte"}
    await backend.delete_many([2, 3])
    deletes = (_find(cluster, "PUT", "/_bulk") + _find(cluster, "POST", "/_bulk"))[-1]
    assert deletes.params["refresh"] == "wait_for" and deletes.body.count('"delete"') == 2
    await backend.close()


async def _search(backend: ElasticsearchSearch, cluster: FakeCluster, **kw: Any) -> list[Request]:
    before = len(cluster.requests)
    await backend.search(SearchQuery(viewer_id=1, **kw))
    searches = [r for r in cluster.requests[before:] if r.path.endswith("/_search")]
    for r in searches:
        Search.from_dict(r.body)  # the client's DSL parses the whole body (unknown queries raise)
        if "knn" in r.body:
            knn = r.body["knn"]
            assert set(knn) <= set(inspect.signature(query.Knn.__init__).parameters)
            Q(knn["filter"])
    return searches


async def test_knn_body_pagination_bounds_and_an_honest_total():
    cluster = FakeCluster(dims={"clip": 4})
    backend = _backend(cluster)
    await backend.start({"clip": 4})
    knn_search, count = await _search(backend, cluster, vector=[1, 0, 0, 0], vector_model="clip", size=20, page=2)
    knn = knn_search.body["knn"]
    assert knn["field"] == space_field("clip") and knn["k"] == 40 and knn["num_candidates"] == 160
    assert knn_search.body["from"] == 20 and knn_search.body["size"] == 20
    assert {"term": {"spaces": "clip"}} in knn["filter"]["bool"]["filter"]
    # The total and facets come from a count over every match, not from the k hits.
    assert count.body["size"] == 0 and count.body["track_total_hits"] == 10_000 and "aggs" in count.body
    assert {"term": {"spaces": "clip"}} in count.body["query"]["bool"]["filter"]
    # min_score: kNN similarity (raw cosine) and an exact count of the documents that reach it.
    knn_search, count = await _search(backend, cluster, vector=[1, 0, 0, 0], vector_model="clip", min_score=0.3)
    assert knn_search.body["knn"]["similarity"] == 0.3
    assert count.body["query"]["script_score"]["min_score"] == pytest.approx(1.3)
    # The deepest pages reach the server's limits exactly; one page more is refused before any request.
    deepest_knn, _ = await _search(backend, cluster, vector=[1, 0, 0, 0], vector_model="clip", size=100,
                                   page=MAX_KNN_WINDOW // 100)
    assert deepest_knn.body["knn"]["k"] == MAX_KNN_WINDOW
    assert deepest_knn.body["knn"]["num_candidates"] == MAX_NUM_CANDIDATES == 10_000
    (deepest_text,) = await _search(backend, cluster, q="cat", size=100, page=MAX_RESULT_WINDOW // 100)
    assert deepest_text.body["from"] + deepest_text.body["size"] == MAX_RESULT_WINDOW
    sent = len(cluster.requests)
    for kw in ({"vector": [1, 0, 0, 0], "vector_model": "clip", "page": MAX_KNN_WINDOW // 100 + 1},
               {"q": "cat", "page": MAX_RESULT_WINDOW // 100 + 1}):
        with pytest.raises(QueryError):
            await backend.search(SearchQuery(viewer_id=1, size=100, **kw))
    assert len(cluster.requests) == sent
    await backend.close()


async def test_web_search_syntax_becomes_bool_and_phrase_queries_with_highlights():
    cluster = FakeCluster(dims={"clip": 4})
    backend = _backend(cluster)
    await backend.start({"clip": 4})
    (text_search,) = await _search(backend, cluster, q='"stone statues" OR ferry -boat')
    (scored,) = text_search.body["query"]["bool"]["must"]
    phrase_group, word_group = scored["bool"]["should"]
    assert phrase_group["bool"]["must"][0]["multi_match"] | {"fields": None} == {
        "query": "stone statues", "type": "phrase", "fields": None}
    assert word_group["bool"]["must"][0]["combined_fields"]["query"] == "ferry"
    assert word_group["bool"]["must_not"][0]["combined_fields"]["query"] == "boat"
    assert "simple_query_string" not in json.dumps(text_search.body)
    assert text_search.body["highlight"]["highlight_query"] == scored
    # kNN + text: the text filters the candidates and is highlighted.
    knn_search, _ = await _search(backend, cluster, q="gargoyle", vector=[1, 0, 0, 0], vector_model="clip")
    assert any("combined_fields" in json.dumps(f) for f in knn_search.body["knn"]["filter"]["bool"]["filter"])
    assert "highlight_query" in knn_search.body["highlight"]
    await backend.close()


async def test_rebuild_loads_a_new_index_and_swaps_the_alias_in_one_request():
    cluster = FakeCluster(dims={"clip": 4})
    backend = _backend(cluster)
    async with backend.rebuild({"clip": 4, "visual": 24}) as target:
        await target.write([_doc(1, embeddings={"clip": [1, 0, 0, 0]}, version=3)])
        # Nothing is swapped yet: searches still go to the old index behind the alias.
        assert cluster.aliases == {f"{ALIAS}-1": ALIAS}
    create = [r for r in cluster.requests if r.method == "PUT" and r.path.startswith(f"/{ALIAS}-")
              and r.path.count("/") == 1 and r.path != f"/{ALIAS}-1"]
    new = create[0].path.strip("/")
    assert create[0].body["settings"] == {"refresh_interval": "-1"}
    _check_vector_field(create[0].body["mappings"]["properties"][space_field("visual")], 24)
    load = next(r for r in cluster.requests if r.path.endswith("/_bulk"))
    assert load.params == {"refresh": "false", "require_alias": "false"}  # straight into the new index
    assert f'"_index":"{new}"' in load.body.replace(" ", "")
    (swap,) = _find(cluster, "POST", "/_aliases")
    assert swap.body["actions"] == [{"remove": {"index": f"{ALIAS}-1", "alias": ALIAS}},
                                    {"add": {"index": new, "alias": ALIAS, "is_write_index": True}}]
    order = [(r.method, r.path) for r in cluster.requests]
    assert order.index(("POST", "/_aliases")) < order.index(("DELETE", f"/{ALIAS}-1"))  # old one goes after
    assert cluster.aliases == {new: ALIAS}
    await backend.close()
