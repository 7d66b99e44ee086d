"""`maam models pull albef_14m`: ALBEF's published 14M-image pre-training checkpoint (salesforce/ALBEF's
README link) and BERT-base-uncased's WordPiece vocabulary, exported as `albef_14m_image` / `albef_14m_text`
(needs internet once; the checkpoint is cached under ~/.cache/maam/albef)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from services.models.errors import fetching
from services.models.research.albef.checkpoint import load_albef
from services.models.research.albef.export import export_albef

if TYPE_CHECKING:
    from services.models.pull import Upstream

CHECKPOINT_URL = "https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth"
CHECKPOINT_HOST = "storage.googleapis.com"
TOKENIZER = "bert-base-uncased"
PREFIX = "albef_14m"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "maam" / "albef"


def download(url: str, target: Path) -> Path:
    """Streams `url` to `target` (written to a temporary file first, renamed when complete)."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        fetching(f"the ALBEF checkpoint ({url})", host=CHECKPOINT_HOST),
        tempfile.NamedTemporaryFile(dir=target.parent, prefix=".download-", delete=False) as handle,
    ):
        partial = Path(handle.name)
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes(1 << 20):
                    handle.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.rename(target)
    return target


def bert_vocabulary(target_dir: Path, revision: str | None = None) -> Path:
    from transformers import BertTokenizer

    with fetching(f"the {TOKENIZER} vocabulary"):
        tokenizer = BertTokenizer.from_pretrained(TOKENIZER, revision=revision or "main")
    target_dir.mkdir(parents=True, exist_ok=True)
    return Path(tokenizer.save_vocabulary(str(target_dir))[0])


def pull_albef(repository: Path, upstream: Upstream | None = None) -> dict[str, float]:
    cache = cache_dir()
    checkpoint = download(upstream.id if upstream else CHECKPOINT_URL, cache / "ALBEF.pth")
    pins = dict(upstream.extra) if upstream else {}
    vocab = bert_vocabulary(cache / TOKENIZER, pins.get(TOKENIZER))
    return export_albef(
        repository, load_albef(checkpoint), PREFIX, vocab,
        description="ALBEF (14M images pre-training, salesforce/ALBEF)",
    )
