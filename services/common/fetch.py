"""Fetching media by URL without becoming an SSRF proxy: http(s) only, every hop's address checked
against loopback/private/link-local ranges (unless allowed, or under a prefix the operator trusts: the
DAM's signed blob links) and the connection made to the address checked, few redirects, capped size and time."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

from services.common.settings import MediaSettings


class FetchError(Exception):
    """The URL could not be fetched; the message says why in words a person understands."""


class ForbiddenURLError(FetchError):
    """The URL points somewhere the server may not go (private address, odd scheme)."""


class TooLargeError(FetchError):
    """The resource is larger than the configured cap."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_trusted_url(url: str, prefixes: Iterable[str]) -> bool:
    """Whether `url` lies under one of `prefixes`: the same scheme and host, the same port where the
    prefix names one, a path under the prefix's path, and nothing that could make the server see
    another path or host (dot segments, encoded dots or slashes, user info)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # malformed: not trusted (and _split refuses it)
        return False
    lowered = parts.path.lower()
    if parts.username is not None or "\\" in parts.path or "%2e" in lowered or "%2f" in lowered:
        return False
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return False
    for prefix in prefixes:
        trusted = urlsplit(prefix)
        if trusted.scheme != parts.scheme or not trusted.hostname or trusted.hostname != parts.hostname:
            continue
        if trusted.port is not None and trusted.port != port:
            continue
        base = trusted.path.rstrip("/") + "/"
        if parts.path.startswith(base) or parts.path == trusted.path:
            return True
    return False


class InvalidURLError(ForbiddenURLError):
    """The URL is malformed: a host name no resolver takes, a port out of range."""


def _check_host(host: str) -> None:
    """A host name the resolver can take (RFC 1035 sizes, IDNA-encodable), else InvalidURLError: the idna
    codec's UnicodeError would otherwise surface as a server error."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        encoded = host.encode("idna")
    except UnicodeError as exc:
        raise InvalidURLError(f"URL host {host[:80]!r}{'...' if len(host) > 80 else ''} is not a valid host name "
                              "(at most 253 characters, 63 per dot-separated label)") from exc
    if len(encoded) > 253:
        raise InvalidURLError(f"URL host has {len(encoded)} characters, over the 253 a host name may have")


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise InvalidURLError(f"URL {url[:200]!r} is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ForbiddenURLError(f"only http and https URLs can be fetched, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise ForbiddenURLError(f"URL {url[:200]!r} has no host")
    del port
    _check_host(parts.hostname)
    return parts


async def _addresses(parts: SplitResult, allow_private: bool) -> list[str]:
    """The host's addresses, resolved once; every one must be public unless private ones are allowed."""
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 0, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise ForbiddenURLError(
                    f"URL host {host!r} resolves to {address}, a loopback, private or link-local "
                    "address; fetching it is not allowed"
                )
    if not addresses:
        raise FetchError(f"cannot resolve host {host!r}: no addresses")
    return addresses


async def check_url(url: str, allow_private: bool = False) -> None:
    """Raises ForbiddenURLError unless url is http(s) to a public address (or private is allowed)."""
    parts = _split(url)
    if not allow_private:
        await _addresses(parts, allow_private)


def _pinned(url: str, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """url with its host replaced by the vetted address, the Host header it had, and for HTTPS the host name
    for SNI and certificate checks: httpx connects to that address and resolves nothing."""
    logical = httpx.URL(url)
    headers = {"Host": logical.netloc.decode("ascii")}
    extensions = {"sni_hostname": logical.raw_host.decode("ascii")} if logical.scheme == "https" else {}
    return logical.copy_with(host=address), headers, extensions


async def fetch_url(url: str, settings: MediaSettings | None = None, *, verify: ssl.SSLContext | bool = True) -> bytes:
    """Downloads url into memory under the limits of settings.

    Each hop's host is resolved once and its addresses vetted; the request then goes to a vetted address
    (the next one if it refuses the connection), so a name that resolves differently the second time (DNS
    rebinding) cannot send the request elsewhere. `verify`: certificate checking, as httpx takes it."""
    settings = settings or MediaSettings()
    max_bytes = settings.max_fetch_mb * 1024 * 1024
    # An explicit transport also keeps proxies from the environment out: a proxy would resolve the name itself.
    # No keep-alive: a connection made for one host name must not carry a request for another at the same address.
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        async with asyncio.timeout(settings.fetch_timeout_s):
            async with httpx.AsyncClient(
                transport=transport, follow_redirects=False, timeout=settings.fetch_timeout_s
            ) as client:
                for _ in range(settings.max_redirects + 1):
                    trusted = is_trusted_url(url, settings.trusted_url_prefixes)
                    addresses = await _addresses(_split(url), settings.allow_private_urls or trusted)
                    async with _connected(client, url, addresses) as response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers.get("location", ""))
                            continue
                        if response.status_code >= 400:
                            raise FetchError(f"fetching {url} failed with HTTP {response.status_code}")
                        declared = response.headers.get("content-length")
                        if declared and declared.isdigit() and int(declared) > max_bytes:
                            raise TooLargeError(f"{url} is {int(declared)} bytes, over the {max_bytes}-byte limit")
                        # One growing buffer whose bytes getvalue() hands over without a copy (a list of
                        # chunks joined at the end holds a large video twice).
                        body = io.BytesIO()
                        async for chunk in response.aiter_bytes():
                            if body.tell() + len(chunk) > max_bytes:
                                raise TooLargeError(f"{url} is over the {max_bytes}-byte limit")
                            body.write(chunk)
                        return body.getvalue()
                raise FetchError(f"{url}: more than {settings.max_redirects} redirects")
    except TimeoutError as exc:
        raise FetchError(f"fetching {url} took longer than {settings.fetch_timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"fetching {url} failed: {exc}") from exc


@asynccontextmanager
async def _connected(client: httpx.AsyncClient, url: str, addresses: list[str]) -> AsyncIterator[httpx.Response]:
    """The streamed GET of url from the first of its vetted addresses that accepts the connection."""
    for index, address in enumerate(addresses):
        target, headers, extensions = _pinned(url, address)
        request = client.build_request("GET", target, headers=headers, extensions=extensions)
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
