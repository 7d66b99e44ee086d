"""Teachers and students as InDistill sees them: a classifier whose logits, whose embedding (the input of its
first linear layer, i.e. the pooled features) and whose intermediate stage outputs can be read.

Students are torchvision CNNs named `ARCH[:WIDTH]` (`mobilenet_v2:0.5`, `efficientnet_b0`, `resnet18`, …;
WIDTH is MobileNet's width multiplier), trained from scratch. Stage outputs are the children of the
network's `features` (MobileNet, EfficientNet, MNASNet, VGG, ConvNeXt) or ResNet's `layer1`–`layer4`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision import models

from services.models.errors import ModelsError


@dataclass
class Network:
    module: nn.Module
    labels: tuple[str, ...]
    points: list[str]  # candidate stage outputs, shallow to deep (module paths)
    input_size: int = 224
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the network's input normalisation, RGB in [0, 1]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # point -> kept channels (pruning)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        logits = getattr(self.module, "logits", None)
        return logits(images) if callable(logits) else self.module(images)

    def submodule(self, path: str) -> nn.Module:
        return self.module.get_submodule(path)

    def embedding_layer(self) -> nn.Linear:
        linear = next((m for m in self.module.modules() if isinstance(m, nn.Linear)), None)
        if linear is None:
            raise ModelsError("the network has no linear classifier layer to read its embedding from")
        return linear


class _Stop(Exception):
    """Ends a forward pass once the last requested stage output is recorded."""


@contextmanager
def tapped(net: Network, points: list[str], *, embedding: bool = False, stop_after: str | None = None) -> Iterator[
    dict[str, torch.Tensor]
]:
    """Records the outputs of `points` (and the embedding) of forward passes run inside the block. Pruned
    points (net.masks) pass on only their kept channels' values (the others are zeroed), so later layers see
    the pruned network; the record holds the kept channels only."""
    record: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str):
        def run(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            kept = net.masks.get(name)
            record[name] = output if kept is None else output[:, kept]
            if name == stop_after:
                raise _Stop
            if kept is None:
                return None
            mask = torch.zeros(output.shape[1], dtype=output.dtype, device=output.device)
            mask[kept] = 1
            return output * mask[None, :, None, None]

        return run

    for name in points:
        handles.append(net.submodule(name).register_forward_hook(hook(name)))
    if embedding:
        handles.append(net.embedding_layer().register_forward_pre_hook(
            lambda _m, inputs: record.__setitem__("embedding", inputs[0])))
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def run_until(net: Network, images: torch.Tensor, point: str) -> torch.Tensor:
    """The output of one stage without running the rest of the network."""
    with tapped(net, [point], stop_after=point) as record, suppress(_Stop):
        net.logits(images)
    return record[point]


def stage_points(module: nn.Module) -> list[str]:
    features = getattr(module, "features", None)
    if isinstance(features, nn.Sequential):
        return [f"features.{i}" for i in range(len(features))]
    if all(hasattr(module, f"layer{i}") for i in range(1, 5)):
        return ["maxpool", "layer1", "layer2", "layer3", "layer4"]
    raise ModelsError(f"{type(module).__name__}: no `features` stages or ResNet layers to distil")


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_classifier(spec: str, classes: int) -> nn.Module:
    """`ARCH[:WIDTH]` as a torchvision model with random weights and `classes` outputs."""
    arch, _, width = spec.partition(":")
    if arch not in models.list_models(module=models):
        raise ModelsError(f"unknown student architecture {arch!r} (any torchvision classification model)")
    kwargs: dict[str, float | int] = {"num_classes": classes}
    if width:
        kwargs["width_mult"] = float(width)
    try:
        module = models.get_model(arch, weights=None, **kwargs)
    except TypeError as exc:
        raise ModelsError(f"{arch} does not take a width multiplier ({spec!r}): {exc}") from exc
    return module


def build_student(spec: str, labels: tuple[str, ...], input_size: int = 224) -> Network:
    """A torchvision CNN from scratch with one output per teacher class."""
    module = torchvision_classifier(spec, len(labels))
    return Network(module, labels, stage_points(module), input_size, IMAGENET_MEAN, IMAGENET_STD)


def size_mb(module: nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in module.parameters()) / 1e6


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
