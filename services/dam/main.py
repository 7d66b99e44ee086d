"""`maam serve dam`: the DAM on uvicorn, stopped gracefully on SIGTERM."""

from __future__ import annotations

from services.common.shutdown import serve_http
from services.dam.core.config import DEFAULT_PORT


def run(host: str, port: int = DEFAULT_PORT) -> None:
    from services.common.media import apply_media_settings
    from services.dam.app import create_app
    from services.dam.core.config import get_dam_settings

    settings = get_dam_settings()
    if port != settings.dam.port:  # --port given: the DAM's own links (unless MAAM_DAM__URL) follow it
        settings = settings.model_copy(update={"dam": settings.dam.model_copy(update={"port": port})})
    apply_media_settings(settings.media)
    app = create_app(settings)

    def stop_claiming() -> None:
        # The SIGTERM handler: workers stop taking jobs now, while uvicorn drains open requests.
        ctx = getattr(app.state, "ctx", None)
        if ctx is not None:
            ctx.begin_shutdown()

    serve_http(app, host, port, on_signal=stop_claiming, proxy_headers=False)
