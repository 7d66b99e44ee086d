"""A DAM whose annotation service has the test models minus every embedder and the captioner, plus the real
PP-OCR models (as `maam models install-shipped` installs them):

- honest capabilities: the features that need an absent model are shown disabled with the one command that
  enables it, their API errors name that command, and the upload page lists what an upload will get;
- findable words: a file name's words (uploaded through the web page) and OCR words inside glued runs."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator

import pytest

from services.models.shipped import install_ppocr
from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import Dam, start_dam, upload, wait_annotated
from tests.dam.ui.conftest import open_ui, photo
from tests.support.processes import free_port

# Every model that puts an image into an embedding space, and the text encoder.
EMBEDDERS = ("test_image_embedder", "test_visual_embedder", "test_region_embedder", "test_text_embedder")
SHIPPED = "maam models install-shipped"


@pytest.fixture(scope="module")
def bare_dam(tmp_path_factory, pg_server_uri: str, test_repository) -> Iterator[Dam]:
    """A DAM whose annotation service has no embedding model (and no captioner)."""
    repository = tmp_path_factory.mktemp("no-embedders") / "models"
    shutil.copytree(test_repository, repository)
    for name in (*EMBEDDERS, "test_captioner", "test_disturbing_classifier"):
        shutil.rmtree(repository / name, ignore_errors=True)
    install_ppocr(repository)
    service = AnnotationProcess(repository, free_port())
    service.start()
    instance = start_dam(tmp_path_factory.mktemp("dam-bare"), pg_server_uri, service.port, repository)
    instance.user("root@example.org").close()  # the first account is admin
    yield instance
    instance.process.stop()
    service.stop()


@pytest.fixture(scope="module")
def bare_library(bare_dam: Dam):
    client = bare_dam.user("ada@example.org")
    asset = upload(client, photo("chelsea"), "cat.jpg", title="Cat").json()
    wait_annotated(client, asset["id"], states=("done", "failed"), timeout=90)
    yield {"client": client, "asset": asset["id"], "token": client.headers["Authorization"].split()[1]}
    client.close()


def test_capabilities_api_names_the_enabling_command(bare_library) -> None:
    client = bare_library["client"]
    caps = client.get("/api/capabilities").json()
    assert caps["reachable"] is True
    similar = caps["features"]["similar"]
    assert similar["available"] is False and similar["command"] == SHIPPED
    assert caps["features"]["semantic"]["command"] == "maam models pull clip_vit_b32"
    assert "objects" in caps["annotates"]["image"] and "visual similarity" not in caps["annotates"]["image"]
    assert {"name": "captions", "command": "maam models pull vit_gpt2_caption"} in caps["missing"]["image"]
    # The errors say the same, not "try again when it is annotated".
    reply = client.get("/api/search", params={"similar_to": bare_library["asset"]})
    assert reply.status_code == 409
    assert SHIPPED in reply.json()["detail"] and "reannotate --missing" in reply.json()["detail"]
    assert "yet" not in reply.json()["detail"]
    reply = client.post("/api/detectors", data={"name": "cat"},
                        files={"anchors": ("a.jpg", photo("chelsea"), "image/jpeg")})
    assert reply.status_code == 409 and SHIPPED in reply.json()["detail"], reply.text
    assert client.get("/api/capabilities", headers={"Authorization": ""}).status_code == 401


def test_full_models_enable_every_feature(ui_dam) -> None:
    with ui_dam.user("grace@example.org") as client:
        caps = client.get("/api/capabilities").json()
    assert all(f["available"] for f in caps["features"].values()), caps["features"]
    assert "visual similarity" in caps["annotates"]["image"]


@pytest.mark.parametrize("width", [1280, 390])
def test_disabled_features_show_their_command(browser, bare_dam, bare_library, tmp_path, width) -> None:
    ui, context = open_ui(browser, bare_dam, tmp_path / "screenshots", viewport={"width": width, "height": 860},
                          token=bare_library["token"])
    page = ui.page
    try:
        ui.goto(f"/asset/{bare_library['asset']}")
        note = page.locator('[data-disabled-feature="similar"]')
        note.wait_for()
        assert SHIPPED in note.inner_text()
        assert page.locator('[data-action="similar"]').get_attribute("aria-disabled") == "true"
        assert page.locator('[data-action="similar"]').get_attribute("href") is None
        region = page.locator('[data-action="region-search"]')
        page.locator('[data-disabled-feature="region_search"]').wait_for()
        assert region.is_disabled()
        ui.check("asset page without embeddings")
        ui.shot(f"asset-disabled-{width}")

        ui.goto("/upload")
        image = page.locator('[data-annotates-media="image"]')
        image.wait_for()
        assert "objects" in image.inner_text() and "visual similarity" not in image.inner_text()
        page.locator(".missing-models summary").click()
        assert "maam models pull vit_gpt2_caption" in page.locator(".missing-models").inner_text()
        ui.check("upload page without embeddings")
        ui.shot(f"upload-capabilities-{width}")

        ui.goto("/detectors")
        page.locator('[data-disabled-feature="detectors"]').wait_for()
        assert page.locator("#detector-name").is_disabled()
        ui.check("detectors page without embeddings")
        ui.shot(f"detectors-disabled-{width}")
    finally:
        context.close()


def glued_text_image() -> bytes:
    """Two lines of print whose narrow gaps real OCR drops: PP-OCR reads "Region-basedsegmentation" and
    "histogram ofgreyvalues" (checked below through the stored annotation)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=44)
    draw.text((30, 40), "Region-basedsegmentation", fill="black", font=font)
    draw.text((30, 140), "histogram ofgreyvalues", fill="black", font=font)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_filename_and_glued_ocr_words_are_found_in_the_browser(browser, bare_dam, bare_library, tmp_path) -> None:
    client = bare_library["client"]
    ui, context = open_ui(browser, bare_dam, tmp_path / "screenshots", token=bare_library["token"])
    page = ui.page
    try:
        ui.goto("/upload")
        page.locator("#file-input").set_input_files([
            {"name": "astronaut_helmet-2.jpg", "mimeType": "image/jpeg", "buffer": photo("astronaut")},
            {"name": "lecture.png", "mimeType": "image/png", "buffer": glued_text_image()},
        ])
        page.wait_for_function("() => document.querySelectorAll('.upload-item[data-state=\"done\"]').length === 2")
        ui.check("upload page")
        ids = {}
        for name in ("astronaut_helmet-2.jpg", "lecture.png"):
            ids[name] = int(page.locator(f'.upload-item[data-name="{name}"] a').get_attribute("href").split("/")[-1])
        for asset_id in ids.values():
            wait_annotated(client, asset_id, states=("done", "failed"), timeout=90)
        ocr = client.get(f"/api/assets/{ids['lecture.png']}/annotations").json()
        text = " ".join((a["data"] or {}).get("full_text", "") for a in ocr if a["task"] == "ocr")
        assert "basedsegmentation" in text.replace(" ", "").lower(), text  # the real OCR glued the words

        for word, name in (("astronaut", "astronaut_helmet-2.jpg"), ("helmet", "astronaut_helmet-2.jpg"),
                           ("segmentation", "lecture.png"), ("grey", "lecture.png")):
            ui.goto(f"/library?q={word}")
            page.wait_for_function("() => document.querySelectorAll('.card').length >= 1")
            shown = page.locator(".card").evaluate_all("els => els.map((e) => Number(e.dataset.id))")
            assert shown == [ids[name]], (word, shown)
            # A text match shows no similarity badge.
            assert page.locator(".card .score").count() == 0
            ui.check(f"library search {word}")
        ui.shot("search-glued-ocr-word")
    finally:
        context.close()
