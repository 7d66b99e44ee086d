"""Similar-asset search and project expansion over HTTP on both search backends (`elasticsearch` only with
MAAM_TEST_ELASTICSEARCH_URL). Their seed vectors come from PostgreSQL's asset_vectors, not from a backend's
index: the seed assets' search documents are removed first, and both routes still answer."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.conftest import Dam, png_bytes, start_dam, upload, wait_annotated

ES_URL = os.environ.get("MAAM_TEST_ELASTICSEARCH_URL")


@pytest.fixture(scope="module", params=["postgres", "elasticsearch"])
def backend_dam(request, tmp_path_factory, pg_server_uri, annotation_server) -> Iterator[tuple[str, Dam]]:
    extra: dict[str, str] = {}
    if request.param == "elasticsearch":
        if not ES_URL:
            pytest.skip("MAAM_TEST_ELASTICSEARCH_URL is not set: no Elasticsearch server for the route tests")
        extra = {"MAAM_DAM__SEARCH_BACKEND": "elasticsearch", "MAAM_DAM__ELASTICSEARCH_URL": ES_URL,
                 "MAAM_DAM__ELASTICSEARCH_INDEX": f"maam-routes-{uuid.uuid4().hex[:8]}"}
    dam = start_dam(tmp_path_factory.mktemp(f"routes-{request.param}"), pg_server_uri, annotation_server.port,
                    annotation_server.repository, **extra)
    yield request.param, dam
    dam.process.stop()
    if request.param == "elasticsearch":
        asyncio.run(_drop_es_index(dam.env["MAAM_DAM__ELASTICSEARCH_INDEX"]))


async def _drop_es_index(alias: str) -> None:
    from services.dam.search.elasticsearch import ElasticsearchSearch

    backend = ElasticsearchSearch(ES_URL or "", alias)
    try:
        await backend._es.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        await backend._es.indices.delete_index_template(name=backend.template, ignore_unavailable=True)
    finally:
        await backend.close()


def _drop_documents(name: str, dam: Dam, asset_ids: list[int]) -> None:
    """Removes the assets' documents from the search backend's index (PostgreSQL's tables keep the truth)."""
    if name == "postgres":
        url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM search_docs WHERE asset_id = ANY(%s)", (asset_ids,))
        return

    async def drop() -> None:
        from services.dam.search.elasticsearch import ElasticsearchSearch

        backend = ElasticsearchSearch(ES_URL or "", dam.env["MAAM_DAM__ELASTICSEARCH_INDEX"])
        try:
            await backend.delete_many(asset_ids)
        finally:
            await backend.close()

    asyncio.run(drop())


def test_similar_search_and_project_expansion_read_vectors_from_postgres(backend_dam):
    name, dam = backend_dam
    with dam.user(f"routes-{name}@example.org") as alice:
        ids = [upload(alice, png_bytes(700 + i, pattern="photo"), f"r{i}.png").json()["id"] for i in range(5)]
        for asset_id in ids:
            wait_annotated(alice, asset_id)
        _drop_documents(name, dam, ids[:2])  # the seed and the project's members leave the index

        similar = alice.get("/api/search", params={"similar_to": ids[0], "size": 10})
        assert similar.status_code == 200, similar.text
        body = similar.json()
        assert body["space"] == "test_image_embedder" and body["total"] == 3 and body["total_relation"] == "eq"
        assert {h["asset"]["id"] for h in body["hits"]} == set(ids[2:])
        second = alice.get("/api/search", params={"similar_to": ids[0], "size": 2, "page": 2}).json()
        assert [h["asset"]["id"] for h in second["hits"]] == [body["hits"][2]["asset"]["id"]]
        visual = alice.get("/api/search", params={"similar_to": ids[0], "space": "test_visual_embedder"}).json()
        assert visual["space"] == "test_visual_embedder" and {h["asset"]["id"] for h in visual["hits"]} == set(ids[2:])

        project = alice.post("/api/projects", json={"name": f"routes {name}"}).json()
        alice.post(f"/api/projects/{project['id']}/assets", json={"asset_ids": ids[:2]}).raise_for_status()
        _drop_documents(name, dam, ids[:2])  # adding members synced them again
        expanded = alice.post(f"/api/projects/{project['id']}/expand", params={"k": 2})
        assert expanded.status_code == 200, expanded.text
        assert expanded.json()["space"] == "test_image_embedder"
        suggested = [a["id"] for a in expanded.json()["assets"]]
        assert len(suggested) == 2 and set(suggested) <= set(ids[2:])
        in_visual = alice.post(f"/api/projects/{project['id']}/expand",
                               params={"k": 3, "space": "test_visual_embedder"}).json()
        assert in_visual["space"] == "test_visual_embedder"
        assert {a["id"] for a in in_visual["assets"]} == set(ids[2:])
