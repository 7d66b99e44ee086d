"""The other pages in Chromium: every annotation on the asset page (boxes, saliency overlay, flags), a video's
timeline of objects, faces, text and NSFW by time, projects, user-made detectors, keyboard use and a phone-sized
screen."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import av
import numpy as np
import pytest
from PIL import Image

from services.models.shipped import install_haar, install_ppocr
from tests.annotation.conftest import shots_video
from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import Dam, start_dam, upload, wait_annotated
from tests.dam.ui.conftest import LEFT_OUT, nsfw_pixels, open_ui, photo
from tests.support.media import text_frame
from tests.support.processes import free_port


def video_bytes() -> bytes:
    """Two seconds of a moving square in H.264 (which Chromium plays), with a cut at 1 s: two shots."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(20):
            frame = np.full((64, 96, 3), 40 if i < 10 else 220, np.uint8)
            frame[10:40, 4 * i:4 * i + 30] = (200, 80 + 5 * i, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@pytest.fixture(scope="module")
def library(ui_dam):
    """A user with two annotated photos and one video."""
    client = ui_dam.user("hedy@example.org")
    cat = upload(client, photo("chelsea"), "cat.jpg", title="Cat", tags="pets,cat").json()
    rocket = upload(client, photo("rocket"), "rocket.jpg", title="Rocket launch").json()
    video = upload(client, video_bytes(), "clip.mp4", title="Moving square").json()
    for asset in (cat, rocket):
        wait_annotated(client, asset["id"], timeout=60)
    # The video is asked for the image models' names too; those that have no video unit are reported missing.
    wait_annotated(client, video["id"], states=("done", "failed"), timeout=90)
    token = client.headers["Authorization"].split()[1]
    yield {"token": token, "cat": cat["id"], "rocket": rocket["id"], "video": video["id"]}
    client.close()


def test_asset_page_draws_every_annotation(browser, ui_dam, library, tmp_path):
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=library["token"])
    page = ui.page
    try:
        ui.goto(f"/asset/{library['cat']}")
        page.locator(".obox.object").first.wait_for()
        assert page.locator(".obox.face").count() >= 1
        tasks = set(page.locator(".annotation").evaluate_all("els => els.map((e) => e.dataset.task)"))
        assert {"captioning", "object_detection", "face_recognition", "nsfw", "meme", "saliency"} <= tasks
        assert page.locator('.flag[data-flag="NSFW"].off').count() == 1
        # Layers: objects off, saliency on (its picture comes from the annotation service through /api/ui).
        page.get_by_label("Objects").uncheck()
        assert page.locator(".obox.object").count() == 0
        page.get_by_label("Saliency").check()
        page.wait_for_function("() => document.querySelector('img.saliency')?.naturalWidth > 0")
        assert page.locator(".obox.salient").count() >= 1
        ui.shot("01-asset-saliency")
        ui.check("asset page with saliency")
    finally:
        context.close()


def expected_markers(annotations: list[dict]) -> dict[str, set[float]]:
    """Per timeline track, the keyframe times at which the stored annotations found something (what the
    asset page must draw): objects, faces, text read, and NSFW scores at or over the model's threshold."""
    found: dict[str, set[float]] = {}
    for a in annotations:
        if a["state"] != "done" or not a.get("data"):
            continue
        for frame in a["data"].get("frames", []):
            t = round(float(frame.get("timestamp", 0.0)), 2)
            kind = {"object_detection": "objects" if frame.get("detections") else None,
                    "face_recognition": "faces" if frame.get("faces") else None,
                    "ocr": "text" if frame.get("full_text") or frame.get("lines") else None,
                    "nsfw": "nsfw" if frame.get("score", 0) >= a["data"].get("threshold", 0.5) else None,
                    }.get(a["task"])
            if kind:
                found.setdefault(kind, set()).add(t)
    return found


@pytest.fixture(scope="module")
def timeline_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str, test_repository: Path
                 ) -> Iterator[Dam]:
    """A DAM whose annotation service reads text and faces for real: the shipped PP-OCR and OpenCV Haar faces
    (as `maam models install-shipped` installs them) beside the test models. The test face detector is left
    out (its random weights find faces in anything, Haar runs only where no other face detector is), and so
    is the disturbing classifier (it flags every frame)."""
    repository = tmp_path_factory.mktemp("timeline-models") / "models"
    shutil.copytree(test_repository, repository)
    for name in (LEFT_OUT, "test_face_detector"):
        shutil.rmtree(repository / name)
    install_ppocr(repository)
    install_haar(repository)
    service = AnnotationProcess(repository, free_port())
    service.start()
    instance = start_dam(tmp_path_factory.mktemp("dam-timeline"), pg_server_uri, service.port, repository)
    instance.user("root@example.org").close()  # the first account is admin
    yield instance
    instance.process.stop()
    service.stop()


