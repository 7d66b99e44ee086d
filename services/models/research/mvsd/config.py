"""MV-SD's configuration: the architecture (the document's values are the defaults) and the training run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MvsdArchitecture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(224, ge=16)  # square frames; a multiple of 16 (T3 is at 1/16)
    channels: int = Field(64, ge=4)  # c: T2T token width
    dim: int = Field(384, ge=8)  # d: width of T3 and the transformer stacks
    encoder_depth: int = Field(14, ge=1)  # T2T-ViT-14
    heads: int = Field(6, ge=1)
    mlp_ratio: float = 3.0
    temporal_depth: int = Field(2, ge=0)  # divided space-time attention blocks
    max_frames: int = Field(16, ge=1)
    decoder_depth: int = Field(4, ge=1)  # blocks at 1/16 over the saliency token and patch tokens
    decoder_stage_depth: int = Field(1, ge=1)  # token transformers at 1/8 and at 1/4
    decoder_heads: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _shapes(self) -> MvsdArchitecture:
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"dim {self.dim} must be divisible by heads ({self.heads}) and by 4")
        if self.channels % self.decoder_heads:
            raise ValueError(f"channels {self.channels} must be divisible by decoder_heads ({self.decoder_heads})")
        return self


class MvsdTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path | None = None  # DHF1K root (see mvsd/data.py for the layout)
    resize: int = 256  # frames are resized to this, then randomly cropped to image_size
    clip_frames: int = Field(8, ge=1)  # 8 or 16 in the document
    batch_size: int = Field(4, ge=1)
    steps: int = Field(20000, ge=1)
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    kl_weight: float = 1.0
    cc_weight: float = 0.5  # a1
    sim_weight: float = 0.5  # a2
    augment_probability: float = 0.5  # each of the five augmentations
    workers: int = 0
    seed: int = 0


class MvsdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: MvsdArchitecture = Field(default_factory=MvsdArchitecture)
    training: MvsdTraining = Field(default_factory=MvsdTraining)
