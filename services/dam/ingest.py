"""`maam ingest DIR`: bulk upload over the REST API, resumable (files already uploaded, by sha256, are skipped)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LOOKUP_BATCH = 1000


@dataclass
class IngestReport:
    uploaded: list[int] = field(default_factory=list)
    skipped: int = 0
    rejected: dict[str, str] = field(default_factory=dict)


def list_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                        p.relative_to(root).parts))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _with_retries(call: Callable[[], httpx.Response], attempts: int = 5) -> httpx.Response:
    for attempt in range(attempts):
        try:
            reply = call()
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
        else:
            if reply.status_code not in (409, 502, 503, 504):
                return reply
            if attempt == attempts - 1:
                return reply
        time.sleep(min(5.0, 0.2 * 2**attempt))
    raise AssertionError("unreachable")


def resolve_project(client: httpx.Client, project: str) -> int:
    """A project id, or the name of one of the user's projects (created when missing)."""
    if project.isdigit():
        reply = client.get(f"/api/projects/{project}")
        reply.raise_for_status()
        return int(project)
    for item in client.get("/api/projects", params={"mine": True}).raise_for_status().json():
        if item["name"] == project:
            return int(item["id"])
    return int(client.post("/api/projects", json={"name": project}).raise_for_status().json()["id"])


def ingest(client: httpx.Client, root: Path, project: str | None = None, visibility: str = "private",
           on_hashed: Callable[[int], None] | None = None,
           on_uploaded: Callable[[Path, int | None], None] | None = None) -> IngestReport:
    files = list_files(root)
    hashes: dict[Path, str] = {}
    for path in files:
        hashes[path] = file_sha256(path)
        if on_hashed:
            on_hashed(1)
    known: dict[str, int] = {}
    unique = sorted(set(hashes.values()))
    for start in range(0, len(unique), LOOKUP_BATCH):
        reply = _with_retries(lambda s=start: client.post(
            "/api/assets/lookup", json={"sha256": unique[s:s + LOOKUP_BATCH]}))
        known.update(reply.raise_for_status().json())
    project_id = resolve_project(client, project) if project else None
    report = IngestReport()
    in_project: list[int] = []
    for path in files:
        sha = hashes[path]
        if sha in known:
            report.skipped += 1
            in_project.append(known[sha])
            if on_uploaded:
                on_uploaded(path, None)
            continue
        fields = {"title": path.stem, "visibility": visibility}
        if project_id is not None:
            fields["project_id"] = str(project_id)

        def send(p: Path = path, f: dict = fields) -> httpx.Response:
            with p.open("rb") as handle:
                return client.post("/api/assets", files={"file": (p.name, handle)}, data=f)

        reply = _with_retries(send)
        if reply.status_code in (200, 201):
            asset_id = int(reply.json()["id"])
            known[sha] = asset_id
            report.uploaded.append(asset_id)
        elif reply.status_code in (413, 415, 422):
            report.rejected[str(path)] = reply.json().get("detail", reply.text)
        else:
            reply.raise_for_status()
        if on_uploaded:
            on_uploaded(path, known.get(sha))
    if project_id is not None and in_project:
        client.post(f"/api/projects/{project_id}/assets", json={"asset_ids": sorted(set(in_project))})
    return report
