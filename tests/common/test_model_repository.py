"""The model repository: Triton configs parsed with Triton's protobuf, sidecars, installed or not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.common.model_repository import (
    ModelNotFoundError,
    ModelRepository,
    ModelRepositoryError,
    parse_config,
)
from tests.support.test_models import TEST_MODELS


@pytest.fixture
def repo_copy(test_repository: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(test_repository, tmp_path / "repo"))


def test_lists_models_with_task_and_config(test_repository: Path) -> None:
    repo = ModelRepository(test_repository)
    assert sorted(m.name for m in repo.models()) == sorted(TEST_MODELS)
    detector = repo.get("test_detector")
    assert detector.task == "object_detection"
    assert detector.config.platform == "onnxruntime_onnx"
    assert detector.max_batch_size == 8 and detector.dynamic_batching
    assert [i.name for i in detector.config.input] == ["images"]
    assert list(detector.config.input[0].dims) == [3, 32, 32]
    assert len(detector.meta.labels) == 80
    assert detector.meta.source == "test"
    assert detector.installed and detector.size_bytes > 0
    assert repo.get("test_unbatched").max_batch_size == 0


def test_model_without_weights_is_listed_but_not_installed(repo_copy: Path) -> None:
    shutil.rmtree(repo_copy / "test_classifier" / "1")
    repo = ModelRepository(repo_copy)
    assert "test_classifier" in {m.name for m in repo.models()}
    assert "test_classifier" not in {m.name for m in repo.installed()}
    with pytest.raises(ModelNotFoundError, match="maam models"):
        repo.get_installed("test_classifier")


def test_newest_version_with_weights_wins(repo_copy: Path) -> None:
    (repo_copy / "test_classifier" / "3").mkdir()  # empty: ignored
    shutil.copytree(repo_copy / "test_classifier" / "1", repo_copy / "test_classifier" / "2")
    spec = ModelRepository(repo_copy).get("test_classifier")
    assert spec.version_dir == repo_copy / "test_classifier" / "2"


def test_installed_by_task(test_repository: Path) -> None:
    repo = ModelRepository(test_repository)
    assert [m.name for m in repo.installed("text_embedding")] == ["test_text_embedder"]


def test_broken_models_are_reported_not_fatal(repo_copy: Path) -> None:
    (repo_copy / "test_classifier" / "config.pbtxt").write_text("max_batch_size: eight\n")
    (repo_copy / "test_detector" / "maam.json").write_text("{not json")
    (repo_copy / "test_unbatched" / "maam.json").write_text(json.dumps({"task": "x", "source": "stolen"}))
    repo = ModelRepository(repo_copy)
    assert set(repo.errors) == {"test_classifier", "test_detector", "test_unbatched"}
    assert "not a valid Triton model config" in repo.errors["test_classifier"]
    assert "not valid JSON" in repo.errors["test_detector"]
    assert "source must be one of" in repo.errors["test_unbatched"]
    with pytest.raises(ModelNotFoundError, match="broken"):
        repo.get("test_classifier")
    assert "test_image_embedder" in {m.name for m in repo.installed()}


def test_config_name_must_match_directory(repo_copy: Path) -> None:
    config = repo_copy / "test_classifier" / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "test_classifier"', 'name: "other"'))
    assert "differs from its directory" in ModelRepository(repo_copy).errors["test_classifier"]


def test_parse_config_rejects_unknown_fields() -> None:
    with pytest.raises(ModelRepositoryError):
        parse_config('name: "x"\nno_such_field: 1\n')


def test_labels_file_is_read(repo_copy: Path) -> None:
    model_dir = repo_copy / "test_classifier"
    (model_dir / "labels.txt").write_text("cat\ndog\n\n")
    meta = json.loads((model_dir / "maam.json").read_text())
    meta.pop("labels")
    meta["labels_file"] = "labels.txt"
    (model_dir / "maam.json").write_text(json.dumps(meta))
    assert ModelRepository(repo_copy).get("test_classifier").meta.labels == ("cat", "dog")


def test_missing_repository_is_empty(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path / "nowhere")
    assert repo.models() == [] and repo.errors == {}