@pytest.mark.timeout(240)
def test_video_timeline_has_a_track_per_kind(browser, timeline_dam: Dam, tmp_path: Path) -> None:
    """Three one-second shots: the astronaut (a face), a card of print (text), a red-tinted photo (NSFW under the
    test classifier). The page draws a track for each kind the annotations found, with a marker at each
    keyframe where it was found, and a marker seeks the video."""
    astronaut = np.asarray(Image.open(io.BytesIO(photo("astronaut"))))
    video = shots_video([astronaut, text_frame(["HELLO", "MAAM 2026"]), nsfw_pixels()],
                        seconds_each=1.0, fps=8, side=256)
    with timeline_dam.user("alan@example.org") as client:
        asset = upload(client, video, "shots.mp4", title="Three shots").json()
        wait_annotated(client, asset["id"], states=("done", "failed"), timeout=150)
        annotations = client.get(f"/api/assets/{asset['id']}/annotations").json()
        card = client.get("/api/ui/cards", params={"ids": asset["id"]}).json()[0]
        token = client.headers["Authorization"].split()[1]
        # The video's text is searchable like a photo's.
        hits = client.get("/api/search", params={"q": "hello"}).json()
        assert [hit["asset"]["id"] for hit in hits["hits"]] == [asset["id"]], hits
    want = expected_markers(annotations)
    # What each shot holds, as the real models read it (so the tracks below are not empty by accident).
    assert 0.0 in want.get("faces", set()), f"no face found on the astronaut's keyframe: {want}"
    assert 1.0 in want.get("text", set()), f"no text read on the print's keyframe: {want}"
    assert 2.0 in want.get("nsfw", set()), f"the red keyframe is not NSFW: {want}"
    assert want.get("objects"), want
    ocr = next(a for a in annotations if a["task"] == "ocr")
    assert "HELLO" in ocr["data"]["full_text"].upper(), ocr["data"]

    ui, context = open_ui(browser, timeline_dam, tmp_path / "screenshots", token=token)
    page = ui.page
    try:
        ui.goto(f"/asset/{asset['id']}")
        page.locator("video.media").wait_for()
        page.wait_for_function("() => document.querySelector('video.media').readyState >= 1")  # it plays
        page.locator(".timeline .marker").first.wait_for()
        drawn: dict[str, set[float]] = {}
        for kind, time in page.locator(".timeline .marker").evaluate_all(
                "els => els.map((e) => [e.dataset.kind, Number(e.dataset.time)])"):
            drawn.setdefault(kind, set()).add(round(time, 2))
        tracks = set(page.locator(".timeline [data-track]").evaluate_all("els => els.map((e) => e.dataset.track)"))
        assert {"objects", "faces", "text", "nsfw"} <= tracks
        assert tracks == set(want) and drawn == want, (drawn, want)
        assert page.locator(".timeline .marker").count() == page.locator(".timeline-list li").count()
        assert "HELLO" in page.locator('.timeline-list li[data-kind="text"]').first.inner_text().upper()
        # The panel's face count is the card's (the most in one keyframe).
        panel = page.locator(".annotation[data-task='face_recognition'] [data-faces]")
        assert int(panel.get_attribute("data-faces")) == card["faces"] >= 1
        # The NSFW panel shows the video's highest keyframe score, the one the verdict was made on.
        nsfw = next(a for a in annotations if a["task"] == "nsfw")["data"]
        assert f"score {nsfw['max_score']:.2f}" in page.locator(".annotation[data-task='nsfw']").inner_text()
        # The flagged video is veiled; revealing it, then a text marker seeks the video to the print's shot.
        page.locator(f'[data-reveal="{asset["id"]}"]').click()
        page.locator('.timeline .marker.text[data-time="1"]').click()
        assert page.evaluate("document.querySelector('video.media').currentTime") == 1.0
        ui.shots_at_both_widths("01-video-timeline", "video page")
    finally:
        print(f"screenshots: {ui.shots}")
        context.close()


