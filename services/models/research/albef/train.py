"""`maam models train albef --config FILE`: ALBEF's unimodal encoders fine-tuned with the image-text
contrastive loss (AdamW, weight decay 0.02, linear warm-up then cosine decay, Table 14), from a published
checkpoint or from scratch; then image↔text recall@1/5/10 on the test pairs (Tables 16–17)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from services.common.text_tokenizers import WordPieceTokenizer
from services.models.errors import ModelsError
from services.models.research.albef.checkpoint import load_albef
from services.models.research.albef.config import AlbefConfig
from services.models.research.albef.data import CaptionPairs, read_pairs
from services.models.research.albef.model import AlbefEncoders
from services.models.research.retrieval_metrics import recall_at_k
from services.models.research.training import TrainLog, forever, save_checkpoint, seed_everything, train_steps

KIND = "albef"


@dataclass(frozen=True)
class AlbefRun:
    log: TrainLog
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build(config: AlbefConfig) -> AlbefEncoders:
    start = config.training.checkpoint
    return load_albef(start, config.architecture) if start else AlbefEncoders(config.architecture)


def train_albef(config: AlbefConfig, output: Path, *, log_every: int = 0) -> AlbefRun:
    training, arch = config.training, config.architecture
    for key in ("train_file", "image_root", "vocab_file"):
        if getattr(training, key) is None:
            raise ModelsError(f"the ALBEF config needs training.{key}")
    assert training.train_file and training.image_root and training.vocab_file
    seed_everything(training.seed)
    model = build(config)
    tokenizer = WordPieceTokenizer(training.vocab_file, arch.context_length, lower_case=True)
    pairs = CaptionPairs(read_pairs(training.train_file, training.image_root), tokenizer, arch.image_res)
    loader = DataLoader(pairs, batch_size=training.batch_size, shuffle=True, drop_last=len(pairs) > training.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)

    def loss(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert isinstance(net, AlbefEncoders)
        return net.itc_loss(batch["images"], batch["input_ids"], batch["attention_mask"])

    record = train_steps(model, forever(lambda: loader), loss, optimizer, training.steps,
                         scheduler=warmup_cosine(optimizer, min(training.warmup_steps, training.steps), training.steps),
                         log_every=log_every, what="albef")
    checkpoint = save_checkpoint(Path(output) / "albef.pt", KIND, config.model_dump(mode="json"), model,
                                 losses=record.losses)
    metrics = evaluate(model, training.test_file, training.image_root, tokenizer) if training.test_file else {}
    return AlbefRun(record, checkpoint, metrics)


@torch.no_grad()
def evaluate(model: AlbefEncoders, test_file: Path, image_root: Path, tokenizer: WordPieceTokenizer,
             batch: int = 32) -> dict[str, float]:
    model.eval()
    pairs = read_pairs(test_file, image_root)
    data = CaptionPairs(pairs, tokenizer, model.arch.image_res)
    images = torch.cat([model.image(torch.stack([data.image(i) for i in range(s, min(s + batch, len(pairs.images)))]))
                        for s in range(0, len(pairs.images), batch)])
    texts = []
    for s in range(0, len(pairs.captions), batch):
        ids, mask = data.tokens(pairs.captions[s:s + batch])
        texts.append(model.text(ids, mask))
    similarity = (images @ torch.cat(texts).T).numpy()
    return recall_at_k(similarity, pairs.caption_image)
