"""The detectors page's zero-shot label form: a name and prompts make a label whose page ranks the
user's assets, and applying it filters the library by that label."""

from __future__ import annotations

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import open_ui, photo


def test_a_zero_shot_label_from_the_detectors_page(browser, ui_dam, tmp_path):
    client = ui_dam.user("grace@example.org")
    assets = [upload(client, photo(name), f"{name}.jpg", title=name).json() for name in ("chelsea", "coffee")]
    for asset in assets:
        wait_annotated(client, asset["id"], timeout=60)
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots",
                          token=client.headers["Authorization"].split()[1])
    page = ui.page
    try:
        ui.goto("/detectors")
        page.get_by_label("Label name").fill("Kitten")
        page.get_by_label("Prompts, one per line (needs CLIP)").fill("a photo of a kitten\na cat sleeping")
        page.get_by_role("button", name="Create zero-shot label").click()
        page.wait_for_url("**/#/detector/*")
        page.get_by_text("1 prototype(s)").wait_for()
        page.locator("#threshold").fill("-1")  # every asset
        page.locator("#threshold").dispatch_event("input")
        for asset in assets:
            page.locator(f'.card[data-id="{asset["id"]}"]').wait_for()
        ui.shot("01-zeroshot-label-matches")
        page.get_by_role("button", name="Apply: label my matching assets").click()
        page.wait_for_url("**label=kitten**")
        page.locator(f'.card[data-id="{assets[0]["id"]}"] .chip.label', has_text="kitten").wait_for()
        ui.shot("02-zeroshot-label-applied")
        ui.check("zero-shot label")
        print(f"screenshots: {ui.shots}")
    finally:
        context.close()
        client.close()
