"""`maam models train mvsd --config FILE`: MV-SD on DHF1K clips with KL + 0.5·CC + 0.5·SIM (AdamW, learning
rate divided by 10 after half of the steps), then the DHF1K metrics on the validation videos."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from services.models.errors import ModelsError
from services.models.research import saliency_metrics as sm
from services.models.research.mvsd.config import MvsdConfig
from services.models.research.mvsd.data import DHF1KClips, Video, list_videos, load_frame, load_ground_truth
from services.models.research.mvsd.losses import saliency_loss
from services.models.research.mvsd.model import MVSD
from services.models.research.training import (
    TrainLog,
    forever,
    half_time_decay,
    save_checkpoint,
    seed_everything,
    train_steps,
)

log = logging.getLogger(__name__)
KIND = "mvsd"


@dataclass(frozen=True)
class MvsdRun:
    log: TrainLog
    checkpoint: Path
    metrics: dict[str, float]


def build_model(config: MvsdConfig) -> MVSD:
    return MVSD(config.architecture)


def train_mvsd(config: MvsdConfig, output: Path, *, evaluate_videos: int = 0, log_every: int = 0) -> MvsdRun:
    training, arch = config.training, config.architecture
    if training.data is None:
        raise ModelsError("the MV-SD config names no dataset (training.data: the DHF1K root)")
    seed_everything(training.seed)
    model = build_model(config)
    clips = DHF1KClips(training.data, "train", image_size=arch.image_size, resize_to=training.resize,
                       clip_frames=min(training.clip_frames, arch.max_frames), augment=training.augment_probability,
                       seed=training.seed)
    loader = DataLoader(clips, batch_size=training.batch_size, shuffle=True, num_workers=training.workers,
                        drop_last=len(clips) > training.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)

    def loss(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return saliency_loss(net(batch["frames"]), batch["maps"], training.kl_weight, training.cc_weight,
                             training.sim_weight)

    record = train_steps(model, forever(lambda: loader), loss, optimizer, training.steps,
                         scheduler=half_time_decay(optimizer, training.steps), log_every=log_every, what="mvsd")
    checkpoint = save_checkpoint(Path(output) / "mvsd.pt", KIND, config.model_dump(mode="json"), model,
                                 losses=record.losses)
    metrics: dict[str, float] = {}
    if evaluate_videos:
        metrics = evaluate(model, list_videos(training.data, "val")[:evaluate_videos], arch.image_size,
                           min(training.clip_frames, arch.max_frames))
    return MvsdRun(record, checkpoint, metrics)


@torch.no_grad()
def predict_video(model: MVSD, video: Video, image_size: int, clip_frames: int) -> list[np.ndarray]:
    """Saliency of every frame, clip by clip (consecutive windows of clip_frames)."""
    model.eval()
    maps: list[np.ndarray] = []
    for start in range(0, len(video.frames), clip_frames):
        frames = torch.stack([load_frame(p, image_size) for p in video.frames[start:start + clip_frames]])
        maps.extend(m.numpy() for m in model(frames[None])[0])
    return maps


def evaluate(model: MVSD, videos: list[Video], image_size: int, clip_frames: int, seed: int = 0) -> dict[str, float]:
    """DHF1K's metrics averaged over every frame, predictions resized to the ground truth's resolution;
    sAUC's negatives are fixations of a frame of another video."""
    if not videos:
        raise ModelsError("no validation video to evaluate on")
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {k: [] for k in ("NSS", "CC", "SIM", "AUC-J", "sAUC", "KL")}
    for v, video in enumerate(videos):
        others = [o for i, o in enumerate(videos) if i != v]
        for i, pred in enumerate(predict_video(model, video, image_size, clip_frames)):
            density, fixation = load_ground_truth(video, i)
            if not fixation.any():
                continue
            pred = cv2.resize(pred, (density.shape[1], density.shape[0]), interpolation=cv2.INTER_LINEAR)
            scores["NSS"].append(sm.nss(pred, fixation))
            scores["CC"].append(sm.cc(pred, density))
            scores["SIM"].append(sm.sim(pred, density))
            scores["KL"].append(sm.kl(pred, density))
            scores["AUC-J"].append(sm.auc_judd(pred, fixation))
            if others:
                other = others[int(rng.integers(len(others)))]
                _, other_fix = load_ground_truth(other, int(rng.integers(len(other.fixations))))
                if other_fix.shape == fixation.shape and other_fix.any():
                    scores["sAUC"].append(sm.auc_shuffled(pred, fixation, other_fix, seed=int(rng.integers(1 << 31))))
    return {k: float(np.mean(v)) for k, v in scores.items() if v}
