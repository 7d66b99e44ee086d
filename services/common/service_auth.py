"""API keys between MAAM's services: NDD and CMRR require one on every route when their key is set
(MAAM_NDD__API_KEY, MAAM_CMRR__API_KEY), and whatever calls them (the DAM, `maam up`'s siblings, scripts)
sends it with `key_headers`. The key travels as `X-API-Key: KEY` or `Authorization: Bearer KEY`; it is
compared in constant time and never logged (a SecretStr)."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from typing import Annotated

from fastapi import Depends, Security
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from services.common.http_errors import ApiError

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"

_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The service's API key.")
_bearer = HTTPBearer(auto_error=False, description="The service's API key as a bearer token.")


def key_headers(key: SecretStr | str | None) -> dict[str, str]:
    """The headers a client sends to a service whose key is `key` (none when it has no key)."""
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    return {API_KEY_HEADER: value} if value else {}


def _secret(key: SecretStr | None) -> bytes:
    return key.get_secret_value().encode() if key is not None else b""


def api_key_dependencies(key: SecretStr | None, service: str) -> list[DependsParam]:
    """FastAPI app dependencies: with a key, every route answers 401 unless the request carries it; without
    one, nothing (the service then trusts whoever can reach it: it binds to loopback unless told otherwise)."""
    expected = _secret(key)
    if not expected:
        return []

    async def require_key(
        api_key: Annotated[str | None, Security(_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> None:
        given = api_key or (bearer.credentials if bearer else None)
        if given is None:
            raise ApiError(f"the {service} service needs its API key: send it as {API_KEY_HEADER}: KEY "
                           "or Authorization: Bearer KEY", 401, headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            raise ApiError(f"wrong API key for the {service} service", 401, headers={"WWW-Authenticate": "Bearer"})

    return [Depends(require_key)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(service: str, host: str, key: SecretStr | None, setting: str) -> None:
    """A service reachable from other machines without a key lets anyone read and delete its contents."""
    if not _secret(key) and not is_loopback(host):
        log.warning("%s listens on %s without an API key: anyone who can reach it can read and delete its "
                    "contents; set %s", service, host, setting)
