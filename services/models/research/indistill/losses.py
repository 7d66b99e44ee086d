"""InDistill's losses: MSE between a student layer and the pruned teacher layer of the same shape, PKT
(probabilistic knowledge transfer, Passalis & Tefas) between the embeddings, and Hinton's soft-label
knowledge distillation for the task."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def _cosine_kernel(features: torch.Tensor) -> torch.Tensor:
    unit = features / (features.norm(dim=1, keepdim=True) + EPS)
    similarity = (unit @ unit.T + 1.0) / 2.0
    return similarity / similarity.sum(dim=1, keepdim=True)


def pkt_loss(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Jeffreys divergence between the two batches' cosine-similarity distributions."""
    t, s = _cosine_kernel(teacher.flatten(1)), _cosine_kernel(student.flatten(1))
    return ((t - s) * (torch.log(t + EPS) - torch.log(s + EPS))).mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """KL(teacher ‖ student) of the temperature-softened distributions, times T² (Hinton et al., 2015)."""
    t = F.log_softmax(teacher_logits / temperature, dim=1)
    s = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2
