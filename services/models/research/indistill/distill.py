"""`maam models distill TEACHER --student ARCH --data DIR`: InDistill on unlabelled images with the teacher's
soft labels, and plain knowledge distillation (soft labels only, no pruning, no layer phases) for
comparison. The teacher's outputs and pruned-layer targets are computed once per image."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from services.models.research.indistill.alignment import AlignedLayer, align
from services.models.research.indistill.curriculum import Phase, schedule
from services.models.research.indistill.losses import kd_loss, pkt_loss
from services.models.research.indistill.networks import Network, run_until, tapped
from services.models.research.indistill.pruning import channel_importance, prune
from services.models.research.training import TrainLog, train_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 1e-3
    temperature: float = 4.0
    feature_fraction: float = 0.5
    curriculum_a: int = 2
    calibration_images: int = 64
    seed: int = 0


@dataclass
class Targets:
    logits: torch.Tensor  # [N, classes] of the (unpruned) teacher
    embedding: torch.Tensor  # [N, E] of the (unpruned) teacher
    layers: list[torch.Tensor] = field(default_factory=list)  # pruned teacher's aligned layers


@dataclass
class DistillRun:
    layers: list[AlignedLayer]
    phases: list[Phase]
    logs: list[TrainLog]


@torch.no_grad()
def teacher_targets(teacher: Network, images: torch.Tensor, layers: list[AlignedLayer] | None = None,
                    pruned: Network | None = None, batch: int = 16) -> Targets:
    teacher.module.eval()
    logits, embedding, features = [], [], [[] for _ in layers or ()]
    for start in range(0, images.shape[0], batch):
        x = images[start:start + batch]
        with tapped(teacher, [], embedding=True) as record:
            logits.append(teacher.logits(x))
            embedding.append(record["embedding"])
        if layers and pruned is not None:
            with tapped(pruned, [layer.teacher for layer in layers]) as record:
                pruned.logits(x)
                for i, layer in enumerate(layers):
                    features[i].append(record[layer.teacher])
    return Targets(torch.cat(logits), torch.cat(embedding), [torch.cat(f) for f in features])


def _batches(count: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch + 1 if count >= batch else 1, batch):
            yield order[start:start + batch]


def _optimizer(student: Network, settings: DistillSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(student.module.parameters(), lr=settings.learning_rate)


def kd_phase(student: Network, images: torch.Tensor, targets: Targets, steps: int, settings: DistillSettings,
             batches: Iterator[torch.Tensor], what: str = "kd") -> TrainLog:
    def loss(_net: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        return kd_loss(student.logits(images[index]), targets.logits[index], settings.temperature)

    return train_steps(student.module, batches, loss, _optimizer(student, settings), steps, what=what)


def plain_kd(teacher: Network, student: Network, images: torch.Tensor, settings: DistillSettings,
             targets: Targets | None = None) -> TrainLog:
    """Knowledge distillation without pruning: the student learns the teacher's soft labels only."""
    targets = targets or teacher_targets(teacher, images)
    batches = _batches(images.shape[0], settings.batch_size, settings.seed)
    return kd_phase(student, images, targets, settings.steps, settings, batches, "plain-kd")


def indistill(teacher: Network, student: Network, images: torch.Tensor, settings: DistillSettings) -> DistillRun:
    layers = align(teacher, student, teacher.input_size)
    calibration = images[: settings.calibration_images]
    pruned = prune(teacher, layers, channel_importance(teacher, layers, calibration))
    targets = teacher_targets(teacher, images, layers, pruned)
    phases = schedule(len(layers), settings.steps, feature_fraction=settings.feature_fraction, a=settings.curriculum_a)
    batches = _batches(images.shape[0], settings.batch_size, settings.seed)
    logs = []
    for phase in phases:
        if phase.kind == "task":
            logs.append(kd_phase(student, images, targets, phase.steps, settings, batches, "indistill-task"))
            continue
        layer = layers[phase.layer] if phase.kind == "layer" else None

        def loss(_net: torch.nn.Module, index: torch.Tensor, layer: AlignedLayer | None = layer,
                 phase: Phase = phase) -> torch.Tensor:
            x = images[index]
            if layer is not None:
                return F.mse_loss(run_until(student, x, layer.student), targets.layers[phase.layer][index])
            with tapped(student, [], embedding=True) as record:
                student.logits(x)
            return pkt_loss(targets.embedding[index], record["embedding"])

        what = f"indistill-{phase.kind}" + (f"-{layer.student}" if layer else "")
        logs.append(train_steps(student.module, batches, loss, _optimizer(student, settings), phase.steps, what=what))
    return DistillRun(layers, phases, logs)
