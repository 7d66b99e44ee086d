"""HTTP client of the NDD service's REST API (services/ndd/app.py), only what the DAM needs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


class NddUnavailableError(RuntimeError):
    """NDD could not be reached or answered 5xx: retried later."""


class NddRejectedError(RuntimeError):
    """NDD refused the request for good (4xx): retrying the same bytes would not help."""


@dataclass
class Hit:
    item_id: str
    score: float
    segments: list[dict[str, Any]] | None = None


@dataclass
class JobResult:
    indexed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class NddClient:
    def __init__(self, base_url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
        # `headers`: NDD's API key (services/common/service_auth.py), when it has one.
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout_s,
                                       headers=headers or {})
        self._timeout = timeout_s
        self._collections: set[str] = set()  # known to exist (created or found)

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            reply = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NddUnavailableError(f"NDD unreachable: {type(exc).__name__}: {exc}") from exc
        if reply.status_code >= 500 or reply.status_code == 429:
            raise NddUnavailableError(f"NDD {method} {path}: {reply.status_code} {reply.text[:300]}")
        return reply

    async def ensure_collection(self, collection: str) -> None:
        if collection in self._collections:
            return
        reply = await self._call("POST", "/collections", json={"id": collection})
        if reply.status_code not in (201, 409):  # 409: it exists already
            raise NddRejectedError(f"cannot create NDD collection {collection}: {reply.text[:300]}")
        self._collections.add(collection)

    async def index(self, kind: str, collection: str, items: list[tuple[str, bytes, str]]) -> JobResult:
        """Indexes (id, bytes, filename) items and waits for the job to finish."""
        await self.ensure_collection(collection)
        files = [("files", (name or item_id, data, "application/octet-stream")) for item_id, data, name in items]
        reply = await self._call("POST", f"/{kind}s/jobs/upload", files=files,
                                 data={"ids": [i for i, _, _ in items], "collection_id": collection})
        if reply.status_code == 404:  # the collection vanished (NDD's data was reset): create it again
            self._collections.discard(collection)
            raise NddUnavailableError(f"NDD collection {collection} is missing")
        if reply.status_code != 202:
            raise NddRejectedError(f"NDD refused the indexing job: {reply.status_code} {reply.text[:300]}")
        job_id = reply.json()["job_id"]
        deadline = time.monotonic() + self._timeout
        delay = 0.05
        while True:
            report = await self._call("GET", f"/jobs/{job_id}")
            if report.status_code == 404:
                raise NddUnavailableError(f"NDD lost job {job_id}")
            body = report.json()
            if body.get("finished"):
                return JobResult(list(body["indexed"]), {e["id"]: e["error"] for e in body["errors"]})
            if time.monotonic() > deadline:
                raise NddUnavailableError(f"NDD job {job_id} still running after {self._timeout:.0f} s")
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 1.5)

    async def delete(self, kind: str, collection: str, item_id: str) -> None:
        reply = await self._call("DELETE", f"/{kind}s/indices/{item_id}", params={"collection_id": collection})
        if reply.status_code not in (200, 404):  # 404: never indexed, or already gone
            raise NddRejectedError(f"NDD refused to delete {item_id}: {reply.text[:300]}")

    async def search_by_id(self, kind: str, collection: str, item_id: str, t_sim: float, t_rank: int,
                           source: str | None = None) -> list[Hit]:
        """Hits in `collection` of an item indexed in `source` (default: the same collection), from its stored
        descriptors; a `collection` that does not exist yet has none."""
        params: dict[str, Any] = {"collection_id": collection, "t_sim": t_sim, "t_rank": t_rank}
        if source and source != collection:
            params["from_collection_id"] = source
        reply = await self._call("GET", f"/{kind}s/search/{item_id}", params=params)
        if reply.status_code == 404 and source and source != collection:
            return []
        if reply.status_code != 200:
            raise NddRejectedError(f"NDD search of {item_id} failed: {reply.status_code} {reply.text[:300]}")
        return _hits(reply.json())


def _hits(body: dict[str, Any]) -> list[Hit]:
    return [Hit(str(r["id"]), float(r["score"]), r.get("segments")) for r in body["results"]]
