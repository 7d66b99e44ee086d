"""Password hashing (scrypt, memory-hard) and opaque bearer tokens stored only as hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor

# scrypt with N=2^15, r=8, p=1 costs 32 MiB and tens of milliseconds per guess (OWASP minimum is N=2^17/r=8
# or N=2^15 with p>1 on memory-poor hosts; this host shares two cores).
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
# scrypt runs here, off the event loop (it releases the GIL); two threads bound the memory (32 MiB each)
# and CPU that a burst of sign-ins can take, the rest wait their turn.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt")
API_KEY_PREFIX = "maam_"
MIN_PASSWORD_LENGTH = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, verify_password, password, stored)


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is a safe lookup key (a leaked table reveals no token)."""
    return hashlib.sha256(token.encode()).hexdigest()
