"""CMRR settings: `MODEL` and `PORT` as in the original service's `.env`, the rest with the MAAM_CMRR_ prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8007


class CmrrSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAM_CMRR_", extra="ignore")

    # Encoder family, as the original `.env` MODEL variable: the first installed image encoder whose name or
    # embedding space contains it is used, with its paired text encoder.
    model: Literal["clip", "albef"] = Field("clip", validation_alias=AliasChoices("MODEL", "MAAM_CMRR_MODEL"))
    # Pin one image encoder by repository name instead of choosing by family.
    image_model: str | None = None
    # Exact Flat search up to this many vectors per modality, IVF above (bench/cmrr.py shows the trade-off).
    approximate_above: int = Field(100_000, ge=1)
    nprobe: int = Field(16, ge=1)
    # The index cache files are rewritten after this many changes (and at shutdown); the database has every change.
    snapshot_every: int = Field(10_000, ge=1)
    max_body_mb: float = Field(50.0, gt=0)
    max_k: int = Field(1000, ge=1)
    # Recommendation clusters at most this many of a user's most recent posts per modality.
    max_history: int = Field(2000, ge=1)
    novelty: float = Field(0.2, ge=0.0, lt=1.0)
