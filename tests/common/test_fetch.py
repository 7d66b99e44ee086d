"""Fetching by URL: private targets refused, limits on size, redirects and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.common.fetch import FetchError, ForbiddenURLError, TooLargeError, _is_public, fetch_url
from services.common.settings import MediaSettings

PAYLOAD = b"x" * 5000


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/file":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/chunked":
            # No Content-Length: the cap must hold while streaming.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(301)
            self.send_header("Location", "/file")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


ALLOW = MediaSettings(allow_private_urls=True, max_fetch_mb=1)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
                "fe80::1", "0.0.0.0", "224.0.0.1"]
)
def test_non_public_addresses(address: str) -> None:
    assert not _is_public(address)


def test_public_address() -> None:
    assert _is_public("8.8.8.8") and _is_public("2001:4860:4860::8888")


async def test_loopback_is_refused_by_default(server: str) -> None:
    with pytest.raises(ForbiddenURLError, match="loopback, private or link-local"):
        await fetch_url(f"{server}/file")
    with pytest.raises(ForbiddenURLError, match="resolves to"):
        await fetch_url("http://localhost/file")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x", "not a url"])
async def test_only_http_schemes(url: str) -> None:
    with pytest.raises(ForbiddenURLError, match="only http and https"):
        await fetch_url(url, ALLOW)


async def test_fetches_when_private_is_allowed(server: str) -> None:
    assert await fetch_url(f"{server}/file", ALLOW) == PAYLOAD
    assert await fetch_url(f"{server}/to-file", ALLOW) == PAYLOAD


async def test_size_cap_with_and_without_content_length(server: str) -> None:
    tiny = MediaSettings(allow_private_urls=True, max_fetch_mb=0)
    with pytest.raises(TooLargeError, match="over the 0-byte limit"):
        await fetch_url(f"{server}/file", tiny)
    with pytest.raises(TooLargeError):
        await fetch_url(f"{server}/chunked", tiny)
    assert len(await fetch_url(f"{server}/chunked", ALLOW)) == 10 * len(PAYLOAD)


async def test_redirect_loop_and_http_errors(server: str) -> None:
    with pytest.raises(FetchError, match="more than 3 redirects"):
        await fetch_url(f"{server}/loop", ALLOW)
    with pytest.raises(FetchError, match="HTTP 404"):
        await fetch_url(f"{server}/missing", ALLOW)
