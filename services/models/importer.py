"""`maam models import NAME --onnx PATH --task TASK [--labels FILE]`: bring your own ONNX model.
Its inputs and outputs are read from the graph and checked against the task's adapter, ONNX Runtime
must load it, and only then is it written with a generated Triton config."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError
from services.models.onnx_io import graph_io
from services.models.tasks import check_task_io
from services.models.triton_config import batching_works, build_config
from services.models.writer import staged_model_dir, write_config, write_sidecar, write_weights

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_BATCH = 8


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ModelsError(
            f"model name {name!r} is not allowed: use letters, digits, '_', '-', '.' (up to 128, not starting "
            "with '.' or '-'); Triton uses it as a directory name"
        )


def read_labels(path: Path) -> list[str]:
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelsError(f"cannot read labels from {path}: {exc}") from exc
    labels = [label for label in labels if label]
    if not labels:
        raise ModelsError(f"{path}: no labels (one per line expected)")
    return labels


def import_onnx(
    repository: Path,
    name: str,
    onnx_path: Path,
    task: str,
    *,
    labels: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
    source: str = "imported",
    description: str = "",
    license: str = "",
    replace: bool = False,
    files: Mapping[str, Path] | None = None,
) -> Path:
    """Checks and installs `onnx_path` as model `name`; returns its directory."""
    check_name(name)
    repository = Path(repository)
    if (repository / name).exists() and not replace:
        raise ModelsError(f"model {name!r} already exists in {repository}; pass --replace to overwrite it")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelsError(f"{onnx_path}: no such file")
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
        onnx.checker.check_model(model)
        if any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer):
            raise ModelsError(f"{onnx_path}: weights in external data files are not supported; save it as one file")
        io = graph_io(model)
    except ModelsError:
        raise
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ValueError...
        raise ModelsError(f"{onnx_path}: not a valid ONNX model: {type(exc).__name__}: {exc}") from exc
    problems = check_task_io(task, io, len(labels or ()))
    if problems:
        raise ModelsError(f"{onnx_path} does not fit task {task!r}:\n  " + "\n  ".join(problems))
    try:
        ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelsError(f"{onnx_path}: ONNX Runtime cannot load it: {exc}") from exc

    batched = io.batchable
    inputs, outputs = io.triton_tensors(batched)
    config = build_config(
        name, inputs, outputs,
        max_batch_size=MAX_BATCH if batched else 0,
        dynamic_batching=batched and batching_works(inputs),
    )
    meta = ModelMeta(
        task=task,
        source=source,
        labels=tuple(labels or ()),
        description=description or f"imported from {onnx_path.name}",
        license=license,
        params=dict(params or {}),
    )
    with staged_model_dir(repository, name) as model_dir:
        write_weights(model_dir, onnx_path)
        write_config(model_dir, config)
        write_sidecar(model_dir, meta)
        for target, src in (files or {}).items():
            shutil.copyfile(src, model_dir / target)
    return repository / name
