"""Builds a model's config.pbtxt from Triton's own `model_config` protobuf, so what is written is
exactly what Triton parses (and `services.common.model_repository.parse_config` re-checks it)."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from services.common.model_repository import parse_config
from services.models.onnx_io import TensorSpec

# Production Triton runs on the GPU; a CPU deployment overrides the instance kind.
DEFAULT_INSTANCE_KIND = "KIND_GPU"
DEFAULT_QUEUE_DELAY_US = 2000


def build_config(
    name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    max_batch_size: int,
    dynamic_batching: bool,
    instance_kind: str = DEFAULT_INSTANCE_KIND,
    instance_count: int = 1,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
) -> model_config_pb2.ModelConfig:
    """An ONNX Runtime model config; `dims` exclude the batch dimension when max_batch_size > 0."""
    if dynamic_batching and max_batch_size <= 0:
        raise ValueError(f"{name}: dynamic batching needs max_batch_size > 0")
    config = model_config_pb2.ModelConfig(
        name=name, platform="onnxruntime_onnx", max_batch_size=max_batch_size
    )
    for target, specs in ((config.input, inputs), (config.output, outputs)):
        for spec in specs:
            tensor = target.add()
            tensor.name = spec.name
            tensor.data_type = model_config_pb2.DataType.Value(spec.dtype)
            tensor.dims.extend(spec.dims)
    if dynamic_batching:
        config.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    group = config.instance_group.add()
    group.count = instance_count
    group.kind = model_config_pb2.ModelInstanceGroup.Kind.Value(instance_kind)
    return config


def config_text(config: model_config_pb2.ModelConfig) -> str:
    """The config.pbtxt text; parsed back once so a config Triton would refuse is never written."""
    text = text_format.MessageToString(config)
    parse_config(text, f"<generated config of {config.name}>")
    return text


def batching_works(inputs: Sequence[TensorSpec]) -> bool:
    """Triton batches only requests of equal shapes: dynamic batching pays off for fixed-size inputs."""
    return all(-1 not in spec.dims for spec in inputs)