def test_projects_and_detectors(browser, ui_dam, library, tmp_path):
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=library["token"])
    page = ui.page
    try:
        ui.goto("/projects")
        page.get_by_label("Name").wait_for()
        ui.shots_at_both_widths("00-projects-empty", "projects page")
        page.get_by_label("Name").fill("Space")
        page.get_by_label("Description").fill("Launches and orbits")
        page.get_by_role("button", name="Create project").click()
        page.wait_for_url("**/#/project/*")
        page.get_by_text("This project is empty.").wait_for()
        ui.goto(f"/asset/{library['rocket']}")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_text("Added to the project.").wait_for()
        ui.goto("/projects")
        page.locator(".tile", has_text="Space").wait_for()
        ui.shots_at_both_widths("00-projects", "projects page with a project")
        page.locator(".tile", has_text="Space").click()
        page.locator(".card").first.wait_for()
        assert page.locator(".card").count() == 1
        page.get_by_role("button", name="Suggest similar assets").click()
        page.locator(".suggestions .card").first.wait_for()
        assert page.locator(f'.suggestions .card[data-id="{library["rocket"]}"]').count() == 0
        ui.shots_at_both_widths("01-project", "project page")

        # A detector from an anchor image: a crop of the cat photo.
        anchor = io.BytesIO()
        import skimage.data

        Image.fromarray(skimage.data.chelsea()[40:260, 60:300]).save(anchor, "JPEG")
        ui.goto("/detectors")
        page.get_by_label("Name (becomes the label)").fill("Tabby")
        page.get_by_label("Anchor images (the object, centred)").set_input_files(
            [{"name": "tabby.jpg", "mimeType": "image/jpeg", "buffer": anchor.getvalue()}])
        page.get_by_label("Similarity threshold").fill("0.9")
        page.get_by_role("button", name="Create detector").click()
        page.wait_for_url("**/#/detector/*")
        page.locator(".total").wait_for()
        page.locator(f'.card[data-id="{library["cat"]}"]').wait_for()
        ui.shots_at_both_widths("02-detector-matches", "detector page")
        page.get_by_role("button", name="Apply: label my matching assets").click()
        page.wait_for_url("**label=tabby**")
        page.locator(f'.card[data-id="{library["cat"]}"] .chip.label', has_text="tabby").wait_for()
        assert page.locator(".filter-chip", has_text="Label: tabby").count() == 1
        ui.shot("03-detector-applied")
        ui.check("detector label search")
    finally:
        context.close()


def test_keyboard_and_phone_screen(browser, ui_dam, library, tmp_path):
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", viewport={"width": 390, "height": 844},
                          token=library["token"])
    page = ui.page
    try:
        ui.goto("/library")
        page.locator(".card").first.wait_for()
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > 391).map((el) => el.tagName + '.' + el.className)""")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"the library scrolls sideways: {wide}"
        # Keyboard: the first Tab reaches the skip link, which is visible while focused and focus is outlined.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Tab")
        ring = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
        assert ring != "none", "focused controls show a focus ring"
        ui.shot("01-phone-library")
        ui.check("library on a phone")

        ui.goto(f"/asset/{library['cat']}")
        page.locator(".obox.object").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the asset page scrolls sideways"
        ui.shot("02-phone-asset")
        ui.check("asset page on a phone")
        # Region search without a mouse: open the disclosure, type the edges, Enter on the buttons.
        page.get_by_text("Enter a region with the keyboard").focus()
        page.keyboard.press("Enter")
        page.locator('input[data-edge="x_min"]').fill("10")
        page.locator('input[data-edge="x_max"]').fill("60")
        page.get_by_role("button", name="Use this region").focus()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.dataset.action") == "region-search"
        assert page.locator(".selection").is_visible()
        page.keyboard.press("Enter")
        page.locator('.banner[data-mode="region"]').wait_for()
        assert "box=0.1000,0.2000,0.6000,0.8000" in unquote(page.url)
        page.locator(".card").first.wait_for()
        ui.check("region search from the keyboard")

        # A dialog opens with focus inside and closes with Escape, focus back on the opener.
        ui.goto("/settings")
        page.get_by_label("New key").fill("laptop")
        page.get_by_role("button", name="Create", exact=True).click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        assert dialog.locator("pre.secret").inner_text().startswith("maam_")
        ui.shot("03-phone-dialog")
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached")
        ui.check("settings")
    finally:
        context.close()
