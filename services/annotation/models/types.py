"""Plain results of the adapters, independent of gRPC (the servicer turns them into messages)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# (x_min, y_min, x_max, y_max), normalised to [0, 1] of the image width and height.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box
    class_id: int


@dataclass(frozen=True)
class Label:
    label: str
    score: float
    class_id: int


@dataclass(frozen=True)
class Scored:
    """A binary decision from a classifier or detector: score >= threshold."""

    model: str
    score: float
    threshold: float
    labels: list[Label] = field(default_factory=list)
    regions: list[Detection] = field(default_factory=list)

    @property
    def positive(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class Vector:
    model: str
    values: np.ndarray
    normalized: bool = True


@dataclass(frozen=True)
class Caption:
    text: str
    score: float
    alternatives: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    # Four (x, y) points normalised, clockwise from the top-left.
    polygon: tuple[tuple[float, float], ...]
    box: Box


@dataclass(frozen=True)
class Saliency:
    model: str
    # float32 (H, W) in [0, 1] at the image's size.
    map: np.ndarray
    regions: list[Box]
