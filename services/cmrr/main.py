"""`maam serve cmrr`: the cross-modal retrieval and recommendation service on uvicorn, stopped gracefully."""

from __future__ import annotations

import os

from services.cmrr.core.config import DEFAULT_PORT
from services.common.shutdown import serve_http


def resolve_port(port: int | None) -> int:
    """The original service read PORT from its `.env`: PORT wins over the default port, an explicit other
    port (`--port`) wins over PORT."""
    env = os.environ.get("PORT", "").strip()
    if env and (port is None or port == DEFAULT_PORT):
        if not env.isdigit() or not 0 < int(env) < 65536:
            raise SystemExit(f"PORT={env!r} is not a TCP port number")
        return int(env)
    return port or DEFAULT_PORT


def run(host: str, port: int) -> None:
    from pydantic import ValidationError

    from services.cmrr.app import create_app
    from services.cmrr.core.config import CmrrSettings

    try:
        cmrr = CmrrSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"cmrr: bad setting ({problems}); MODEL is clip or albef") from None
    # Open requests finish on SIGTERM; the lifespan then saves the indexes and closes the backend.
    serve_http(create_app(cmrr=cmrr), host, resolve_port(port))
