"""MemeFier's configuration and the document's hyper-parameter grid (3.1.3): learning rate {1e-4, 1e-5},
epochs {16, 32}, α {0.2, 0.8}, model dimension {512, 1024}, encoder {4 heads, 512 ff, 1 layer | 16 heads,
2048 ff, 3 layers}, decoder {64 d, 4 heads, 64 ff, 1 layer | 256 d, 16 heads, 256 ff, 3 layers}: 64 runs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DatasetKind = Literal["fbhm", "memotion7k", "multioff", "meme_detection"]


class EncoderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    h: int = Field(16, ge=1)
    dff: int = Field(2048, ge=1)
    L: int = Field(3, ge=1)


class DecoderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: int = Field(64, ge=1)
    h: int = Field(4, ge=1)
    dff: int = Field(64, ge=1)
    L: int = Field(1, ge=1)


class ClipSpec(BaseModel):
    """Which CLIP extracts the features: an open_clip model and pretrained tag (weights from open_clip's
    cache, fetched once by `maam models pull clip_vit_b32` or open_clip itself), or, for tests only, an
    open_clip `CLIP(**custom)` configuration with random weights."""

    model_config = ConfigDict(extra="forbid")

    name: str = "ViT-B-32"
    pretrained: str = "openai"
    custom: dict[str, Any] | None = None


class MemefierArchitecture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: int = Field(1024, ge=1)
    encoder: EncoderSpec = Field(default_factory=EncoderSpec)
    decoder: DecoderSpec = Field(default_factory=DecoderSpec)
    clip: ClipSpec = Field(default_factory=ClipSpec)
    external: bool = False  # demographic tokens (needs dataset.attributes)
    caption: bool = False  # caption supervision (needs dataset.captions)
    max_persons: int = Field(7, ge=1)  # 3 tokens (race, gender, age) per person
    dropout: float = 0.4
    fusion_dropout: float = 0.5

    @model_validator(mode="after")
    def _heads(self) -> MemefierArchitecture:
        if self.d % self.encoder.h or self.decoder.d % self.decoder.h:
            raise ValueError("d must be divisible by encoder.h and decoder.d by decoder.h")
        return self


class MemeDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DatasetKind = "fbhm"
    root: Path | None = None
    task: Literal["a", "b", "c"] = "a"  # Memotion7k only
    captions: Path | None = None  # JSON {image file name: caption} (OFA captions in the document)
    attributes: Path | None = None  # FairFace CSV: face_name_align, race, gender, age


class MemefierTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = 1e-4
    epochs: int = Field(16, ge=1)
    steps: int | None = Field(None, ge=1)  # overrides epochs (tests, smoke runs)
    alpha: float = 0.2
    batch_size: int = Field(32, ge=1)
    workers: int = 0
    seed: int = 0


class MemefierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: MemeDataset = Field(default_factory=MemeDataset)
    architecture: MemefierArchitecture = Field(default_factory=MemefierArchitecture)
    training: MemefierTraining = Field(default_factory=MemefierTraining)

    @model_validator(mode="after")
    def _inputs(self) -> MemefierConfig:
        if self.architecture.external and self.dataset.attributes is None:
            raise ValueError("architecture.external needs dataset.attributes (a FairFace CSV)")
        if self.architecture.caption and self.dataset.captions is None:
            raise ValueError("architecture.caption needs dataset.captions (a JSON of image captions)")
        return self


ENCODERS = (EncoderSpec(h=4, dff=512, L=1), EncoderSpec(h=16, dff=2048, L=3))
DECODERS = (DecoderSpec(d=64, h=4, dff=64, L=1), DecoderSpec(d=256, h=16, dff=256, L=3))


def grid(base: MemefierConfig) -> list[MemefierConfig]:
    """The document's 64 settings on top of `base` (its dataset, CLIP, components and batch size)."""
    out = []
    for lr, epochs, alpha, d, encoder, decoder in itertools.product(
        (1e-5, 1e-4), (16, 32), (0.2, 0.8), (512, 1024), ENCODERS, DECODERS
    ):
        arch = base.architecture.model_copy(update={"d": d, "encoder": encoder, "decoder": decoder})
        training = base.training.model_copy(update={"learning_rate": lr, "epochs": epochs, "alpha": alpha})
        out.append(base.model_copy(update={"architecture": arch, "training": training}))
    return out
