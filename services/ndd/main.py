"""`maam serve ndd`: the near-duplicate detection REST service (default 127.0.0.1:8008), stopped
gracefully on SIGTERM (open requests finish; the job worker is stopped in the app's lifespan)."""

from __future__ import annotations

from services.common.shutdown import serve_http

DEFAULT_PORT = 8008


def run(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    from services.common.media import apply_media_settings
    from services.common.native_threads import limit_native_threads
    from services.common.service_auth import warn_if_exposed
    from services.common.settings import get_settings
    from services.ndd.app import create_app
    from services.ndd.core.config import get_ndd_settings

    limit_native_threads(get_settings())
    apply_media_settings(get_settings().media)
    warn_if_exposed("ndd", host, get_ndd_settings().api_key, "MAAM_NDD__API_KEY")
    print(f"ndd service listening on http://{host}:{port}", flush=True)
    serve_http(create_app(), host, port)
