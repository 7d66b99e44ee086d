"""`maam serve dam`: the DAM on uvicorn, stopped gracefully on SIGTERM."""

from __future__ import annotations

from services.common.shutdown import serve_http


def run(host: str, port: int = 8000) -> None:
    from services.dam.app import create_app

    app = create_app()

    def stop_claiming() -> None:
        # The SIGTERM handler: workers stop taking jobs now, while uvicorn drains open requests.
        ctx = getattr(app.state, "ctx", None)
        if ctx is not None:
            ctx.begin_shutdown()

    serve_http(app, host, port, on_signal=stop_claiming, proxy_headers=False)
