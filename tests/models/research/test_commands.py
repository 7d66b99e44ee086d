"""`maam models train` / `export-trained`: a config file in, a checkpoint and an installed model out; bad
configs are refused with the reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from services.common.model_repository import ModelRepository
from services.models.cli import app
from services.models.research.installing import export_checkpoint
from tests.support.processes import child_env, maam
from tests.support.research_data import (
    TINY_ALBEF,
    TINY_MEMEFIER,
    TINY_MVSD,
    write_caption_pairs,
    write_dhf1k,
    write_meme_detection,
    write_vocab,
)


def test_train_mvsd_from_a_config_and_install(tmp_path: Path) -> None:
    config = tmp_path / "mvsd.yaml"
    config.write_text(yaml.safe_dump({
        "architecture": TINY_MVSD,
        "training": {"data": str(write_dhf1k(tmp_path / "dhf1k")), "resize": 32, "clip_frames": 2, "batch_size": 2,
                     "steps": 3},
    }))
    result = subprocess.run(
        maam("models", "train", "mvsd", "--config", str(config), "--output", str(tmp_path / "out"), "--install",
             "my_mvsd", "--repository", str(tmp_path / "repo"), "--threads", "1", "--log-every", "0"),
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["steps"] == 3 and set(summary["metrics"]) >= {"NSS", "CC", "sAUC"}
    assert "installed my_mvsd" in result.stdout
    spec = ModelRepository(tmp_path / "repo").get_installed("my_mvsd")
    assert spec.task == "saliency" and spec.meta.source == "trained" and spec.meta.params["format"] == "mvsd"


def test_export_trained_memefier_meme_head_and_albef(tmp_path: Path) -> None:
    from services.models.research.albef.config import AlbefConfig
    from services.models.research.albef.train import train_albef
    from services.models.research.memefier.config import MemefierConfig
    from services.models.research.memefier.train import train_memefier

    memes = write_meme_detection(tmp_path / "memes", per_class=3)
    run = train_memefier(MemefierConfig.model_validate({
        "dataset": {"kind": "meme_detection", "root": str(memes)}, "architecture": TINY_MEMEFIER,
        "training": {"steps": 2, "batch_size": 4}}), tmp_path / "out")
    assert set(run.metrics["val"]) == {"accuracy", "f1", "auc"}
    export_checkpoint(run.checkpoint, tmp_path / "repo", "my_meme")
    meme = ModelRepository(tmp_path / "repo").get_installed("my_meme")
    assert meme.task == "meme_classification" and meme.meta.labels == ("not_meme", "meme")

    pairs = write_caption_pairs(tmp_path / "pairs", images=4)
    albef = train_albef(AlbefConfig.model_validate({"architecture": TINY_ALBEF, "training": {
        "train_file": str(pairs / "train.json"), "image_root": str(pairs), "batch_size": 4, "steps": 2,
        "vocab_file": str(write_vocab(tmp_path / "vocab.txt"))}}), tmp_path / "out")
    assert set(export_checkpoint(albef.checkpoint, tmp_path / "repo", "my_albef")) == {"my_albef_image",
                                                                                       "my_albef_text"}


def test_bad_configs_are_refused_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"architecture": {"image_size": 40}}))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "mvsd", "--config", str(config)])
    assert result.exit_code == 1 and "multiple of 16" in result.output
    config.write_text(yaml.safe_dump({"dataset": {"kind": "fbhm"}, "training": {"epoch": 3}}))
    result = runner.invoke(app, ["train", "memefier", "--config", str(config)])
    assert result.exit_code == 1 and "epoch" in result.output and "Extra inputs" in result.output
    result = runner.invoke(app, ["train", "yolo", "--config", str(config)])
    assert result.exit_code == 1 and "memefier, mvsd, albef" in result.output
    result = runner.invoke(app, ["export-trained", str(config), "--name", "x"])
    assert result.exit_code == 1 and "cannot read the checkpoint" in result.output
