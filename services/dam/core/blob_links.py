"""Short-lived signed links to one blob: how the annotation service gets a video or a large image from the
DAM without one giant gRPC message (GET /api/blobs/{sha256}?expires=...&signature=..., streamed from the blob
store). The signature is an HMAC-SHA256 of the digest and the expiry under a key kept in the DAM's data
directory, so a link outlives a restart of the DAM that made it and works nowhere else."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """The key at `path`, created (owner-only, whole or not at all) on first use; two processes starting
    at once end up with the same key."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process got there first: its key wins
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path.read_bytes()


class BlobLinks:
    def __init__(self, key: bytes, base_url: str, ttl_s: float) -> None:
        if len(key) < 16:
            raise ValueError("the blob link key is too short")
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def _signature(self, sha256: str, expires: int) -> str:
        return hmac.new(self._key, f"{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, sha256: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s) + 1
        query = urlencode({"expires": expires, "signature": self._signature(sha256, expires)})
        return f"{self.base_url}/api/blobs/{sha256}?{query}"

    def verify(self, sha256: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self._signature(sha256, expires), signature)
