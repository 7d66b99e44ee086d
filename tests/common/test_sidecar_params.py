"""Sidecar keys are defined once (services/common/sidecar_params.py) and checked when a repository
loads: an unknown key is an error naming the model; what the exports and the shipped models write
passes."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.model_repository import ModelRepository
from services.models.export.faces import ARCFACE_PARAMS, SCRFD_PARAMS

ROOT = Path(__file__).parents[2]


def _sidecar(root: Path, name: str, task: str, params: dict) -> None:
    model = root / name
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(f'name: "{name}"\nplatform: "onnxruntime_onnx"\n')
    (model / "maam.json").write_text(json.dumps({"task": task, "source": "test", "params": params}))


def test_an_unknown_key_is_an_error_naming_the_model(tmp_path: Path) -> None:
    # The keys the SCRFD sidecar had: the detector reads nms_threshold and num_anchors.
    _sidecar(tmp_path, "old_scrfd", "face_detection",
             {**SCRFD_PARAMS, "nms_iou": 0.4, "anchors_per_location": 2})
    _sidecar(tmp_path, "scrfd", "face_detection", SCRFD_PARAMS)
    _sidecar(tmp_path, "arcface", "face_embedding", ARCFACE_PARAMS)
    _sidecar(tmp_path, "typo", "image_embedding", {"input_size": 224, "interpolaton": "bicubic"})
    _sidecar(tmp_path, "unchecked", "some_future_task", {"anything": 1})
    repo = ModelRepository(tmp_path)
    assert set(repo.errors) == {"old_scrfd", "typo"}
    assert "'old_scrfd'" in repo.errors["old_scrfd"]
    assert "anchors_per_location, nms_iou" in repo.errors["old_scrfd"]
    assert "interpolaton" in repo.errors["typo"]
    assert {m.name for m in repo.models()} == {"scrfd", "arcface", "unchecked"}


def test_the_committed_sidecars_pass() -> None:
    repo = ModelRepository(ROOT / "triton_models")
    assert repo.models() and repo.errors == {}
