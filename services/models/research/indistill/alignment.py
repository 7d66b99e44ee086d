"""Which teacher and student layers InDistill distils: at every resolution both networks pass through
(except the first, the stem, and the last, which the embedding's PKT loss covers), the last stage output of
each; the teacher's is channel-pruned to the student's width there. Shallow to deep."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from services.models.research.indistill.networks import Network, tapped


@dataclass(frozen=True)
class AlignedLayer:
    teacher: str
    student: str
    teacher_channels: int
    student_channels: int
    size: tuple[int, int]


@torch.no_grad()
def _shapes(net: Network, size: int) -> dict[str, tuple[int, int, int]]:
    was_training = net.module.training
    net.module.eval()
    with tapped(net, net.points) as record:
        net.logits(torch.zeros(1, 3, size, size))
    net.module.train(was_training)
    return {name: tuple(record[name].shape[1:]) for name in net.points if record.get(name) is not None
            and record[name].dim() == 4}


def _last_per_resolution(shapes: dict[str, tuple[int, int, int]]) -> dict[tuple[int, int], tuple[str, int]]:
    out: dict[tuple[int, int], tuple[str, int]] = {}
    for name, (channels, height, width) in shapes.items():  # insertion order: shallow to deep
        out[(height, width)] = (name, channels)
    return out


def align(teacher: Network, student: Network, size: int) -> list[AlignedLayer]:
    t = _last_per_resolution(_shapes(teacher, size))
    s = _last_per_resolution(_shapes(student, size))
    shared = [res for res in s if res in t]
    layers = []
    for res in shared[1:-1]:
        (t_name, t_ch), (s_name, s_ch) = t[res], s[res]
        if s_ch <= t_ch:
            layers.append(AlignedLayer(t_name, s_name, t_ch, s_ch, res))
    return layers
