"""The near-duplicate UI in Chromium, with the real NDD service: an upload that is a near-duplicate says so in
the upload list, the asset page lists its near-duplicates with scores, and the review page resolves one group
(keep one, delete the other) and dismisses the rest in bulk. No console errors anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.dam.conftest import Dam, upload, wait_annotated
from tests.dam.duplicates.conftest import Ndd, jpeg, near_copy, photo, start_dam_with_ndd, start_ndd, wait_ndd_state
from tests.dam.ui.conftest import image_models, open_ui
from tests.dam.ui.test_flow import drop_files


@pytest.fixture(scope="module")
def ndd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ndd]:
    instance = start_ndd(tmp_path_factory.mktemp("ndd-ui"))
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def dup_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str, annotation_server, ndd: Ndd
            ) -> Iterator[Dam]:
    models = image_models(annotation_server.port)
    dam = start_dam_with_ndd(tmp_path_factory.mktemp("dam-ui-ndd"), pg_server_uri, annotation_server, ndd,
                             MAAM_DAM__ANNOTATION_MODELS=json.dumps(models))
    dam.user("admin@example.org").close()  # the first account is admin; the test's user is not
    yield dam
    dam.process.stop()


def _add(client, data: bytes, name: str) -> int:
    asset_id = upload(client, data, name).json()["id"]
    wait_annotated(client, asset_id, ("done", "failed"), timeout=120)
    wait_ndd_state(client, asset_id)
    return asset_id


@pytest.mark.timeout(300)
def test_duplicate_notice_panel_and_review(browser, dup_dam: Dam, tmp_path: Path) -> None:
    api = dup_dam.user("grace@example.org")
    token = api.headers["Authorization"].split()[1]
    original = _add(api, jpeg(photo("astronaut")), "astronaut.jpg")
    ui, context = open_ui(browser, dup_dam, tmp_path / "screenshots", token=token)
    page = ui.page
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        # Upload a near-duplicate: once NDD has checked it, its row names the original.
        ui.goto("/upload")
        drop_files(ui, ".dropzone", [("astronaut-copy.jpg", near_copy(photo("astronaut")))])
        notice = page.locator(".upload-item .dup-notice")
        notice.wait_for(timeout=120_000)
        assert notice.get_attribute("data-duplicate-of") == str(original)
        assert "astronaut.jpg" in notice.inner_text()
        ui.shot("01-upload-notice")
        ui.check("upload")
        copy = int(page.locator(".upload-item .upload-status a").first.get_attribute("href").rsplit("/", 1)[1])

        # The copy's page lists the original with its score.
        ui.goto(f"/asset/{copy}")
        item = page.locator(f'[data-panel="duplicates"] .dup-item[data-asset-id="{original}"]')
        item.wait_for()
        score = float(item.locator(".dup-score").get_attribute("data-score"))
        assert 0.5 <= score <= 1.0
        ui.shot("02-asset-panel")
        ui.check("asset page")

        # Two more pairs, then the review: three groups.
        coffee = _add(api, jpeg(photo("coffee")), "coffee.jpg")
        coffee_copy = _add(api, near_copy(photo("coffee")), "coffee-copy.jpg")
        cat = _add(api, jpeg(photo("chelsea")), "cat.jpg")
        cat_copy = _add(api, near_copy(photo("chelsea")), "cat-copy.jpg")
        page.get_by_role("link", name="Duplicates", exact=True).click()
        groups = page.locator(".dup-group")
        groups.nth(2).wait_for()
        assert groups.count() == 3
        ui.shots_at_both_widths("03-review", "duplicates review")

        # Keep the copy of the astronaut, delete the original.
        group = page.locator(f'.dup-group:has([data-asset-id="{original}"])')
        group.locator(f'input[type=radio][value="{copy}"]').check()
        group.get_by_role("button", name="Keep chosen, delete others").click()
        expect(groups).to_have_count(2)
        assert api.get(f"/api/assets/{original}").status_code == 404
        assert api.get(f"/api/assets/{copy}").status_code == 200

        # The other two in bulk: not duplicates.
        for box in page.locator(".dup-group input[data-select]").all():
            box.check()
        page.locator('[data-action="dismiss-selected"]').click()
        page.get_by_text("No near-duplicates in your library.").wait_for()
        ui.shot("04-review-empty")
        ui.check("review after resolving")
        assert api.get("/api/duplicates").json()["groups"] == []
        for asset_id in (coffee, coffee_copy, cat, cat_copy):
            assert api.get(f"/api/assets/{asset_id}").status_code == 200
    finally:
        print(f"screenshots: {ui.shots}")
        context.close()
