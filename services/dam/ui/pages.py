"""The one HTML page. Navigation happens client side (`/#/library`, `/#/asset/7`, ...), so the server
serves the same shell for `/`; the shell loads /static/js/app.js."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

HERE = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

router = APIRouter(include_in_schema=False)

# No inline scripts or styles and nothing from other origins.
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@lru_cache(maxsize=1)
def _page() -> str:
    # The static files' newest mtime as a cache-busting version, computed once per process.
    newest = max((p.stat().st_mtime_ns for p in STATIC_DIR.rglob("*") if p.is_file()), default=0)
    return (TEMPLATES_DIR / "index.html").read_text(encoding="utf-8").replace("{{ version }}", format(newest, "x"))


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                          "X-Content-Type-Options": "nosniff"})
