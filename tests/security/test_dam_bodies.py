"""Every route that takes a body stops reading at its cap while the body streams in: a chunked body far over
the cap is answered 413 after about the cap has arrived, not after the whole body was spooled."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

import pytest

MiB = 1024 * 1024
BOUNDARY = "maamboundary"


def _part_head(field: str, filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"\x89PNG\r\n\x1a\n"


def stream_until_answered(base_url: str, path: str, token: str, content_type: str, first: bytes,
                          total: int, chunk: int = MiB) -> tuple[int, int]:
    """POSTs a chunked body (`first`, then zeros) of up to `total` bytes, stopping when the server answers
    or drops the connection. Returns (HTTP status, bytes sent by then)."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=60)
    head = (f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    sock.sendall(head)
    sent = 0
    zeros = b"\0" * chunk
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = first if sent == 0 else zeros
            sock.sendall(b"%x\r\n%b\r\n" % (len(data), data))
            sent += len(data)
        else:
            sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server answered and closed while we were still sending
        pass
    reply = b""
    while b"\r\n" not in reply:
        data = sock.recv(65536)
        if not data:
            break
        reply += data
    sock.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, sent


@pytest.fixture(scope="module")
def token(dam):
    with dam.user("streamer@example.org") as client:
        return client.headers["authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize(("path", "field", "cap_mib"), [
    ("/api/search/similar", "image", 21),
    ("/api/detectors", "anchors", 65),
    ("/api/assets", "file", 3),  # the test DAM's MAAM_DAM__MAX_UPLOAD_MB is 2
])
def test_multipart_routes_stop_reading_at_their_cap(dam, token, path, field, cap_mib):
    total = 4 * cap_mib * MiB
    status, sent = stream_until_answered(dam.url, path, token, f"multipart/form-data; boundary={BOUNDARY}",
                                         _part_head(field, "big.png"), total)
    assert status == 413, (path, status, sent)
    # Socket buffers hold a few MiB more than the server read.
    assert sent < cap_mib * MiB + 16 * MiB, (path, sent // MiB)


def test_json_routes_stop_reading_at_a_small_cap(dam, token):
    status, sent = stream_until_answered(dam.url, "/api/projects", token, "application/json",
                                         b'{"name": "' + b"n" * 1000, 64 * MiB)
    assert status == 413 and sent < 20 * MiB, (status, sent // MiB)
