"""Every committed Triton config is one the real (GPU) Triton loads as MAAM expects it to."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from deploy.triton_cpu_repository import cpu_config
from services.common.model_repository import ModelRepository
from tests.deploy.compose import REPO_ROOT

REPOSITORY = REPO_ROOT / "triton_models"
CONFIGS = sorted(REPOSITORY.glob("*/config.pbtxt"))
KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(encoding="utf-8"), config)  # raises on anything Triton would refuse
    return config


def test_configs_are_committed() -> None:
    assert CONFIGS, "triton_models/ must hold the shipped models' configs"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_config_is_valid_for_a_gpu_triton(path: Path) -> None:
    config = _parse(path)
    name = path.parent.name
    assert config.name in ("", name), f"{name}: config names {config.name!r}"
    assert config.platform == "onnxruntime_onnx" or config.backend == "onnxruntime", f"{name}: not ONNX Runtime"
    assert config.input and config.output, f"{name}: inputs and outputs must be declared"
    fixed_shapes = all(-1 not in tensor.dims for tensor in config.input)
    if config.max_batch_size > 0 and fixed_shapes:
        # Triton's dynamic batcher only stacks requests of equal shapes, so the repository's
        # convention (services/models) leaves it off for variable-size inputs (texts, OCR crops).
        assert config.HasField("dynamic_batching"), f"{name}: batchable fixed-shape model without dynamic_batching"
    if config.HasField("dynamic_batching"):
        assert config.max_batch_size > 0, f"{name}: dynamic_batching needs max_batch_size > 0"
    assert config.instance_group, f"{name}: no instance_group"
    for group in config.instance_group:
        assert group.kind == KIND_GPU, f"{name}: instance_group kind {group.kind} is not KIND_GPU"
    # The compose cpu profile's rewrite applies to it and changes nothing but the instance kinds.
    cpu = cpu_config(config)
    assert all(g.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU for g in cpu.instance_group)
    cpu.ClearField("instance_group")
    original = model_config_pb2.ModelConfig()
    original.CopyFrom(config)
    original.ClearField("instance_group")
    assert cpu == original


def test_repository_reads_without_errors() -> None:
    repo = ModelRepository(REPOSITORY)
    assert repo.errors == {}
    # Every config is a Triton model; models without one run in the services (e.g. OpenCV Haar).
    assert {m.name for m in repo.models() if m.triton} == {p.parent.name for p in CONFIGS}
