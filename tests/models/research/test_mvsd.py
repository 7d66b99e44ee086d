"""MV-SD: the token operations equal nn.Unfold/nn.Fold, the loss is the document's, a few steps on a tiny
DHF1K-layout dataset lower it, the DHF1K metrics run, and the ONNX export matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from services.common.model_repository import ModelRepository
from services.models.export.common import onnx_outputs, torch_outputs
from services.models.research.mvsd.config import MvsdArchitecture, MvsdConfig
from services.models.research.mvsd.data import DHF1KClips, list_videos
from services.models.research.mvsd.export import export_mvsd
from services.models.research.mvsd.losses import saliency_loss
from services.models.research.mvsd.model import MVSD
from services.models.research.mvsd.tokens import ReverseSoftSplit, SoftSplit
from services.models.research.mvsd.train import train_mvsd
from services.models.research.training import load_checkpoint
from tests.support.research_data import TINY_MVSD, write_dhf1k


def test_soft_split_and_its_reverse_are_unfold_and_fold() -> None:
    x = torch.randn(2, 3, 32, 32)
    tokens, grid = SoftSplit(3, 7, 3, 2)(x)  # the document's first split: k 7, overlap 3, pad 2
    assert grid == (8, 8)
    assert torch.equal(tokens, nn.Unfold(7, padding=2, stride=4)(x).transpose(1, 2))
    for kernel, overlap, padding, size in ((3, 1, 1, 16), (7, 3, 3, 32)):
        folded = torch.randn(2, 64, 5 * kernel * kernel)
        want = nn.Fold((size, size), kernel, padding=padding, stride=kernel - overlap)(folded.transpose(1, 2))
        got = ReverseSoftSplit(5, kernel, overlap, padding)(folded, (8, 8), (size, size))
        assert torch.allclose(got, want, atol=1e-5)


def test_loss_is_kl_plus_half_cc_plus_half_sim() -> None:
    target = torch.rand(2, 3, 8, 8)
    same, parts = saliency_loss(target, target)
    assert parts["kl"] == pytest.approx(0.0, abs=1e-5) and parts["cc"] == pytest.approx(-1.0, abs=1e-5)
    assert parts["sim"] == pytest.approx(-1.0, abs=1e-5) and float(same) == pytest.approx(-1.0, abs=1e-4)
    other, parts = saliency_loss(torch.rand(2, 3, 8, 8), target)
    assert float(other) == pytest.approx(parts["kl"] + 0.5 * parts["cc"] + 0.5 * parts["sim"], rel=1e-5)
    assert float(other) > float(same)


def test_shapes_follow_the_t2t_and_rt2t_design() -> None:
    model = MVSD(MvsdArchitecture(**TINY_MVSD))
    t1, t2, t3, grid = model.encoder(torch.randn(3, 3, 32, 32))
    assert t1.shape == (3, 64, 8) and t2.shape == (3, 16, 8) and t3.shape == (3, 4, 16) and grid == (2, 2)
    with torch.no_grad():
        maps = model(torch.randn(2, 3, 3, 32, 32))
    assert maps.shape == (2, 3, 32, 32) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    with pytest.raises(ValueError, match="multiple of 16"):
        MvsdArchitecture(image_size=40)


def test_training_lowers_the_loss_and_evaluates_on_dhf1k_layout(tmp_path: Path) -> None:
    root = write_dhf1k(tmp_path / "dhf1k", frames=4, size=48)
    clips = DHF1KClips(root, "train", image_size=32, resize_to=40, clip_frames=3, augment=1.0, seed=1)
    sample = clips[0]
    assert sample["frames"].shape == (3, 3, 32, 32) and sample["maps"].shape == (3, 32, 32)
    assert set(np.unique(sample["fixations"].numpy())) <= {0.0, 1.0}
    config = MvsdConfig.model_validate({
        "architecture": TINY_MVSD,
        "training": {"data": str(root), "resize": 32, "clip_frames": 3, "batch_size": 3, "steps": 30,
                     "learning_rate": 3e-3, "augment_probability": 0.0},
    })
    run = train_mvsd(config, tmp_path / "out", evaluate_videos=2)
    first, last = run.log.first_last(5)
    assert last < first, run.log.losses
    assert set(run.metrics) == {"NSS", "CC", "SIM", "AUC-J", "sAUC", "KL"}
    assert all(np.isfinite(v) for v in run.metrics.values())
    assert load_checkpoint(run.checkpoint)["kind"] == "mvsd"
    assert [v.name for v in list_videos(root, "val")] == ["0004", "0005"]


def test_onnx_export_matches_torch_on_other_clip_lengths(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MVSD(MvsdArchitecture(**TINY_MVSD)).eval()
    assert export_mvsd(tmp_path, model, "tiny_mvsd", clip_frames=3, source="test") < 1e-4
    spec = ModelRepository(tmp_path).get_installed("tiny_mvsd")
    assert spec.task == "saliency" and spec.meta.params["input_layout"] == "clip"
    for shape in ((1, 1, 3, 32, 32), (2, 4, 3, 32, 32)):
        feeds = {"frames": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
        want, got = torch_outputs(model, feeds)[0], onnx_outputs(spec.weights_path, feeds)[0]
        assert got.shape == shape[:2] + shape[3:] and np.abs(want - got).max() < 1e-4
