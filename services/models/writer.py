"""Writes one model directory into the repository all at once: everything is staged in a hidden
directory beside it and renamed into place, so a failed install never leaves a half-written model
(and a reinstall replaces the old one only when the new one is complete)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx
from tritonclient.grpc import model_config_pb2

from services.common.model_repository import CONFIG_FILE, SIDECAR_FILE, ModelMeta, load_model
from services.models.triton_config import config_text

VERSION = "1"


@contextmanager
def staged_model_dir(repository: Path, name: str):
    """Yields an empty staging directory; on success it becomes `repository/name`."""
    repository = Path(repository)
    repository.mkdir(parents=True, exist_ok=True)
    # The staging directory carries the model's own name (Triton checks config name == directory).
    parent = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=repository))
    staging = parent / name
    staging.mkdir()
    try:
        yield staging
        load_model(staging)  # read back with the repository's own loader: nothing unreadable goes live
        target = repository / name
        if target.exists():
            target.rename(parent / f"{name}.old")
        staging.rename(target)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def write_sidecar(model_dir: Path, meta: ModelMeta, extra: Mapping[str, Any] | None = None) -> None:
    data = meta.to_json()
    data.update(extra or {})
    (model_dir / SIDECAR_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_config(model_dir: Path, config: model_config_pb2.ModelConfig) -> None:
    (model_dir / CONFIG_FILE).write_text(config_text(config), encoding="utf-8")


def write_weights(model_dir: Path, model: onnx.ModelProto | Path, filename: str = "model.onnx") -> Path:
    """Puts the ONNX weights in `<model_dir>/1/`; a Path is copied byte for byte."""
    version_dir = model_dir / VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / filename
    if isinstance(model, onnx.ModelProto):
        onnx.save(model, str(target))
    else:
        shutil.copyfile(model, target)
    return target


def copy_files(model_dir: Path, files: Mapping[str, Path]) -> None:
    """Copies auxiliary files (tokenizer vocabularies, ...) beside config.pbtxt."""
    for name, source in files.items():
        target = model_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
