"""What the GPU suite needs besides the servers: valid inputs for any repository model (from its
Triton config and sidecar), tolerances from the model's precision, comparisons, a report."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from tritonclient.grpc import model_config_pb2

from services.common.model_repository import ModelSpec

TRITON_TO_NUMPY = {
    "TYPE_FP32": np.float32,
    "TYPE_FP16": np.float16,
    "TYPE_FP64": np.float64,
    "TYPE_INT64": np.int64,
    "TYPE_INT32": np.int32,
    "TYPE_INT16": np.int16,
    "TYPE_INT8": np.int8,
    "TYPE_UINT8": np.uint8,
    "TYPE_BOOL": np.bool_,
}

# Relative tolerance (and absolute, scaled by the output's magnitude) by the model's precision.
# fp32 leaves room for TF32 matmuls/convolutions, which ONNX Runtime's CUDA provider may use.
TOLERANCE = {"fp32": 5e-3, "fp16": 3e-2, "bf16": 5e-2, "int8": 1e-1, "uint8": 1e-1}

# Throughput lines printed at the end of the run (conftest's pytest_terminal_summary).
REPORT: list[str] = []
TARGETS: set[str] = set()


def tolerance(spec: ModelSpec) -> float:
    override = os.environ.get("MAAM_GPU_SUITE_TOLERANCE")
    if override:
        return float(override)
    return TOLERANCE.get(spec.meta.precision.lower(), TOLERANCE["fp32"])


def _dim(name: str, dtype: np.dtype, params: Mapping[str, Any]) -> int:
    """A size for a variable (-1) dimension: sequence length for token inputs, else image side."""
    if np.issubdtype(dtype, np.integer):
        return int(params.get("seq_len", 16))
    size = params.get("input_size", 64)
    return int(size[0] if isinstance(size, list | tuple) else size)


def example_inputs(spec: ModelSpec, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random, valid inputs for any model: shapes and types from config.pbtxt, value ranges that
    make sense for the tensor (images in [0, 1], token ids within the vocabulary, masks of ones)."""
    rng = np.random.default_rng(seed)
    params = spec.meta.params
    inputs: dict[str, np.ndarray] = {}
    for tensor in spec.config.input:
        dtype_name = model_config_pb2.DataType.Name(tensor.data_type)
        if dtype_name not in TRITON_TO_NUMPY:
            raise ValueError(f"{spec.name}: input {tensor.name} has type {dtype_name}, which the suite cannot fill")
        dtype = np.dtype(TRITON_TO_NUMPY[dtype_name])
        shape = [d if d > 0 else _dim(tensor.name, dtype, params) for d in tensor.dims]
        if spec.max_batch_size > 0:
            shape = [min(batch, spec.max_batch_size), *shape]
        if dtype == np.bool_:
            value = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            if "mask" in tensor.name or "type_ids" in tensor.name:
                value = np.ones(shape, dtype) if "mask" in tensor.name else np.zeros(shape, dtype)
            else:
                # Token ids: the vocabulary's size when the sidecar says it (params or, for
                # captioners, the label list is the vocabulary), else ids every tokenizer has.
                high = int(params.get("vocab_size") or len(spec.meta.labels) or 1000)
                value = rng.integers(0, min(high, np.iinfo(dtype).max), shape, dtype=dtype)
        else:
            value = rng.random(shape, dtype=np.float32).astype(dtype)
        inputs[tensor.name] = value
    return inputs


def compare(model: str, got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray], tol: float) -> list[str]:
    """Differences between two output sets, as readable lines (empty: they agree)."""
    problems = []
    if set(got) != set(want):
        return [f"{model}: outputs {sorted(got)} != {sorted(want)}"]
    for name, ref in want.items():
        out = np.asarray(got[name])
        if out.shape != ref.shape:
            problems.append(f"{model}.{name}: shape {out.shape} != {ref.shape}")
            continue
        if np.issubdtype(ref.dtype, np.floating):
            scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
            close = np.isclose(out.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol * scale)
            if not close.all():
                worst = float(np.max(np.abs(out.astype(np.float64) - ref)))
                problems.append(
                    f"{model}.{name}: {int((~close).sum())}/{close.size} values differ beyond {tol:g} "
                    f"(max abs diff {worst:.3g}, output scale {scale:.3g})"
                )
        elif not np.array_equal(out, ref):
            problems.append(f"{model}.{name}: {int((out != ref).sum())} of {ref.size} values differ")
    return problems
