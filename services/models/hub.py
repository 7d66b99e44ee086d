"""Downloads from the Hugging Face Hub pinned to the pull table's commit (`Upstream.revision`), with
the hub's own cache, offline switch (HF_HUB_OFFLINE) and mirror (HF_ENDPOINT)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.models.errors import fetching

if TYPE_CHECKING:
    from services.models.pull import Upstream

DEFAULT_REVISION = "main"


def revision_of(upstream: Upstream) -> str:
    return upstream.revision or DEFAULT_REVISION


def hf_file(upstream: Upstream, filename: str, what: str) -> Path:
    """One file of `upstream` (kind "hf") at its pinned revision; a failure is a ModelsError."""
    from huggingface_hub import hf_hub_download

    with fetching(f"{what} ({upstream.id}@{revision_of(upstream)}, {filename})"):
        path = Path(hf_hub_download(upstream.id, filename, revision=revision_of(upstream)))
    _say_unpinned(upstream, path.parent)
    return path


def hf_snapshot(upstream: Upstream, what: str, patterns: tuple[str, ...] | None = None) -> Path:
    """The files of `upstream` (matching `patterns`) at its pinned revision, as a local directory."""
    from huggingface_hub import snapshot_download

    with fetching(f"{what} ({upstream.id}@{revision_of(upstream)})"):
        path = Path(snapshot_download(upstream.id, revision=revision_of(upstream),
                                      allow_patterns=list(patterns) if patterns else None))
    _say_unpinned(upstream, path)
    return path


def _say_unpinned(upstream: Upstream, snapshot: Path) -> None:
    """The hub cache keeps each revision in snapshots/<commit>/: name it, so an unpinned pull can be pinned."""
    if upstream.revision is None and snapshot.parent.name == "snapshots":
        print(f"{upstream.id}: not pinned in the pull table; `main` resolved to commit {snapshot.name}")
