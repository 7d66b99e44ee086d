"""CMRR settings: the `cmrr` section of the shared root, MAAM_CMRR__* (the original service's `.env` had
`MODEL` and `PORT`: they are MAAM_CMRR__MODEL and MAAM_CMRR__PORT here, and the old names are refused)."""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, Literal

from pydantic import Field

from services.common.settings import CmrrClientSettings, Settings

DEFAULT_PORT = 8007


class CmrrSettings(CmrrClientSettings):
    # The port `maam serve cmrr` and `maam up` use without --port.
    port: int = Field(DEFAULT_PORT, gt=0, lt=65536)
    # Encoder family, as the original `.env` MODEL variable: the first installed image encoder whose name or
    # embedding space contains it is used, with its paired text encoder.
    model: Literal["clip", "albef"] = "clip"
    # Pin one image encoder by repository name instead of choosing by family.
    image_model: str | None = None
    # Exact Flat search up to this many vectors per modality, IVF above (bench/cmrr.py shows the trade-off).
    approximate_above: int = Field(100_000, ge=1)
    nprobe: int = Field(16, ge=1)
    # The index cache files are rewritten after this many changes (and at shutdown); the database has every change.
    snapshot_every: int = Field(10_000, ge=1)
    max_body_mb: float = Field(50.0, gt=0)
    max_k: int = Field(1000, ge=1)
    # Texts longer than this are refused (413): the encoders read only the first few dozen tokens, and
    # tokenizing megabytes of text would hold a worker for nothing.
    max_text_chars: int = Field(100_000, ge=1)
    # Recommendation clusters at most this many of a user's most recent posts per modality.
    max_history: int = Field(2000, ge=1)
    novelty: float = Field(0.2, ge=0.0, lt=1.0)


class CmrrServiceSettings(Settings):
    service: ClassVar[str | None] = "cmrr"  # a bare MODEL or PORT in the environment is refused here

    cmrr: CmrrSettings = Field(default_factory=CmrrSettings)


@lru_cache
def get_cmrr_settings() -> CmrrSettings:
    return CmrrServiceSettings().cmrr
