"""`maam serve dam`: the DAM on uvicorn."""

from __future__ import annotations

import uvicorn


def run(host: str, port: int = 8000) -> None:
    from services.dam.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", proxy_headers=False)
