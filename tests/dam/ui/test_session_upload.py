"""Sessions and uploads in Chromium: signing out ends this browser's session only (another stays signed in),
the navigation hides and toasts go with it; toasts of a left page are dropped; identical bytes uploaded twice
at once both end well (the UI retries the 409); bad files are refused with clear messages and nothing stored."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.dam.ui.conftest import open_ui, photo

PASSWORD = "correct horse battery"


def _login(dam, email: str) -> str:
    with dam.client() as anon:
        reply = anon.post("/api/auth/login", data={"username": email, "password": PASSWORD})
        assert reply.status_code == 200
        return reply.json()["access_token"]


def test_sign_out_ends_this_session_only(browser, ui_dam, tmp_path) -> None:
    ui_dam.user("twice@example.org").close()
    first, second = _login(ui_dam, "twice@example.org"), _login(ui_dam, "twice@example.org")
    a, a_context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=first)
    b, b_context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=second)
    try:
        a.goto("/settings")
        a.page.locator("#blur-sensitive").click()  # raises a toast
        a.page.locator(".toast").wait_for()
        a.page.get_by_role("button", name="Sign out").click()
        a.page.wait_for_url("**/#/signin")
        assert a.page.locator("#nav").is_hidden()
        assert a.page.locator(".toast").count() == 0
        a.check("sign-in page after sign-out")
        a.shot("signed-out")
        with ui_dam.client(first) as client:
            assert client.get("/api/users/me").status_code == 401
        with ui_dam.client(second) as client:
            assert client.get("/api/users/me").status_code == 200
        b.goto("/library")
        b.page.locator("#nav").wait_for()
        assert "#/library" in b.page.url and b.page.locator("#nav").is_visible()
        b.check("library in the other session")
    finally:
        a_context.close()
        b_context.close()


def test_toasts_of_a_left_page_are_dropped(browser, ui_dam, tmp_path) -> None:
    with ui_dam.user("toasty@example.org") as client:
        token = client.headers["Authorization"].split()[1]
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
    try:
        ui.goto("/settings")
        ui.page.locator("#blur-sensitive").click()
        ui.page.locator(".toast").wait_for()
        # Age it past the grace a toast raised just before a navigation gets (no sleeping in tests).
        ui.page.evaluate("document.querySelector('.toast').dataset.at = String(Date.now() - 60000)")
        ui.goto("/library")
        assert ui.page.locator(".toast").count() == 0
    finally:
        context.close()


def _png(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_identical_parallel_uploads_and_bad_files(browser, ui_dam, tmp_path) -> None:
    client = ui_dam.user("uploader@example.org")
    token = client.headers["Authorization"].split()[1]
    ui, context = open_ui(browser, ui_dam, tmp_path / "screenshots", token=token)
    page = ui.page
    same = photo("coffee")
    good = _png()
    bad = {
        "empty.jpg": (b"", "image/jpeg"),
        "truncated.png": (good[: len(good) // 2], "image/png"),
        "lying.jpg": (b"%PDF-1.4 not an image at all\n" * 20, "image/jpeg"),
        "script.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
        "huge.png": (b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024 + 10), "image/png"),
    }
    try:
        ui.goto("/upload")
        page.locator("#file-input").set_input_files([
            {"name": "coffee-a.jpg", "mimeType": "image/jpeg", "buffer": same},
            {"name": "coffee-b.jpg", "mimeType": "image/jpeg", "buffer": same},
            *({"name": n, "mimeType": m, "buffer": data} for n, (data, m) in bad.items()),
        ])
        page.wait_for_function("() => document.querySelectorAll('.upload-item[data-state]').length === 7")
        states = {n: page.locator(f'.upload-item[data-name="{n}"]').get_attribute("data-state")
                  for n in ("coffee-a.jpg", "coffee-b.jpg", *bad)}
        assert states["coffee-a.jpg"] == states["coffee-b.jpg"] == "done", states
        messages = {}
        for name in bad:
            assert states[name] == "error", (name, states)
            messages[name] = page.locator(f'.upload-item[data-name="{name}"] .upload-status').inner_text()
            assert messages[name] and "undefined" not in messages[name] and not messages[name].startswith("5"), messages
        assert "empty" in messages["empty.jpg"].lower() or "zero" in messages["empty.jpg"].lower(), messages
        assert "MiB" in messages["huge.png"] or "large" in messages["huge.png"].lower(), messages
        # Chromium logs every 4xx answer as "Failed to load resource": here they are the expected refusals (and
        # the retried 409); any script error would still be reported.
        expected = ("status of 409", "status of 413", "status of 415", "status of 422")
        ui.console.errors[:] = [e for e in ui.console.errors if not any(code in e for code in expected)]
        print("refusal messages:", messages)
        ui.check("upload page with refused files")
        ui.shot("upload-refusals")
        assets = client.get("/api/assets", params={"size": 50}).json()
        assert assets["total"] == 1, assets  # the coffee once; nothing of the refused files
    finally:
        context.close()
        client.close()
