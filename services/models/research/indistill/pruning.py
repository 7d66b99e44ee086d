"""Channel pruning of the teacher's aligned layers down to the student's widths. Importance is each channel's
mean absolute activation over calibration images (stage outputs of residual networks are sums of branches,
so no single convolution's filter norms rank their channels); the least important channels are removed,
i.e. zeroed for every layer after them and left out of the distillation target."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from services.models.research.indistill.alignment import AlignedLayer
from services.models.research.indistill.networks import Network, tapped


@torch.no_grad()
def channel_importance(teacher: Network, layers: Sequence[AlignedLayer], images: torch.Tensor,
                       batch: int = 16) -> dict[str, torch.Tensor]:
    teacher.module.eval()
    sums: dict[str, torch.Tensor] = {}
    with tapped(teacher, [layer.teacher for layer in layers]) as record:
        for start in range(0, images.shape[0], batch):
            teacher.logits(images[start:start + batch])
            for layer in layers:
                value = record[layer.teacher].abs().sum(dim=(0, 2, 3))
                sums[layer.teacher] = sums.get(layer.teacher, 0) + value
    return sums


def prune(teacher: Network, layers: Sequence[AlignedLayer], importance: dict[str, torch.Tensor]) -> Network:
    """A view of the teacher (same weights) whose aligned layers keep the student's width of channels."""
    masks = {}
    for layer in layers:
        order = torch.argsort(importance[layer.teacher], descending=True)
        masks[layer.teacher] = torch.sort(order[: layer.student_channels]).values
    return Network(teacher.module, teacher.labels, teacher.points, teacher.input_size, teacher.mean, teacher.std,
                   masks)
