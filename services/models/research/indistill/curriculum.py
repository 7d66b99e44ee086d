"""InDistill's curriculum (3.2.1): the aligned layers are distilled one at a time, shallow to deep, the
deeper ones for longer (the reference code gives layer i a + i epochs, a = 2), then the embedding with PKT,
then the task loss. Here the phases share a step budget in those proportions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    kind: str  # "layer", "embedding" or "task"
    steps: int
    layer: int = -1  # index into the aligned layers for "layer" phases


def schedule(layers: int, steps: int, *, feature_fraction: float = 0.5, a: int = 2) -> list[Phase]:
    """Phases for `steps` optimiser steps: `feature_fraction` of them distil the layers (weights a+1, …, a+n)
    and the embedding (weight a+n+1), the rest train on the task loss."""
    feature = round(steps * feature_fraction)
    weights = [a + i for i in range(1, layers + 2)]  # the last weight: the embedding
    unit = feature / sum(weights)
    counts = [max(1, round(w * unit)) for w in weights] if feature else [0] * len(weights)
    phases = [Phase("layer", counts[i], i) for i in range(layers)]
    phases.append(Phase("embedding", counts[-1]))
    phases.append(Phase("task", max(1, steps - sum(counts))))
    return [p for p in phases if p.steps > 0]
