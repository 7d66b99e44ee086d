"""The NSFW verdict of an image: an image-level classifier decides (`is_nsfw` = its score against its
threshold), and the body-part detector's regions, when one is installed, are attached as evidence.

A body-part detector alone over-flags: NudeNet sees BUTTOCKS_EXPOSED at 0.74 on scikit-image's colour
wheel, while open_nsfw scores that image 0.0x. So with a classifier installed, the detector no longer
decides; without one, NsfwDetector's own score still does (services.annotation.models.detection)."""

from __future__ import annotations

import asyncio

import numpy as np

from services.annotation.models.classification import ImageClassifier
from services.annotation.models.detection import NsfwDetector
from services.annotation.models.types import Scored


class NsfwClassifier(ImageClassifier):
    tasks = ("nsfw_classification",)
    # Set by the catalog: the default nsfw_detection model, whose regions become evidence.
    evidence: NsfwDetector | None = None

    async def score(self, rgb: np.ndarray) -> Scored:
        if self.evidence is None:
            return await super().score(rgb)
        verdict, found = await asyncio.gather(super().score(rgb), self.evidence.score(rgb))
        return Scored(verdict.model, verdict.score, verdict.threshold, verdict.labels, found.regions)
