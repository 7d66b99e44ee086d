"""Browser fixtures for the web UI tests: Debian's Chromium driven by Playwright against a real DAM
(embedded PostgreSQL) with the real annotation service on the test models."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from tests.dam.conftest import Dam, start_dam

CHROMIUM = os.environ.get("MAAM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# With the test weights every image scores as disturbing (that classifier's bias alone is above its threshold),
# so every asset would be blurred; the UI tests leave that one model out and make a real NSFW image instead.
LEFT_OUT = "test_disturbing_classifier"
# The two widths every page is shot at: a laptop and a phone (an iPhone 12-14's CSS width).
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# Links, buttons and fields whose right edge is past the screen's (`w`), named by tag and text.
_CUT_CONTROLS = """(w) => [...document.querySelectorAll('a, button, input, select, textarea')]
    .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 1 && r.right > w + 1; })
    .slice(0, 8).map((el) => `${el.tagName} ${(el.innerText || el.name || '').trim().slice(0, 30)}`)"""


def jpeg(pixels: np.ndarray, quality: int = 88) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(name: str) -> bytes:
    import skimage.data

    return jpeg(getattr(skimage.data, name)())


def nsfw_pixels() -> np.ndarray:
    """A real photo tinted deep red: the test NSFW classifier's positive logit grows with red and falls with
    green and blue, so this scores above its threshold (the test checks the service's verdict, not this claim)."""
    import skimage.data

    pixels = skimage.data.coffee().astype(np.float32)
    pixels[..., 0] = np.clip(pixels[..., 0] * 1.4 + 40, 0, 255)
    pixels[..., 1] *= 0.08
    pixels[..., 2] *= 0.2
    return pixels.astype(np.uint8)


def nsfw_photo() -> bytes:
    return jpeg(nsfw_pixels())


def image_models(port: int) -> list[str]:
    """Every image model the annotation service runs, minus LEFT_OUT (asked from the service itself)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = pb_grpc.MediaAnnotationServerStub(channel).ImageAnnotation(
            pb.ImageAnnotationRequest(image_data=photo("chelsea")), timeout=60)
    models = list(reply.valid_models)
    assert LEFT_OUT in models, f"{LEFT_OUT} is not among the annotation service's models {models}"
    return [m for m in models if m != LEFT_OUT]


@pytest.fixture(scope="session")
def chromium() -> str:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is not installed at {CHROMIUM} and CI=true: the browser tests must run "
                        "(`scripts/ensure-chromium` installs it as root)")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: `apt-get install -y chromium` as root "
                    "(`make test` runs scripts/ensure-chromium, which does it as root)")
    return CHROMIUM


@pytest.fixture(scope="package")
def ui_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str, annotation_server) -> Iterator[Dam]:
    """One DAM for the UI tests (each test signs in as its own user)."""
    models = image_models(annotation_server.port)
    instance = start_dam(tmp_path_factory.mktemp("dam-ui"), pg_server_uri, annotation_server.port,
                         annotation_server.repository,
                         MAAM_DAM__ANNOTATION_MODELS=json.dumps(models))
    # The first account becomes admin (who sees every asset): take it, so each test's user sees only its own.
    instance.user("admin@example.org").close()
    yield instance
    instance.process.stop()


@contextmanager
def launched_browser(chromium: str) -> Iterator[object]:
    """Chromium under Playwright's sync API. Its event loop stays running while the browser is open, so no
    asyncio test can run meanwhile: a fixture holding it must end with the tests that use it (a test module
    outside this package makes its own, module-scoped, rather than import `browser`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="package")
def browser(chromium: str):
    with launched_browser(chromium) as instance:
        yield instance


@dataclass
class Console:
    """Console errors and uncaught exceptions of one page, with where they happened."""

    errors: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        shown = [e[:300] for e in self.errors[:5]]
        assert not self.errors, f"{len(self.errors)} console error(s) on {where}: {shown}"


@dataclass
class Requests:
    """Requests in flight, but for the live-update stream (GET /api/events stays open for the whole visit, so
    Playwright's "networkidle" would never come)."""

    pending: set = field(default_factory=set)
    quiet_since: float = field(default_factory=time.monotonic)

    def watch(self, page) -> None:
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request) -> None:
        if "/api/events" not in request.url:
            self.pending.add(request)

    def _ended(self, request) -> None:
        self.pending.discard(request)
        if not self.pending:
            self.quiet_since = time.monotonic()

    def wait_idle(self, page, quiet_s: float = 0.5, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pending or time.monotonic() - self.quiet_since < quiet_s:
            assert time.monotonic() < deadline, f"requests still in flight: {[r.url for r in self.pending][:5]}"
            page.wait_for_timeout(50)


@dataclass
class Ui:
    page: object
    console: Console
    base: str
    shots: Path
    requests: Requests = field(default_factory=Requests)

    def goto(self, route: str) -> None:
        self.page.goto(f"{self.base}/#{route}")
        self.page.wait_for_load_state("load")
        self.requests.wait_idle(self.page)

    def check(self, where: str) -> None:
        """No console errors so far, and no stray "null"/"undefined" rendered into the page."""
        self.console.check(where)
        text = self.page.locator("main").inner_text()
        for word in ("null", "undefined", "NaN", "[object Object]"):
            assert word not in text.split(), f"{word!r} rendered on {where}"

    def shot(self, name: str, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def shots_at_both_widths(self, name: str, where: str) -> tuple[Path, Path]:
        """The page as it is now, shot at the desktop width and at a phone's 390 px (`NAME-1280.png`,
        `NAME-390.png`), checked at each: no console errors, and at 390 px nothing wider than the screen (a
        table or button running off it makes the whole page scroll sideways), and no link, button or field cut by
        the screen's edge (inside a strip that scrolls sideways on its own). The viewport is resized in
        place, not reloaded, so what the test did on the page (a dialog, a filled form) is what is shot;
        the page's CSS media queries follow the resize. The viewport is restored afterwards."""
        before = self.page.viewport_size
        paths = []
        try:
            for size in (DESKTOP, PHONE):
                self.page.set_viewport_size(size)
                # Two animation frames: the resize's layout and paint have happened before we measure.
                self.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
                width = size["width"]
                if width == PHONE["width"]:
                    wide = self.page.evaluate("""(w) => [...document.querySelectorAll('body *')]
                        .filter((el) => el.getBoundingClientRect().right > w + 1 && el.getClientRects().length)
                        .slice(0, 8).map((el) => `${el.tagName}.${el.className}`)""", width)
                    scroll = self.page.evaluate("document.documentElement.scrollWidth")
                    assert scroll <= width, f"{where} scrolls sideways at {width} px ({scroll} px wide): {wide}"
                    # A control cut by the edge of a strip that scrolls inside the page (the page itself does
                    # not widen): nothing shows that it is there.
                    cut = self.page.evaluate(_CUT_CONTROLS, width)
                    assert not cut, f"controls cut by the right edge on {where} at {width} px: {cut}"
                # From the top: a full-page shot of a scrolled page draws the sticky top bar mid-page.
                self.page.evaluate("window.scrollTo(0, 0)")
                paths.append(self.shot(f"{name}-{width}"))
                self.check(f"{where} at {width} px")
        finally:
            if before:
                self.page.set_viewport_size(before)
        return paths[0], paths[1]


def open_ui(browser, dam: Dam, shots: Path, viewport: dict | None = None,
            token: str | None = None) -> tuple[Ui, object]:
    """A fresh browser context (its own storage) on the DAM; `token` signs it in as that user."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    if token:
        context.add_init_script("if (!localStorage.getItem('maam.token')) "
                                f"localStorage.setItem('maam.token', {json.dumps(token)});")
    page = context.new_page()
    console = Console()
    page.on("console", lambda msg: console.errors.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console.errors.append(f"uncaught: {exc}"))
    page.set_default_timeout(30_000)
    shots.mkdir(parents=True, exist_ok=True)
    ui = Ui(page=page, console=console, base=dam.url, shots=shots)
    ui.requests.watch(page)
    return ui, context


@pytest.fixture
def ui(browser, ui_dam: Dam, tmp_path: Path) -> Iterator[Ui]:
    instance, context = open_ui(browser, ui_dam, tmp_path / "screenshots")
    yield instance
    print(f"screenshots: {instance.shots}")
    context.close()
