"""Teachers `maam models distill` knows: `nsfwjs` (the MobileNetV2 NSFW classifier of npm nsfwjs@4.3.0,
weights from the package) or `ARCH[:WIDTH]:CHECKPOINT` (a torchvision classifier and its state_dict, with
--labels)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from services.models.errors import ModelsError
from services.models.research.indistill import nsfwjs_teacher
from services.models.research.indistill.networks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Network,
    stage_points,
    torchvision_classifier,
)
from services.models.research.training import first_line

NSFWJS = "nsfwjs"
# What the repository entry of a teacher's task is, and which of its labels make the positive score.
TASKS = {NSFWJS: ("nsfw_classification", ("Hentai", "Porn", "Sexy"))}


def nsfwjs_network(cache: Path | None = None) -> Network:
    module = nsfwjs_teacher.load_teacher(nsfwjs_teacher.fetch_keras_model(cache))
    return Network(module, nsfwjs_teacher.LABELS, stage_points(module), nsfwjs_teacher.INPUT_SIZE)


def load_teacher(spec: str, *, labels: tuple[str, ...] = (), cache: Path | None = None) -> Network:
    if spec == NSFWJS:
        return nsfwjs_network(cache)
    arch, _, checkpoint = spec.rpartition(":")  # ARCH[:WIDTH]:CHECKPOINT
    if not arch or not checkpoint:
        raise ModelsError(f"teacher {spec!r}: give `nsfwjs` or ARCH[:WIDTH]:CHECKPOINT (a torchvision state_dict)")
    if not labels:
        raise ModelsError("a torchvision teacher needs its class labels (--labels FILE, one per line)")
    module = torchvision_classifier(arch, len(labels))
    try:
        module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelsError(f"cannot load the teacher {spec!r}: {first_line(exc)}") from exc
    return Network(module.eval(), labels, stage_points(module), 224, IMAGENET_MEAN, IMAGENET_STD)
