"""`maam serve cmrr`: the cross-modal retrieval and recommendation service on uvicorn, stopped gracefully."""

from __future__ import annotations

from services.common.shutdown import serve_http


def run(host: str, port: int) -> None:
    from pydantic import ValidationError

    from services.cmrr.app import create_app
    from services.cmrr.core.config import CmrrServiceSettings
    from services.common.media import apply_media_settings
    from services.common.service_auth import warn_if_exposed
    from services.common.settings import settings_problems

    try:
        settings = CmrrServiceSettings()
    except ValidationError as exc:
        raise SystemExit(f"cmrr: bad setting ({settings_problems(exc)}); MAAM_CMRR__MODEL is clip or albef") from None
    apply_media_settings(settings.media)
    warn_if_exposed("cmrr", host, settings.cmrr.api_key, "MAAM_CMRR__API_KEY")
    # Open requests finish on SIGTERM; the lifespan then saves the indexes and closes the backend.
    serve_http(create_app(settings, settings.cmrr), host, port)
