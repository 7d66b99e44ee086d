"""`maam serve cmrr`: the cross-modal retrieval and recommendation service on uvicorn."""

from __future__ import annotations

import os

import uvicorn

from services.cmrr.config import DEFAULT_PORT


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
    from services.cmrr.config import CmrrSettings

    try:
        cmrr = CmrrSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"cmrr: bad setting ({problems}); MODEL is clip or albef") from None
    uvicorn.run(create_app(cmrr=cmrr), host=host, port=resolve_port(port), log_level="info")
