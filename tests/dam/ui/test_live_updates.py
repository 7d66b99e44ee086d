"""Live updates in Chromium: the library and the asset page follow changes made elsewhere (another tab, the
API, the annotation workers) through the server-sent event stream, with no reload and no polling."""

from __future__ import annotations

from tests.dam.conftest import upload
from tests.dam.ui.conftest import open_ui, photo


def test_the_library_and_asset_page_follow_changes_made_elsewhere(browser, ui_dam, tmp_path) -> None:
    with ui_dam.user("live@example.org") as owner:
        first = upload(owner, photo("astronaut"), "first.jpg", title="First photo").json()["id"]
        token = owner.headers["Authorization"].split()[1]
        ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
        page = ui.page
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if "/api/events" in r.url else None)
        try:
            ui.goto("/library")
            page.locator(f'.card[data-id="{first}"] .badge', has_text="Annotated").wait_for(timeout=60_000)
            assert streams, "the library opened no live-update stream"
            searches = []
            page.on("request", lambda r: searches.append(r.url) if "/api/search" in r.url else None)

            # An upload from elsewhere appears, and its state follows annotation, without a reload. Nothing is
            # pending on the page when it arrives, so no polling could have brought it.
            second = upload(owner, photo("coffee"), "second.jpg", title="Second photo").json()["id"]
            card = page.locator(f'.card[data-id="{second}"]')
            card.wait_for(timeout=20_000)
            card.locator(".badge", has_text="Annotated").wait_for(timeout=60_000)
            assert searches, "the new card came without a search: not from this page"
            ui.shot("01-library-live")

            # The asset page follows an edit made through the API.
            ui.goto(f"/asset/{first}")
            page.locator("h1", has_text="First photo").wait_for()
            owner.patch(f"/api/assets/{first}", json={"title": "Renamed elsewhere"}).raise_for_status()
            page.locator("h1", has_text="Renamed elsewhere").wait_for(timeout=15_000)
            ui.shot("02-asset-live")
            ui.check("live updates")
            assert page.evaluate("location.hash") == f"#/asset/{first}"  # no navigation happened
        finally:
            print(f"screenshots: {ui.shots}")
            context.close()
