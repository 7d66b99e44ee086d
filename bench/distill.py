"""InDistill for real (source document 3.2.1, Table 9): the nsfwjs MobileNetV2 NSFW classifier (npm
nsfwjs@4.3.0, weights from the package; checked against TensorFlow.js running the package's own model) is
distilled into a smaller student on unlabelled photos (scikit-image's, and random edits of them) with the
teacher's soft labels, beside plain knowledge distillation (soft labels only, no pruning, no layer phases)
of the same student from the same initial weights for the same number of steps. All three are exported to
ONNX and measured in this process: parameters, size on disk, ONNX Runtime latency (ratio to the teacher,
rounds interleaved) and agreement with the teacher on held-out photos (photos never seen in training, and
their edits): top-1 agreement, mean total-variation distance, KL(teacher ‖ student) and the NSFW score's
(Hentai + Porn + Sexy) mean absolute difference; the majority-class guess and the untrained student are the
floor to read them against.

    python bench/distill.py [--quick] [--steps N] [--student mobilenet_v2:0.5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from services.common.model_repository import ModelRepository
from services.models.bench import run as run_onnx
from services.models.research.indistill.distill import (
    DistillSettings,
    indistill,
    plain_kd,
    teacher_targets,
)
from services.models.research.indistill.export import export_classifier
from services.models.research.indistill.networks import Network, build_student, parameters
from services.models.research.indistill.nsfwjs_teacher import LABELS
from services.models.research.indistill.photos import as_tensor, edits, skimage_photos
from services.models.research.indistill.teachers import nsfwjs_network

NSFW = [LABELS.index(x) for x in ("Hentai", "Porn", "Sexy")]


def split_photos(teacher: Network, photos: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """Every third photo, in the order of the teacher's "Drawing" probability, is held out, so both the
    photos the teacher calls drawings and the neutral ones are in both parts."""
    with torch.no_grad():
        probs = teacher.module(as_tensor(list(photos.values()), 224)).numpy()
    order = [name for _, name in sorted(zip(probs[:, 0], photos, strict=True))]
    held = order[1::3]
    return [n for n in order if n not in held], held


def agreement(teacher: np.ndarray, student: np.ndarray) -> dict[str, float]:
    eps = 1e-7
    return {
        "top-1": float(np.mean(teacher.argmax(1) == student.argmax(1))),
        "TV": float(np.mean(0.5 * np.abs(teacher - student).sum(1))),
        "KL": float(np.mean((teacher * (np.log(teacher + eps) - np.log(student + eps))).sum(1))),
        "NSFW MAE": float(np.mean(np.abs(teacher[:, NSFW].sum(1) - student[:, NSFW].sum(1)))),
    }


def latencies(repo: ModelRepository, names: list[str], feeds: list[dict[str, np.ndarray]], rounds: int,
              threads: int) -> dict[str, tuple[float, float]]:
    """Median ms per image and median per-round ratio to the first model (the teacher)."""
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in names:
            per_round[name].append(run_onnx(repo.get_installed(name), feeds, 1, threads).latency_ms)
    base = per_round[names[0]]
    return {n: (statistics.median(v), statistics.median(x / b for x, b in zip(v, base, strict=True)))
            for n, v in per_round.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few edits and steps")
    parser.add_argument("--steps", type=int, default=0, help="optimiser steps per student (default 320, quick 24)")
    parser.add_argument("--student", default="mobilenet_v2:0.5")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--edits", type=int, default=0, help="images per training photo (default 16, quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--no-tfjs", action="store_true", help="skip the TensorFlow.js check of the teacher")
    args = parser.parse_args()
    steps = args.steps or (24 if args.quick else 320)
    per_photo = args.edits or (3 if args.quick else 16)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    teacher = nsfwjs_network()
    photos = skimage_photos()
    train_names, held_names = split_photos(teacher, photos)
    train = as_tensor(edits([photos[n] for n in train_names], per_photo, seed=1), 224)
    held = as_tensor(edits([photos[n] for n in held_names], max(2, per_photo // 2), seed=2), 224)
    print(f"teacher: nsfwjs@4.3.0 MobileNetV2 ({parameters(teacher.module) / 1e6:.2f} M parameters)")
    print(f"training: {len(train_names)} photos x {per_photo} = {len(train)} images; "
          f"held out: {', '.join(held_names)} -> {len(held)} images")
    if not args.no_tfjs:
        from services.models.research.indistill.tfjs_check import tfjs_probabilities

        with torch.no_grad():
            mine = teacher.module(held[:4]).numpy()
        print(f"torch teacher vs TensorFlow.js on 4 held-out images: max abs diff "
              f"{np.abs(mine - tfjs_probabilities(held[:4].numpy())).max():.2g}")

    settings = DistillSettings(steps=steps, batch_size=args.batch_size, learning_rate=args.learning_rate)
    targets = teacher_targets(teacher, train)
    torch.manual_seed(0)
    untrained = build_student(args.student, teacher.labels)
    initial = {k: v.clone() for k, v in untrained.module.state_dict().items()}
    students = {}
    for method in ("indistill", "plain-kd"):
        student = build_student(args.student, teacher.labels)
        student.module.load_state_dict(initial)  # the same start for both methods
        student.mean, student.std = teacher.mean, teacher.std
        t0 = time.perf_counter()
        if method == "indistill":
            run = indistill(teacher, student, train, settings)
            print("InDistill aligned layers (teacher -> student channels): " + ", ".join(
                f"{a.teacher} {a.teacher_channels}->{a.student_channels} at {a.size[0]}x{a.size[1]}"
                for a in run.layers))
            print("phases: " + ", ".join(f"{p.kind}{'' if p.layer < 0 else p.layer} {p.steps}" for p in run.phases))
            last_loss = run.logs[-1].first_last(10)
        else:
            last_loss = plain_kd(teacher, student, train, settings, targets).first_last(10)
        print(f"{method}: {steps} steps in {time.perf_counter() - t0:.0f} s; task (KD) loss first/last 10 steps "
              f"{last_loss[0]:.4f} -> {last_loss[1]:.4f}")
        students[method] = student
    untrained.mean, untrained.std = teacher.mean, teacher.std

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = {"teacher": teacher, "indistill": students["indistill"], "plain-kd": students["plain-kd"],
                  "untrained": untrained}
        for name, net in models.items():
            export_classifier(root, net, name.replace("-", "_"), task="nsfw_classification",
                              positive_labels=("Hentai", "Porn", "Sexy"), description=name, license="MIT")
        repo = ModelRepository(root)
        feeds = [{"images": held[i:i + 1].numpy()} for i in range(min(len(held), 24))]
        names = [n.replace("-", "_") for n in models]
        timing = latencies(repo, names[:3], feeds, rounds=3 if args.quick else 5, threads=args.threads)
        probs = {n: np.concatenate([run_onnx(repo.get_installed(n), [{"images": held.numpy()}], 1).outputs[0][0]])
                 for n in names}
        print(f"\n{'model':11} {'params':>8} {'ONNX MB':>8} {'size':>6} {'ms/img':>7} {'latency':>8} "
              f"{'top-1':>6} {'TV':>6} {'KL':>7} {'NSFW MAE':>9}")
        teacher_probs = probs["teacher"]
        for name, net in models.items():
            key = name.replace("-", "_")
            size = repo.get_installed(key).weights_path.stat().st_size / 1e6
            ms, ratio = timing.get(key, (float("nan"), float("nan")))
            agree = agreement(teacher_probs, probs[key])
            print(f"{name:11} {parameters(net.module) / 1e6:7.2f}M {size:8.2f} "
                  f"{size / (repo.get_installed('teacher').weights_path.stat().st_size / 1e6):6.2f} {ms:7.2f} "
                  f"{ratio:7.2f}x {agree['top-1']:6.3f} {agree['TV']:6.3f} {agree['KL']:7.4f} "
                  f"{agree['NSFW MAE']:9.4f}")
        majority = np.bincount(teacher_probs.argmax(1), minlength=len(LABELS)).argmax()
        print(f"\nmajority-class guess ({LABELS[majority]}) agrees on "
              f"{np.mean(teacher_probs.argmax(1) == majority):.3f} of the {len(held)} held-out images; "
              f"teacher's classes there: " + ", ".join(
                  f"{LABELS[i]} {c}" for i, c in enumerate(np.bincount(teacher_probs.argmax(1),
                                                                          minlength=len(LABELS))) if c))
        print("size and latency columns are ratios to the teacher (latency: median of per-round ratios, ONNX "
              f"Runtime, batch 1, {args.threads} thread(s)); whole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
