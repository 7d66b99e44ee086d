"""MemeFier: the three dataset layouts read as the document's tasks, stage-1 fusion is the element-wise
product, a few steps (with demographic tokens and caption supervision) lower L = L_hate + α·L_caption,
the metrics are the document's, the grid is its 64 settings, and the ONNX export matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from services.common.model_repository import ModelRepository
from services.common.text_encoding import clean_meme_text
from services.models.export.common import onnx_outputs
from services.models.research.memefier.clip_features import ClipFeatures, load_clip
from services.models.research.memefier.config import MemefierArchitecture, MemefierConfig, grid
from services.models.research.memefier.datasets import heads_for, read_attributes, read_split
from services.models.research.memefier.evaluation import scores
from services.models.research.memefier.export import ServingMemeFier, export_memefier
from services.models.research.memefier.model import MemeFier
from services.models.research.memefier.train import train_memefier
from tests.support.research_data import TINY_MEMEFIER, write_fbhm, write_memotion7k, write_multioff


def test_text_cleaning_is_memefiers() -> None:
    assert clean_meme_text("Hate them  ALL!!! 2023") == "hate them all"
    assert clean_meme_text(None) == "notext" and clean_meme_text("12 %") == "notext"


def test_the_three_layouts(tmp_path: Path) -> None:
    fbhm = write_fbhm(tmp_path / "fbhm", train=4, dev=2)
    records = read_split("fbhm", fbhm, "val")
    assert [r.targets for r in records] == [{"hateful": 0}, {"hateful": 1}] and records[1].image.is_file()
    memotion = write_memotion7k(tmp_path / "m7k", rows=20, tests=4)
    train, val = read_split("memotion7k", memotion, "train"), read_split("memotion7k", memotion, "val")
    assert len(train) + len(val) == 20 and val  # a seeded 90/10 split
    first = read_split("memotion7k", memotion, "train", "c")[0]
    assert set(first.targets) == {"humour", "sarcasm", "offensive", "motivational"}
    # Test labels "<sentiment>_<humour><sarcasm><offensive><motivational>": row 1 is "0_1211".
    test_b = read_split("memotion7k", memotion, "test", "b")
    assert test_b[1].targets == {"humour": 1, "sarcasm": 1, "offensive": 1, "motivational": 1}
    assert read_split("memotion7k", memotion, "test", "c")[1].targets["sarcasm"] == 2
    assert [r.targets["sentiment"] for r in read_split("memotion7k", memotion, "test", "a")] == [2, 0, 1, 2]
    multioff = write_multioff(tmp_path / "moff", per_split=4)
    assert [r.targets["offensive"] for r in read_split("multioff", multioff, "test")] == [1, 0, 1, 0]
    assert [h.classes for h in heads_for("memotion7k", "c")] == [4, 4, 4, 1]
    assert read_attributes(fbhm / "attributes.csv")["train00"] == [("White", "Female", "20-29")]


def test_stage_one_fusion_is_the_product_with_the_other_global_embedding() -> None:
    torch.manual_seed(0)
    arch = MemefierArchitecture.model_validate(TINY_MEMEFIER)
    model = MemeFier(arch, ClipFeatures(load_clip(arch.clip)), {"hateful": 1}).eval()
    captured = {}
    model.fusion.register_forward_pre_hook(lambda _m, args, kwargs: captured.update(x=args[0]), with_kwargs=True)
    images, ids = torch.randn(2, 3, 32, 32), torch.zeros(2, 77, dtype=torch.long)
    ids[:, :3] = torch.tensor([49406, 320, 49407])
    with torch.no_grad():
        model(images, ids)
        image, _ = model.features.image(images)
        o_x = torch.nn.functional.normalize(model.project_text(model.features.text(ids)[0]), dim=-1)
        _, patches = model.features.image(images)
    f_g = torch.nn.functional.normalize(model.project_patches(patches) + model.type_embedding.weight[0], dim=-1)
    assert torch.allclose(captured["x"][:, 1 : 1 + patches.shape[1]], f_g * o_x[:, None], atol=1e-6)
    assert image.shape == (2, 16)


def test_training_lowers_the_loss_with_persons_and_captions(tmp_path: Path) -> None:
    root = write_fbhm(tmp_path / "fbhm")
    config = MemefierConfig.model_validate({
        "dataset": {"kind": "fbhm", "root": str(root), "captions": str(root / "captions.json"),
                    "attributes": str(root / "attributes.csv")},
        "architecture": {**TINY_MEMEFIER, "external": True, "caption": True},
        "training": {"learning_rate": 2e-3, "steps": 16, "batch_size": 8, "alpha": 0.2},
    })
    run = train_memefier(config, tmp_path / "out")
    first, last = run.log.first_last(3)
    assert last < first, run.log.losses
    assert {"task", "caption"} <= set(run.log.parts[0])
    assert set(run.metrics["val"]) == {"accuracy", "auc"}
    with pytest.raises(ValueError, match=r"needs dataset\.captions"):
        MemefierConfig.model_validate({"dataset": {"kind": "fbhm"}, "architecture": {"caption": True}})


def test_scores_follow_each_datasets_protocol() -> None:
    heads = heads_for("memotion7k", "c")
    probs = {"humour": np.eye(4)[[0, 1, 2]], "sarcasm": np.eye(4)[[0, 0, 3]], "offensive": np.eye(4)[[1, 1, 1]],
             "motivational": np.array([[0.9], [0.1], [0.6]])}
    targets = {"humour": np.array([0, 1, 2]), "sarcasm": np.array([0, 1, 3]), "offensive": np.array([1, 1, 1]),
               "motivational": np.array([1, 0, 0])}
    got = scores("memotion7k", heads, probs, targets)
    # accuracies 1, 2/3, 1, 2/3 -> mean 5/6
    assert got["accuracy"] == pytest.approx(5 / 6) and got["humour_f1"] == pytest.approx(1.0)
    fbhm = scores("fbhm", heads_for("fbhm"), {"hateful": np.array([[0.2], [0.7], [0.6], [0.9]])},
                  {"hateful": np.array([0, 0, 1, 1])})
    assert fbhm == {"accuracy": pytest.approx(0.75), "auc": pytest.approx(0.75)}


def test_the_documents_grid_has_64_settings() -> None:
    settings = grid(MemefierConfig())
    assert len(settings) == 64
    assert {(s.training.learning_rate, s.training.epochs, s.training.alpha, s.architecture.d) for s in settings} == {
        (lr, e, a, d) for lr in (1e-5, 1e-4) for e in (16, 32) for a in (0.2, 0.8) for d in (512, 1024)}
    assert {(s.architecture.encoder.h, s.architecture.decoder.d) for s in settings} == {(4, 64), (4, 256), (16, 64),
                                                                                         (16, 256)}


def test_onnx_export_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    arch = MemefierArchitecture.model_validate({**TINY_MEMEFIER, "external": True})
    model = MemeFier(arch, ClipFeatures(load_clip(arch.clip)), {"hateful": 1}).eval()
    assert export_memefier(tmp_path, model, "tiny_memefier", source="test") < 1e-4
    spec = ModelRepository(tmp_path).get_installed("tiny_memefier")
    assert spec.task == "hateful_meme_classification" and [i.name for i in spec.config.input] == [
        "images", "input_ids", "attributes"]
    rng = np.random.default_rng(3)
    feeds = {"images": rng.standard_normal((4, 3, 32, 32)).astype(np.float32),
             "input_ids": np.zeros((4, 77), np.int64), "attributes": np.zeros((4, 21), np.int64)}
    feeds["input_ids"][:, :4] = [49406, 1929, 320, 49407]
    feeds["attributes"][1, :3] = [6, 9, 14]
    with torch.no_grad():
        want = ServingMemeFier(model)(*(torch.from_numpy(v) for v in feeds.values()))[0].numpy()
    got = onnx_outputs(spec.weights_path, feeds)[0]
    assert got.shape == (4, 1) and np.abs(want - got).max() < 1e-4 and float(np.std(got)) > 0
