"""The web UI end to end in Chromium: sign up -> upload three photos by drag and drop -> labels appear live ->
a facet narrows the results -> similar search -> region search by dragging a box. No console errors anywhere."""

from __future__ import annotations

import base64

import pytest

from tests.dam.ui.conftest import photo

PHOTOS = ("astronaut", "chelsea", "rocket")


def drop_files(ui, selector: str, files: list[tuple[str, bytes]]) -> None:
    """A real drop event carrying File objects, as a drag from the desktop delivers them."""
    payload = [{"name": name, "b64": base64.b64encode(data).decode()} for name, data in files]
    transfer = ui.page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
        }
        return dt;
    }""", payload)
    ui.page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    ui.page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def total(ui) -> int:
    return int(ui.page.locator(".total").get_attribute("data-total"))


@pytest.mark.timeout(180)
def test_sign_up_upload_labels_facets_similar_and_region_search(ui):
    page = ui.page
    ui.goto("/library")
    page.wait_for_url("**/#/signin")
    page.get_by_role("button", name="Sign in").wait_for()
    ui.shots_at_both_widths("00-sign-in", "sign in")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill("analytical engine")
    ui.shots_at_both_widths("01-sign-up", "sign up")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/#/library")
    page.get_by_text("Nothing here yet.").wait_for()
    ui.check("empty library")

    # Upload: three photos dropped at once, each with its own progress bar.
    page.get_by_role("link", name="Upload", exact=True).click()
    drop_files(ui, ".dropzone", [(f"{name}.jpg", photo(name)) for name in PHOTOS])
    done = page.locator('.upload-item[data-state="done"]')
    done.nth(2).wait_for()
    assert done.count() == 3
    for bar in page.locator(".upload-item progress").all():
        assert bar.evaluate("el => el.value") == 1
    ui.shot("02-uploaded")
    ui.check("upload")

    # Library: the cards' states and labels update live (polling), with no reload.
    page.get_by_role("link", name="Library", exact=True).click()
    page.locator(".card").nth(2).wait_for()
    page.wait_for_function("""() => {
        const cards = [...document.querySelectorAll('.card')];
        return cards.length === 3 && cards.every((c) => c.dataset.state === 'done' && c.querySelector('.chip.object'));
    }""", timeout=60_000)
    assert page.locator(".card .caption").count() == 3
    assert total(ui) == 3
    ui.shot("03-library-annotated")
    ui.check("library")

    # A facet click narrows the results to that facet's count.
    facets = page.locator('.facet[data-facet="objects"]')
    narrowing = None
    for i in range(facets.count()):
        count = int(facets.nth(i).locator(".count").inner_text())
        if count < 3:
            narrowing = (facets.nth(i).get_attribute("data-value"), count)
            facets.nth(i).click()
            break
    assert narrowing, "no object facet narrows three photos"
    label, count = narrowing
    page.wait_for_function(f"() => document.querySelectorAll('.card').length === {count}")
    assert total(ui) == count
    assert page.locator(f'.facet[data-value="{label}"][aria-pressed="true"]').count() == 1
    assert page.locator(".filter-chip").count() == 1
    ui.shot("04-facet")
    ui.check("facet filter")
    page.locator(".filter-chip").click()
    page.wait_for_function("() => document.querySelectorAll('.card').length === 3")

    # Similar search from an asset page: the two other photos, ranked with a score.
    page.locator(".card", has_text="chelsea").locator("a.card-link").click()
    page.locator(".annotation").first.wait_for()
    page.locator(".obox.object").first.wait_for()
    ui.shot("05-asset")
    ui.check("asset page")
    page.locator('[data-action="similar"]').click()
    page.locator('.banner[data-mode="similar"]').wait_for()
    # The banner names the asset searched from by its title, not its number.
    page.wait_for_function("() => document.querySelector('.banner a').textContent.startsWith('chelsea')")
    page.wait_for_function("() => document.querySelectorAll('.card').length === 2")
    assert page.locator(".card", has_text="chelsea").count() == 0
    assert page.locator(".card .score").count() == 2
    ui.shot("06-similar")
    ui.check("similar search")

    # Region search: drag a box over the image, then search with it.
    page.go_back()
    image = page.locator(".frame img.media")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('.frame img.media').naturalWidth > 0")
    box = image.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8, steps=5)
    page.mouse.up()
    assert page.locator(".selection").is_visible()
    ui.shot("07-region-drawn")
    search = page.locator('[data-action="region-search"]')
    assert search.is_enabled()
    search.click()
    page.locator('.banner[data-mode="region"]').wait_for()
    page.locator(".card").first.wait_for()
    assert "box=0.2" in page.url
    assert page.locator(".card .score").count() == page.locator(".card").count() >= 1
    ui.shot("08-region-results")
    ui.check("region search")
