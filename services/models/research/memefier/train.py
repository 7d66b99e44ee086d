"""`maam models train memefier --config FILE`: MemeFier on one of the document's datasets. Adam, batch 32,
the learning rate divided by 10 after half of the epochs, L = L_task + α·L_caption; then the document's
metrics on the validation split (and the test split where it has labels)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import open_clip
import torch
from torch.utils.data import DataLoader

from services.models.errors import ModelsError
from services.models.research.memefier.clip_features import ClipFeatures, load_clip
from services.models.research.memefier.config import MemefierConfig
from services.models.research.memefier.datasets import heads_for, read_attributes, read_captions, read_split
from services.models.research.memefier.evaluation import caption_loss, predict, scores, task_loss
from services.models.research.memefier.model import MemeFier
from services.models.research.memefier.samples import CaptionVocabulary, MemeSamples
from services.models.research.training import (
    TrainLog,
    forever,
    half_time_decay,
    save_checkpoint,
    seed_everything,
    train_steps,
)

KIND = "memefier"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class MemefierRun:
    log: TrainLog
    checkpoint: Path
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> metric -> value


def build(config: MemefierConfig, caption_words: list[str] | None = None, caption_len: int = 0) -> MemeFier:
    clip = ClipFeatures(load_clip(config.architecture.clip))
    heads = {h.name: h.classes for h in heads_for(config.dataset.kind, config.dataset.task)}
    return MemeFier(config.architecture, clip, heads, caption_vocab=len(caption_words or ()), caption_len=caption_len)


def _samples(config: MemefierConfig, model: MemeFier, split: str, vocabulary: CaptionVocabulary | None,
             captions: dict[str, str] | None) -> MemeSamples:
    data = config.dataset
    features = model.features
    mean = getattr(features.clip.visual, "image_mean", None) or OPENAI_MEAN
    std = getattr(features.clip.visual, "image_std", None) or OPENAI_STD
    transform = open_clip.image_transform(features.image_size, is_train=False, mean=mean, std=std)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=features.context_length)
    return MemeSamples(
        read_split(data.kind, data.root, split, data.task), heads_for(data.kind, data.task), transform, tokenizer,
        captions=captions, vocabulary=vocabulary,
        people=read_attributes(data.attributes) if data.attributes else None,
        max_persons=config.architecture.max_persons,
    )


def train_memefier(config: MemefierConfig, output: Path, *, evaluate_on: tuple[str, ...] = ("val",),
                   log_every: int = 0) -> MemefierRun:
    if config.dataset.root is None:
        raise ModelsError("the MemeFier config names no dataset (dataset.root)")
    seed_everything(config.training.seed)
    caption_file = config.dataset.captions if config.architecture.caption else None
    captions = read_captions(caption_file) if caption_file else None
    vocabulary = CaptionVocabulary(list(captions.values())) if captions else None
    model = build(config, vocabulary.words if vocabulary else None, vocabulary.length if vocabulary else 0)
    heads = heads_for(config.dataset.kind, config.dataset.task)
    train = _samples(config, model, "train", vocabulary, captions)
    loader = DataLoader(train, batch_size=config.training.batch_size, shuffle=True,
                        num_workers=config.training.workers)
    steps = config.training.steps or config.training.epochs * math.ceil(len(train) / config.training.batch_size)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.training.learning_rate)
    alpha = config.training.alpha

    def loss(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        assert isinstance(net, MemeFier)
        fused, patches = net.encode(batch["images"], batch["input_ids"],
                                    batch["attributes"] if net.arch.external else None)
        logits = {name: head(fused[:, 0]) for name, head in net.heads.items()}
        task = task_loss(logits, batch, heads)
        parts = {"task": float(task.detach())}
        if net.caption is not None:
            cap = caption_loss(net, fused, patches, batch["caption"])
            parts["caption"] = float(cap.detach())
            return task + alpha * cap, parts
        return task, parts

    record = train_steps(model, forever(lambda: loader), loss, optimizer, steps,
                         scheduler=half_time_decay(optimizer, steps), log_every=log_every, what="memefier")
    checkpoint = save_checkpoint(
        Path(output) / "memefier.pt", KIND, config.model_dump(mode="json"), model, losses=record.losses,
        caption_words=vocabulary.words if vocabulary else [], caption_len=vocabulary.length if vocabulary else 0,
    )
    metrics = {}
    for split in evaluate_on:
        samples = _samples(config, model, split, vocabulary, captions)
        probs, targets = predict(model, DataLoader(samples, batch_size=config.training.batch_size), heads)
        metrics[split] = scores(config.dataset.kind, heads, probs, targets)
    return MemefierRun(record, checkpoint, metrics)
