"""A distilled student (or a teacher) → an image classifier in the model repository: `images` [batch, 3, S, S]
(RGB in [0, 1], normalised as the network's mean/std say) → `probabilities` [batch, classes]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from services.common.model_repository import ModelMeta
from services.models.export.common import export_and_verify, write_exported
from services.models.research.indistill.networks import Network


class Probabilities(nn.Module):
    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net
        self.module = net.module  # registered, so eval() and the exporter see the weights
        self.register_buffer("mean", torch.tensor(net.mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(net.std).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net.logits((images - self.mean) / self.std), dim=1)


def export_classifier(
    repository: Path, net: Network, name: str, *, task: str, positive_labels: tuple[str, ...] = (),
    description: str, license: str, source: str = "trained", threshold: float = 0.5,
) -> float:
    size = net.input_size
    rng = np.random.default_rng(0)
    example = {"images": rng.random((2, 3, size, size), dtype=np.float32)}
    check = {"images": rng.random((3, 3, size, size), dtype=np.float32)}
    exported = export_and_verify(name, Probabilities(net).eval(), example, ["probabilities"], check=check)
    params: dict[str, object] = {"input_size": size, "activation": "none", "threshold": threshold}
    if positive_labels:
        params["positive_labels"] = list(positive_labels)
    write_exported(
        repository, name, exported.model,
        ModelMeta(task=task, source=source, labels=net.labels, description=description, license=license,
                  params=params),
        output_dims={"probabilities": (len(net.labels),)},
    )
    return exported.max_abs_diff
