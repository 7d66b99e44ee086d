"""Embedding models come and go without a database reset: a library annotated with one 16-d model gains a 24-d
one later, `maam dam reannotate --missing` runs only the new model on the old assets (with progress), both
spaces are searched side by side, each kNN names its space, and a configured preference picks the default.
Text-to-image search without a cross-modal model says so and names the command that installs one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import Dam, png_bytes, start_dam, upload, wait_annotated
from tests.support.processes import ServiceProcess, free_port
from tests.support.test_models import VISUAL_DIM, write_test_repository, write_visual_embedder


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test models without the text encoder (so nothing is cross-modal) and without the 24-d embedder."""
    root = write_test_repository(tmp_path_factory.mktemp("models-before"))
    shutil.rmtree(root / "test_text_embedder")
    return root


def _cli(dam: Dam, *args: str) -> str:
    process = ServiceProcess([sys.executable, "-m", "services.dam.cli", "reannotate", *args], env=dam.env)
    try:
        assert process.proc.wait(180) == 0, process.output
        return " ".join(process.output.split())  # as one line, whatever the terminal width
    finally:
        process.stop()


def _sql(dam: Dam, statement: str, *params: object) -> list[tuple]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


def test_a_model_installed_later_gets_its_own_space_without_a_reset(tmp_path, pg_server_uri, repository):
    annotation = InProcessAnnotation(repository, free_port())
    annotation.start()
    dam = start_dam(tmp_path, pg_server_uri, annotation.port, repository)
    try:
        with dam.user("spaces@example.org") as alice:
            ids = [upload(alice, png_bytes(900 + i, pattern="photo"), f"s{i}.png").json()["id"] for i in range(3)]
            for asset_id in ids:
                wait_annotated(alice, asset_id)
            before = alice.get("/api/search", params={"similar_to": ids[0]}).json()
            assert before["space"] == "test_image_embedder"
            missing = alice.get("/api/search", params={"similar_to": ids[0], "space": "test_visual_embedder"})
            assert missing.status_code == 422 and "test_image_embedder" in missing.json()["detail"]
            semantic = alice.get("/api/search", params={"q": "a harbour", "semantic": True})
            assert semantic.status_code == 409 and "maam models pull clip_vit_b32" in semantic.json()["detail"]

            # A model of another dimension is installed; the annotation service restarts with it.
            write_visual_embedder(repository)
            annotation.close()
            annotation = InProcessAnnotation(repository, annotation.port)
            annotation.start()
            detector_runs = _sql(dam, "SELECT asset_id, updated_at FROM annotations WHERE model = 'test_detector' "
                                      "ORDER BY asset_id")

            output = _cli(dam, "--missing")
            assert "installed embedding models: test_image_embedder, test_region_embedder, " \
                   "test_visual_embedder" in output
            assert "annotating" in output and "reannotate: queued 3, done 3, failed 0" in output, output
            # Only the new model ran on the old assets; every other result is untouched.
            assert _sql(dam, "SELECT asset_id, updated_at FROM annotations WHERE model = 'test_detector' "
                             "ORDER BY asset_id") == detector_runs
            # The face descriptor's space is registered too (the people feature stores face vectors there).
            assert _sql(dam, "SELECT name, dim FROM embedding_spaces ORDER BY name") == [
                ("test_face_embedder", 16), ("test_image_embedder", 16), ("test_region_embedder", 16),
                ("test_visual_embedder", VISUAL_DIM)]
            for asset_id in ids:
                assert wait_annotated(alice, asset_id)["annotation_failed_models"] == 0
            visual = alice.get("/api/search", params={"similar_to": ids[0], "space": "test_visual_embedder"}).json()
            assert visual["space"] == "test_visual_embedder" and visual["total"] == 2
            assert {h["asset"]["id"] for h in visual["hits"]} == set(ids[1:])
            assert alice.get("/api/search", params={"similar_to": ids[0]}).json()["space"] == "test_image_embedder"
            assert "nothing to do" in _cli(dam, "--missing")

            queued = _cli(dam, "--all", "--no-wait")
            assert "reannotate: queued 3" in queued
            for asset_id in ids:
                wait_annotated(alice, asset_id)
            assert _sql(dam, "SELECT asset_id, updated_at FROM annotations WHERE model = 'test_detector' "
                             "ORDER BY asset_id") != detector_runs
    finally:
        dam.process.stop()

    # The same database under a DAM that prefers the new space: it becomes the default, nothing is reset.
    preferring = start_dam(tmp_path / "again", pg_server_uri, annotation.port, repository,
                           database_url=dam.database_url, MAAM_DAM__EMBEDDING_SPACES='["test_visual_embedder"]')
    try:
        with preferring.client() as anon:
            token = anon.post("/api/auth/login", data={"username": "spaces@example.org",
                                                       "password": "correct horse battery"}).json()["access_token"]
        with preferring.client(token) as alice:
            again = alice.get("/api/search", params={"similar_to": ids[0]}).json()
            assert again["space"] == "test_visual_embedder" and again["total"] == 2
            image = alice.post("/api/search/similar", files={"image": ("q.png", png_bytes(901, pattern="photo"))})
            assert image.json()["space"] == "test_visual_embedder" and image.json()["hits"][0]["asset"]["id"] == ids[1]
    finally:
        preferring.process.stop()
        annotation.close()
