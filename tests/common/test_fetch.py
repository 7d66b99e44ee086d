"""Fetching by URL: private targets refused, limits on size, redirects and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.common.fetch import FetchError, ForbiddenURLError, TooLargeError, _is_public, fetch_url, is_trusted_url
from services.common.settings import MediaSettings

PAYLOAD = b"x" * 5000


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path in ("/file", "/blobs/x"):
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
        elif self.path in ("/to-file", "/blobs/to-file"):
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


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("http://dam:8000/api/blobs/abc?expires=1&signature=x", True),
        ("http://dam:8000/api/blobs/", True),
        ("http://dam:8000/api/blobsx/abc", False),  # a sibling path, not under the prefix
        ("http://dam:8000/api/other", False),
        ("http://dam:8001/api/blobs/abc", False),
        ("https://dam:8000/api/blobs/abc", False),
        ("http://dam.evil:8000/api/blobs/abc", False),
        ("http://dam:8000@169.254.169.254/api/blobs/abc", False),  # user info: the host is the metadata service
        ("http://x@dam:8000/api/blobs/abc", False),
        ("http://dam:8000/api/blobs/../../admin", False),
        ("http://dam:8000/api/blobs/%2e%2e/admin", False),
        ("http://dam:8000/api/blobs/%2E%2E%2Fadmin", False),
        ("http://dam:8000/api/blobs/..%5cadmin", True),  # stays under the prefix for the server too
        ("http://dam/api/blobs/abc", False),  # port 80
        ("http://other/api/blobs/abc", False),
    ],
)
def test_trusted_prefixes_match_scheme_host_port_and_path(url: str, trusted: bool) -> None:
    assert is_trusted_url(url, ["http://dam:8000/api/blobs/"]) is trusted


def test_a_prefix_without_a_port_matches_every_port_of_its_host() -> None:
    assert is_trusted_url("http://127.0.0.1:41234/api/blobs/abc", ["http://127.0.0.1/api/blobs/"])
    assert not is_trusted_url("http://127.0.0.2:41234/api/blobs/abc", ["http://127.0.0.1/api/blobs/"])
    assert not is_trusted_url("http://127.0.0.1:41234/file", ["http://127.0.0.1/api/blobs/"])


async def test_a_trusted_prefix_opens_that_path_only(server: str) -> None:
    settings = MediaSettings(trusted_url_prefixes=[f"{server}/blobs/"])
    assert await fetch_url(f"{server}/blobs/x", settings) == PAYLOAD
    for url in (f"{server}/file", f"{server}/blobs/../file", f"{server}/blobs/to-file"):  # the last redirects out
        with pytest.raises(ForbiddenURLError, match="loopback, private or link-local"):
            await fetch_url(url, settings)
