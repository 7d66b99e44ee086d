"""What every research model's training shares: seeding, the document's step schedule (the learning rate
divided by 10 after half of training), a loop over an endless batch stream that records each step's loss,
and checkpoints that carry the model kind and its configuration (so `maam models export` can rebuild it)."""

from __future__ import annotations

import itertools
import logging
import pickle
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from services.models.errors import ModelsError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "maam-research-checkpoint/1"


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (torch's load errors run to a page)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def half_time_decay(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The initial learning rate until half of the steps, a tenth of it after (MemeFier, 3.1.3)."""
    half = max(1, total_steps // 2)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if step < half else 0.1)


def forever(batches: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """Epoch after epoch of `batches()` (a fresh pass each time, so shuffling loaders reshuffle)."""
    for _ in itertools.count():
        empty = True
        for batch in batches():
            empty = False
            yield batch
        if empty:
            raise ModelsError("the training data yields no batch (is the dataset empty?)")


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)

    def first_last(self, window: int = 3) -> tuple[float, float]:
        """Mean loss of the first and the last `window` steps."""
        head = self.losses[:window]
        tail = self.losses[-window:]
        return float(np.mean(head)), float(np.mean(tail))


LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, dict[str, float]]"]


def train_steps(
    model: nn.Module,
    batches: Iterator[Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    steps: int,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    log_every: int = 0,
    what: str = "train",
) -> TrainLog:
    """`steps` optimiser steps over `batches`; `loss_fn(model, batch)` returns the loss (and optionally a
    dict of its named parts, which are logged)."""
    record = TrainLog()
    model.train()
    for step in range(steps):
        batch = next(batches)
        result = loss_fn(model, batch)
        loss, parts = result if isinstance(result, tuple) else (result, {})
        if not torch.isfinite(loss):
            raise ModelsError(f"{what}: the loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        record.losses.append(float(loss.detach()))
        record.parts.append(parts)
        if log_every and (step % log_every == 0 or step == steps - 1):
            extra = " ".join(f"{k}={v:.4f}" for k, v in parts.items())
            log.info("%s step %d/%d loss %.4f %s", what, step + 1, steps, record.losses[-1], extra)
    model.eval()
    return record


def save_checkpoint(path: Path, kind: str, config: dict[str, Any], model: nn.Module, **extra: Any) -> Path:
    """Weights plus what rebuilds the model: its kind (memefier, mvsd, …) and configuration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "kind": kind, "config": config, "state_dict": model.state_dict(),
                **extra}, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelsError(f"cannot read the checkpoint {path}: {first_line(exc)}") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ModelsError(f"{path} is not a checkpoint written by `maam models train`/`distill`")
    return data
