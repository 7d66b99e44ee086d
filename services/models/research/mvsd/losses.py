"""MV-SD's loss (3.3.4): L(S, G) = L_KL + a1·L_CC + a2·L_SIM with a1 = a2 = 0.5, on flattened maps in
[0, 1]: KL of the ground truth from the prediction (both as distributions), the negative linear
correlation and the negative histogram intersection."""

from __future__ import annotations

import torch

EPS = 1e-7


def _flat(maps: torch.Tensor) -> torch.Tensor:
    return maps.reshape(maps.shape[0], -1)


def _distribution(maps: torch.Tensor) -> torch.Tensor:
    return maps / (maps.sum(dim=1, keepdim=True) + EPS)


def kl_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    s, g = _distribution(_flat(pred)), _distribution(_flat(target))
    return (g * torch.log(EPS + g / (s + EPS))).sum(dim=1).mean()


def cc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    s, g = _flat(pred), _flat(target)
    s, g = s - s.mean(dim=1, keepdim=True), g - g.mean(dim=1, keepdim=True)
    cc = (s * g).sum(dim=1) / (torch.sqrt((s * s).sum(dim=1) * (g * g).sum(dim=1)) + EPS)
    return -cc.mean()


def sim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    s, g = _distribution(_flat(pred)), _distribution(_flat(target))
    return -torch.minimum(s, g).sum(dim=1).mean()


def saliency_loss(
    pred: torch.Tensor, target: torch.Tensor, kl_weight: float = 1.0, cc_weight: float = 0.5, sim_weight: float = 0.5
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum and its parts; pred/target are [..., H, W] (frames folded into the batch)."""
    pred, target = pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *target.shape[-2:])
    parts = {"kl": kl_loss(pred, target), "cc": cc_loss(pred, target), "sim": sim_loss(pred, target)}
    total = kl_weight * parts["kl"] + cc_weight * parts["cc"] + sim_weight * parts["sim"]
    return total, {k: float(v.detach()) for k, v in parts.items()}
