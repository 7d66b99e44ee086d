"""NSFW media is blurred in the grid and on its page until the user reveals it; a setting turns blurring off.
The NSFW verdict is the real test NSFW classifier's, through the annotation service."""

from __future__ import annotations

import pytest

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import nsfw_photo, open_ui, photo
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def flagged(ui_dam):
    """A user with one NSFW photo (a red-tinted one the classifier scores above its threshold) and one safe photo."""
    client = ui_dam.user("grace@example.org")
    red = upload(client, nsfw_photo(), "red-coffee.jpg", title="Red coffee").json()
    safe = upload(client, photo("coffee"), "coffee.jpg", title="Coffee").json()
    for asset in (red, safe):
        wait_annotated(client, asset["id"], timeout=60)
    summaries = {c["id"]: c for c in client.get("/api/ui/cards", params={"ids": f"{red['id']},{safe['id']}"}).json()}
    assert summaries[red["id"]]["nsfw"] is True, summaries
    assert summaries[safe["id"]]["nsfw"] is False, summaries
    token = client.headers["Authorization"].split()[1]
    yield token, red["id"], safe["id"]
    client.close()


def test_nsfw_asset_blurred_until_revealed(browser, ui_dam, flagged, tmp_path):
    token, red, safe = flagged
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
    page = ui.page
    try:
        ui.goto("/library")
        red_card, safe_card = page.locator(f'.card[data-id="{red}"]'), page.locator(f'.card[data-id="{safe}"]')
        red_card.wait_for()
        assert red_card.locator(".shielded.blurred").count() == 1
        assert red_card.locator(".veil-reason").inner_text() == "NSFW"
        assert red_card.locator(".chip.warn").inner_text() == "NSFW"
        assert safe_card.locator(".shielded.blurred").count() == 0
        blur = red_card.locator(".shielded > :first-child").evaluate("el => getComputedStyle(el).filter")
        assert "blur" in blur
        ui.shot("01-nsfw-blurred")
        ui.check("library with an NSFW asset")

        # Reveal with the keyboard: the button is focusable and announces what it reveals.
        reveal = red_card.get_by_role("button", name="Reveal NSFW content: Red coffee")
        reveal.focus()
        page.keyboard.press("Enter")
        assert red_card.locator(".shielded.blurred").count() == 0
        assert red_card.locator(".shielded > :first-child").evaluate("el => getComputedStyle(el).filter") == "none"
        ui.shot("02-nsfw-revealed")

        # The asset page: the flag with its score, the media blurred in a fresh tab until revealed there too.
        other, other_context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
        try:
            other.goto(f"/asset/{red}")
            other.page.locator('.flag[data-flag="NSFW"].on').wait_for()
            assert other.page.locator(".stage .shielded.blurred").count() == 1
            other.shot("03-asset-blurred")
            other.page.locator(".stage .reveal").click()
            assert other.page.locator(".stage .shielded.blurred").count() == 0
            other.check("NSFW asset page")
        finally:
            other_context.close()
        ui.check("library after reveal")
    finally:
        context.close()


def test_setting_turns_blurring_off(browser, ui_dam, flagged, tmp_path):
    token, red, _ = flagged
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
    page = ui.page
    try:
        ui.goto("/library")
        page.locator(f'.card[data-id="{red}"] .shielded.blurred').wait_for()
        page.get_by_role("link", name="Settings", exact=True).click()
        toggle = page.get_by_label("Blur NSFW and disturbing media until I reveal it")
        assert toggle.is_checked()
        toggle.uncheck()
        ui.shot("01-settings")
        page.get_by_role("link", name="Library", exact=True).click()
        page.locator(f'.card[data-id="{red}"]').wait_for()
        wait_until(lambda: page.locator(f'.card[data-id="{red}"] .shielded').count() == 1, 10, what="card")
        assert page.locator(".shielded.blurred").count() == 0
        assert page.locator(f'.card[data-id="{red}"] .chip.warn').inner_text() == "NSFW"  # still labelled
        ui.shot("02-library-unblurred")
        ui.check("library with blurring off")
    finally:
        context.close()
