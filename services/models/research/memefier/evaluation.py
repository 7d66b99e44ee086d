"""MemeFier's losses and the document's evaluation protocol per dataset: AUC and accuracy on FBHM,
accuracy and F1 on Memotion7k (tasks a–c) and MultiOFF; the meme detector: accuracy, AUC and F1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from services.models.research import classification_metrics as cm
from services.models.research.memefier.datasets import Head
from services.models.research.memefier.model import MemeFier
from services.models.research.memefier.samples import PAD


def task_loss(logits: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], heads: Sequence[Head]) -> torch.Tensor:
    """Binary cross-entropy for one-unit heads, categorical cross-entropy otherwise, summed over heads."""
    total = torch.zeros((), device=next(iter(logits.values())).device)
    for head in heads:
        out, target = logits[head.name], batch[f"target_{head.name}"]
        if head.classes == 1:
            total = total + F.binary_cross_entropy_with_logits(out[:, 0], target.float())
        else:
            total = total + F.cross_entropy(out, target)
    return total


def caption_loss(model: MemeFier, fused: torch.Tensor, patches: int, caption: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each next caption word (teacher forcing), padding ignored."""
    logits = model.caption_logits(fused, patches, caption[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), caption[:, 1:].reshape(-1), ignore_index=PAD)


def probabilities(logits: torch.Tensor, head: Head) -> torch.Tensor:
    return torch.sigmoid(logits) if head.classes == 1 else torch.softmax(logits, dim=1)


@torch.no_grad()
def predict(model: MemeFier, batches: Iterable[dict[str, torch.Tensor]], heads: Sequence[Head]) -> tuple[
    dict[str, np.ndarray], dict[str, np.ndarray]
]:
    """({head: probabilities [N, C]}, {head: targets [N]}) over the batches."""
    model.eval()
    probs: dict[str, list[np.ndarray]] = {h.name: [] for h in heads}
    targets: dict[str, list[np.ndarray]] = {h.name: [] for h in heads}
    for batch in batches:
        logits = model(batch["images"], batch["input_ids"], batch["attributes"] if model.arch.external else None)
        for head in heads:
            probs[head.name].append(probabilities(logits[head.name], head).numpy())
            targets[head.name].append(batch[f"target_{head.name}"].numpy())
    return ({k: np.concatenate(v) for k, v in probs.items()}, {k: np.concatenate(v) for k, v in targets.items()})


def decisions(probs: np.ndarray, head: Head, threshold: float = 0.5) -> np.ndarray:
    return (probs[:, 0] >= threshold).astype(int) if head.classes == 1 else probs.argmax(axis=1)


def scores(kind: str, heads: Sequence[Head], probs: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> dict[
    str, float
]:
    """The metrics the document reports for this dataset."""
    if len(heads) == 1:
        head = heads[0]
        y, p = targets[head.name], probs[head.name]
        out = {"accuracy": cm.accuracy(y, decisions(p, head)), "f1": cm.f1(y, decisions(p, head))}
        if head.classes == 1 and len(np.unique(y)) == 2:
            out["auc"] = cm.auc(y, p[:, 0])
        if kind == "fbhm":
            out.pop("f1")
        return out
    labels = np.stack([targets[h.name] for h in heads], axis=1)
    picked = np.stack([decisions(probs[h.name], h) for h in heads], axis=1)
    f1, per_f1 = cm.per_subtask(labels, picked, "f1")
    accuracy, per_accuracy = cm.per_subtask(labels, picked, "accuracy")
    out = {"accuracy": accuracy, "f1": f1}
    for head, a, f in zip(heads, per_accuracy, per_f1, strict=True):
        out[f"{head.name}_accuracy"], out[f"{head.name}_f1"] = a, f
    return out
