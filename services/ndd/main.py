"""`maam serve ndd`: the near-duplicate detection REST service (default 127.0.0.1:8008)."""

from __future__ import annotations

import uvicorn

DEFAULT_PORT = 8008


def run(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    from services.ndd.api import create_app

    print(f"ndd service listening on http://{host}:{port}", flush=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="info")
