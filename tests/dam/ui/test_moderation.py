"""Moderation in Chromium and over the API: the NSFW evidence on the asset page, a verdict (safe / sensitive)
that search, facets and blur follow, only for the owner or an admin, and the review list of flagged assets.
The NSFW verdict is the real test NSFW classifier's, through the annotation service."""

from __future__ import annotations

import pytest

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import nsfw_photo, open_ui, photo
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def moderated(ui_dam):
    client = ui_dam.user("moderator-owner@example.org")
    red = upload(client, nsfw_photo(), "red-espresso.jpg", title="Red espresso").json()
    plain = upload(client, photo("astronaut"), "spacewalk.jpg", title="Spacewalk").json()
    for asset in (red, plain):
        wait_annotated(client, asset["id"], timeout=60)
    token = client.headers["Authorization"].split()[1]
    yield {"client": client, "token": token, "red": red["id"], "plain": plain["id"]}
    client.close()


def _ids(client, **params) -> list[int]:
    return [h["asset"]["id"] for h in client.get("/api/search", params={"owner": "me", **params}).json()["hits"]]


def test_verdict_api_is_for_the_owner_and_search_follows_it(ui_dam, moderated) -> None:
    client, red, plain = moderated["client"], moderated["red"], moderated["plain"]
    review = client.get("/api/moderation/review").json()
    item = next(i for i in review if i["asset"]["id"] == red)
    assert item["flagged_by_models"] is True
    nsfw = next(e for e in item["evidence"] if e["task"] == "nsfw")
    assert nsfw["flagged"] and nsfw["score"] > nsfw["threshold"]
    assert plain not in [i["asset"]["id"] for i in review]
    assert red not in _ids(client, nsfw="exclude")
    with ui_dam.user("stranger@example.org") as stranger:
        assert stranger.put(f"/api/assets/{red}/moderation", json={"verdict": "safe"}).status_code in (403, 404)
        assert stranger.get("/api/moderation/review").json() == []
    assert client.put(f"/api/assets/{red}/moderation", json={"verdict": "maybe"}).status_code == 422
    try:
        reply = client.put(f"/api/assets/{red}/moderation", json={"verdict": "safe"})
        assert reply.status_code == 200 and reply.json()["moderation"] == "safe"
        assert red in _ids(client, nsfw="exclude") and red not in _ids(client, nsfw="only")
        facets = client.get("/api/search", params={"owner": "me"}).json()["facets"]
        assert facets.get("nsfw", {}).get("true", 0) == 0, facets
        assert red not in [i["asset"]["id"] for i in client.get("/api/moderation/review",
                                                                params={"unreviewed": True}).json()]
        client.put(f"/api/assets/{plain}/moderation", json={"verdict": "sensitive"})
        assert plain in _ids(client, nsfw="only")
    finally:
        for asset_id in (red, plain):
            client.put(f"/api/assets/{asset_id}/moderation", json={"verdict": None})
    assert red not in _ids(client, nsfw="exclude") and plain not in _ids(client, nsfw="only")


@pytest.mark.parametrize("width", [1280, 390])
def test_mark_safe_in_the_browser_unblurs_and_changes_search(browser, ui_dam, moderated, tmp_path, width) -> None:
    client, red = moderated["client"], moderated["red"]
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", viewport={"width": width, "height": 900},
                          token=moderated["token"])
    page = ui.page
    try:
        ui.goto("/review")
        page.locator(f'.card[data-id="{red}"] [data-evidence="nsfw"]').wait_for()
        ui.check("review list")
        ui.shot(f"review-{width}")

        ui.goto(f"/asset/{red}")
        evidence = page.locator('.moderation [data-evidence="nsfw"]')
        evidence.wait_for()
        assert "flagged" in evidence.inner_text() and "threshold" in evidence.inner_text()
        assert page.locator(".stage .shielded.blurred").count() == 1
        ui.shot(f"asset-flagged-{width}")
        page.locator('[data-verdict-set="safe"]').click()
        page.locator('.moderation[data-verdict="safe"]').wait_for()
        wait_until(lambda: page.locator(".stage .shielded.blurred").count() == 0, 10, what="the blur to go")
        ui.check("asset marked safe")
        ui.shot(f"asset-marked-safe-{width}")
        assert red in _ids(client, nsfw="exclude")

        ui.goto("/library?nsfw=exclude")
        page.locator(f'.card[data-id="{red}"]').wait_for()
        assert page.locator(f'.card[data-id="{red}"] .shielded.blurred').count() == 0
        ui.check("library after mark safe")

        ui.goto(f"/asset/{red}")
        page.locator('[data-verdict-set="models"]').click()
        page.locator('.moderation[data-verdict=""]').wait_for()
        wait_until(lambda: page.locator(".stage .shielded.blurred").count() == 1, 10, what="the blur to return")
        assert red not in _ids(client, nsfw="exclude")
        ui.check("asset back to the models' verdict")
    finally:
        context.close()
        client.put(f"/api/assets/{red}/moderation", json={"verdict": None})
