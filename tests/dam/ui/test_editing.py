"""Editing and bulk actions in Chromium: an asset's title, tags and description edited on its page (and found by
the new words), cards multi-selected in the library and tagged or deleted at once, and the admin's
"re-annotate missing" with its progress."""

from __future__ import annotations

import pytest

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import open_ui, photo
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def editable(ui_dam):
    client = ui_dam.user("editor@example.org")
    ids = [upload(client, photo(name), f"{name}.jpg", title=name.capitalize()).json()["id"]
           for name in ("camera", "moon", "page")]
    for asset_id in ids:
        wait_annotated(client, asset_id, timeout=60)
    yield {"client": client, "token": client.headers["Authorization"].split()[1], "ids": ids}
    client.close()


def _search(client, q: str) -> list[int]:
    return [h["asset"]["id"] for h in client.get("/api/search", params={"q": q, "owner": "me"}).json()["hits"]]


def test_edit_title_tags_description(browser, ui_dam, editable, tmp_path) -> None:
    client, asset_id = editable["client"], editable["ids"][0]
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=editable["token"])
    page = ui.page
    try:
        ui.goto(f"/asset/{asset_id}")
        page.locator('[data-action="edit"]').click()
        page.fill("#edit-title", "Cameraman on the tripod")
        page.fill("#edit-description", "A photographer with a vintage camera")
        page.fill("#edit-tags", "vintage, photographer")
        ui.shot("edit-form")
        page.get_by_role("button", name="Save").click()
        page.locator("h1", has_text="Cameraman on the tripod").wait_for()
        assert page.locator(".edit-form").count() == 0
        ui.check("asset page after editing")
        stored = client.get(f"/api/assets/{asset_id}").json()
        assert sorted(stored["tags"]) == ["photographer", "vintage"]
        assert stored["description"].startswith("A photographer")
        assert _search(client, "tripod") == [asset_id] and _search(client, "vintage") == [asset_id]
        ui.goto("/library?q=tripod")
        page.locator(f'.card[data-id="{asset_id}"]').wait_for()
        ui.check("library search by the edited title")
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_bulk_tag_and_delete(browser, ui_dam, editable, tmp_path, width) -> None:
    client = editable["client"]
    _, moon, page_id = editable["ids"]
    tag = f"batch{width}"
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", viewport={"width": width, "height": 900},
                          token=editable["token"])
    page = ui.page
    try:
        ui.goto("/library")
        page.locator(f'[data-select="{moon}"]').check()
        page.locator(f'[data-select="{page_id}"]').check()
        assert page.locator(".bulk-count").inner_text() == "2 selected"
        page.fill("#bulk-tags", tag)
        ui.shot(f"bulk-selected-{width}")
        page.locator('[data-bulk="tag"]').click()
        wait_until(lambda: sorted(_search(client, tag)) == sorted([moon, page_id]), 10, what="the bulk tag")
        page.locator(".bulk-bar[hidden]").wait_for(state="attached")
        ui.check("library after bulk tagging")
    finally:
        context.close()
    if width == 390:  # the last run deletes one of them through the bar
        ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=editable["token"])
        try:
            ui.goto("/library")
            ui.page.locator(f'[data-select="{page_id}"]').check()
            ui.page.once("dialog", lambda dialog: dialog.accept())
            ui.page.locator('[data-bulk="delete"]').click()
            ui.page.locator(f'.card[data-id="{page_id}"]').wait_for(state="detached")
            assert client.get(f"/api/assets/{page_id}").status_code == 404
            ui.check("library after bulk delete")
        finally:
            context.close()


def test_bulk_api_refuses_what_is_not_yours(ui_dam, editable) -> None:
    with ui_dam.user("bystander@example.org") as other:
        reply = other.post("/api/assets/bulk", json={"ids": editable["ids"][:1], "action": "delete"})
        assert reply.status_code == 200 and reply.json()["done"] == []
        assert reply.json()["skipped"] == {str(editable["ids"][0]): "not found"}
        assert other.post("/api/assets/bulk", json={"ids": [1], "action": "tag"}).status_code == 422
        assert other.post("/api/admin/reannotate").status_code == 403
    assert editable["client"].get(f"/api/assets/{editable['ids'][0]}").status_code == 200


def test_admin_reannotate_missing_shows_progress(browser, ui_dam, tmp_path) -> None:
    admin = ui_dam.user("admin@example.org")
    reply = admin.get("/api/admin/annotation-progress")
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"queued", "running", "done_last_hour", "failed_last_hour"}
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=admin.headers["Authorization"].split()[1])
    page = ui.page
    try:
        ui.goto("/settings")
        progress = page.locator(".admin-panel [data-progress]")
        wait_until(lambda: progress.get_attribute("data-progress") not in ("", None), 10, what="progress")
        page.locator('[data-admin="missing"]').click()
        page.locator(".toast", has_text="queued for annotation").wait_for()
        assert "Queued" in progress.inner_text()
        ui.check("settings as admin")
        ui.shot("admin-reannotate")
    finally:
        context.close()
        admin.close()
