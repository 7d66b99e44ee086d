"""Sign-in throttling: failed attempts counted per account and per client address over a sliding window.

The account key is the email as typed, whether or not such an account exists, so a refusal tells nothing
about which accounts exist. An attempt counts from the moment it starts (until it succeeds), so parallel
guesses cannot all slip in before the first failure is recorded. Counts live in this process's memory;
the keys kept are bounded, the oldest dropped first."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass


class Throttled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many sign-in attempts; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    keys: tuple[str, str]  # (account key, address key)
    at: float


class LoginThrottle:
    def __init__(self, account_failures: int = 5, address_failures: int = 50, window_s: float = 900.0,
                 max_keys: int = 50_000) -> None:
        self.account_failures = account_failures
        self.address_failures = address_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def begin(self, account: str, address: str) -> Attempt:
        """Counts an attempt, or raises Throttled (with the seconds until one is allowed again)."""
        now = time.monotonic()
        keys = (f"account:{account}", f"address:{address}")
        waits = [self._wait(key, limit, now) for key, limit in zip(keys, (self.account_failures,
                                                                          self.address_failures), strict=True)]
        if max(waits) > 0:
            raise Throttled(max(1, math.ceil(max(waits))))
        for key in keys:
            self._hits.setdefault(key, deque()).append(now)
            self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)
        return Attempt(keys, now)

    def succeeded(self, attempt: Attempt) -> None:
        """A correct password: the attempt was no failure, and the account's failures are forgiven."""
        account, address = attempt.keys
        self._hits.pop(account, None)
        hits = self._hits.get(address)
        if hits is not None and attempt.at in hits:
            hits.remove(attempt.at)

    def _wait(self, key: str, limit: int, now: float) -> float:
        hits = self._hits.get(key)
        if hits is None:
            return 0.0
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return 0.0
        if len(hits) < limit:
            return 0.0
        # Allowed again when enough of the oldest failures have left the window.
        return hits[len(hits) - limit] + self.window_s - now
