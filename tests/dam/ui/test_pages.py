"""The other pages in Chromium: every annotation on the asset page (boxes, saliency overlay, flags), a video's
timeline of detections, projects, user-made detectors, keyboard use and a phone-sized screen."""

from __future__ import annotations

import io
from urllib.parse import unquote

import av
import numpy as np
import pytest
from PIL import Image

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import open_ui, photo


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

        ui.goto(f"/asset/{library['video']}")
        page.locator("video.media").wait_for()
        page.wait_for_function("() => document.querySelector('video.media').readyState >= 1")  # it plays
        markers = page.locator(".timeline .marker")
        markers.first.wait_for()
        assert markers.count() == page.locator(".timeline-list li").count() >= 1
        page.locator('.timeline .marker:not([data-time="0"])').first.click()
        assert page.evaluate("document.querySelector('video.media').currentTime") > 0
        # One track per kind found; the faces track and panel agree with the card's count.
        tracks = set(page.locator(".timeline [data-track]").evaluate_all("els => els.map((e) => e.dataset.track)"))
        assert "objects" in tracks
        with ui_dam.client(library["token"]) as client:
            card = client.get("/api/ui/cards", params={"ids": library["video"]}).json()[0]
        panel = page.locator(".annotation[data-task='face_recognition'] [data-faces]")
        if panel.count():
            assert int(panel.first.get_attribute("data-faces")) == card["faces"]
            assert ("faces" in tracks) == (card["faces"] > 0)
        ui.shot("02-video-timeline")
        ui.check("video page")
    finally:
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
