"""InDistill on tiny networks: aligned layers, the pruned teacher's targets, the curriculum, losses that fall,
the plain-KD baseline, and `maam models distill` writing an installable student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from services.common.model_repository import ModelRepository
from services.models.export.common import onnx_outputs
from services.models.research.indistill.alignment import align
from services.models.research.indistill.curriculum import schedule
from services.models.research.indistill.distill import DistillSettings, indistill, plain_kd, teacher_targets
from services.models.research.indistill.export import Probabilities, export_classifier
from services.models.research.indistill.losses import kd_loss, pkt_loss
from services.models.research.indistill.networks import Network, build_student, run_until, stage_points, tapped
from services.models.research.indistill.nsfwjs_teacher import keras_mobilenet_v2
from services.models.research.indistill.pruning import channel_importance, prune
from tests.support.processes import child_env, maam

LABELS = ("a", "b", "c")


def _teacher(size: int = 64) -> Network:
    torch.manual_seed(0)
    module = keras_mobilenet_v2(width_mult=0.5, num_classes=len(LABELS)).eval()
    return Network(module, LABELS, stage_points(module), size)


def test_alignment_prunes_the_teacher_to_the_student_widths() -> None:
    teacher, student = _teacher(), build_student("mobilenet_v2:0.25", LABELS, 64)
    layers = align(teacher, student, 64)
    assert [(x.teacher, x.teacher_channels, x.student_channels, x.size) for x in layers] == [
        ("features.3", 16, 8, (16, 16)), ("features.6", 16, 8, (8, 8)), ("features.13", 48, 24, (4, 4))]
    images = torch.rand(6, 3, 64, 64)
    importance = channel_importance(teacher, layers, images)
    pruned = prune(teacher, layers, importance)
    kept = pruned.masks["features.3"]
    assert kept.numel() == 8 and torch.equal(kept, torch.sort(torch.argsort(importance["features.3"])[-8:]).values)
    with torch.no_grad():
        full = run_until(teacher, images, "features.3")
        with tapped(pruned, ["features.3", "features.6"]) as record:
            pruned.logits(images)
        unpruned_6 = run_until(teacher, images, "features.6")
    assert torch.allclose(record["features.3"], full[:, kept])  # the target: the kept channels
    assert record["features.6"].shape == (6, 8, 8, 8)
    assert not torch.allclose(record["features.6"], unpruned_6[:, pruned.masks["features.6"]])  # pruning propagates


def test_curriculum_gives_deeper_layers_longer_then_the_task() -> None:
    phases = schedule(3, 100, feature_fraction=0.5, a=2)
    assert [(p.kind, p.layer, p.steps) for p in phases] == [
        ("layer", 0, 8), ("layer", 1, 11), ("layer", 2, 14), ("embedding", -1, 17), ("task", -1, 50)]


def test_losses() -> None:
    x = torch.randn(8, 5)
    assert float(pkt_loss(x, x)) == pytest.approx(0.0, abs=1e-6) and float(pkt_loss(x, torch.randn(8, 5))) > 0
    assert float(kd_loss(x, x)) == pytest.approx(0.0, abs=1e-5) and float(kd_loss(x, -x)) > 0


def test_each_phase_lowers_its_loss_and_plain_kd_learns_too() -> None:
    teacher, student = _teacher(), build_student("mobilenet_v2:0.25", LABELS, 64)
    images = torch.rand(16, 3, 64, 64)
    settings = DistillSettings(steps=60, batch_size=8, learning_rate=3e-3, calibration_images=8)
    run = indistill(teacher, student, images, settings)
    assert [p.kind for p in run.phases] == ["layer", "layer", "layer", "embedding", "task"]
    for phase, log in zip(run.phases, run.logs, strict=True):
        first, last = log.first_last(2)
        assert last < first, (phase, log.losses)
    baseline = build_student("mobilenet_v2:0.25", LABELS, 64)
    log = plain_kd(teacher, baseline, images, DistillSettings(steps=12, batch_size=8, learning_rate=3e-3),
                   teacher_targets(teacher, images))
    assert log.first_last(3)[1] < log.first_last(3)[0]


def test_student_export_matches_torch(tmp_path: Path) -> None:
    student = build_student("mobilenet_v2:0.25", LABELS, 64)
    student.mean, student.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    assert export_classifier(tmp_path, student, "tiny_student", task="classification", description="t",
                             license="t", source="test") < 1e-4
    spec = ModelRepository(tmp_path).get_installed("tiny_student")
    assert spec.meta.labels == LABELS and "mean" not in spec.meta.params  # normalised inside the graph
    feeds = {"images": np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)}
    with torch.no_grad():
        want = Probabilities(student).eval()(torch.from_numpy(feeds["images"])).numpy()
    assert np.abs(onnx_outputs(spec.weights_path, feeds)[0] - want).max() < 1e-5


def test_distill_command_installs_a_student(tmp_path: Path) -> None:
    import subprocess

    from torchvision.models import mobilenet_v2

    torch.manual_seed(0)
    torch.save(mobilenet_v2(width_mult=0.5, num_classes=2).state_dict(), tmp_path / "teacher.pt")
    (tmp_path / "labels.txt").write_text("safe\nunsafe\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
    result = subprocess.run(
        maam("models", "distill", f"mobilenet_v2:0.5:{tmp_path / 'teacher.pt'}", "--student", "mobilenet_v2:0.35",
             "--data", str(photos), "--labels", str(tmp_path / "labels.txt"), "--steps", "6", "--batch-size", "2",
             "--task", "nsfw_classification", "--install", "tiny_distilled", "--threads", "1",
             "--output", str(tmp_path / "out"), "--repository", str(tmp_path / "repo")),
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "installed tiny_distilled" in result.stdout and '"aligned_layers"' in result.stdout
    spec = ModelRepository(tmp_path / "repo").get_installed("tiny_distilled")
    assert spec.task == "nsfw_classification" and spec.meta.source == "trained" and spec.meta.labels == ("safe",
                                                                                                          "unsafe")
    bad = subprocess.run(maam("models", "distill", "nsfw", "--student", "x", "--data", str(photos)),
                         capture_output=True, text=True, env=child_env(), timeout=120)
    assert bad.returncode == 1 and "ARCH[:WIDTH]:CHECKPOINT" in bad.stderr
