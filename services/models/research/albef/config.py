"""ALBEF encoder sizes (the published checkpoints' values are the defaults) and the ITC fine-tuning run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AlbefArchitecture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_res: int = Field(256, ge=16)  # the 14M pre-training checkpoint's resolution (384 after fine-tuning)
    patch_size: int = 16
    vision_width: int = 768
    vision_depth: int = 12
    vision_heads: int = 12
    text_layers: int = 6  # BERT-base layers 0-5: ALBEF's text encoder (6-11 are its fusion encoder)
    text_width: int = 768
    text_heads: int = 12
    text_intermediate: int = 3072
    vocab_size: int = 30522
    max_positions: int = 512
    embed_dim: int = 256
    context_length: int = 35  # tokens per text, as ALBEF's retrieval evaluation pads them
    temperature: float = 0.07


class AlbefTraining(BaseModel):
    """ITC fine-tuning on image–caption pairs in ALBEF's json format ([{"image": path, "caption": text or
    [texts]}], paths relative to image_root), e.g. its coco_train.json / flickr30k_train.json."""

    model_config = ConfigDict(extra="forbid")

    train_file: Path | None = None
    test_file: Path | None = None
    image_root: Path | None = None
    vocab_file: Path | None = None  # BERT's vocab.txt
    checkpoint: Path | None = None  # a published ALBEF .pth to start from
    batch_size: int = Field(32, ge=2)
    steps: int = Field(1000, ge=1)
    learning_rate: float = 1e-5
    weight_decay: float = 0.02  # Table 14
    warmup_steps: int = 1000  # Table 14 (warm-up iterations)
    seed: int = 0


class AlbefConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: AlbefArchitecture = Field(default_factory=AlbefArchitecture)
    training: AlbefTraining = Field(default_factory=AlbefTraining)
