"""What every exporter shares: torch -> ONNX (TorchScript exporter), verification against the
framework's output, and writing the result with a generated Triton config and sidecar."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError, require_export_extra
from services.models.onnx_io import TensorSpec, graph_io
from services.models.triton_config import batching_works, build_config
from services.models.writer import copy_files, staged_model_dir, write_config, write_sidecar, write_weights

log = logging.getLogger(__name__)

OPSET = 17
# ONNX Runtime vs PyTorch in FP32: differences above this mean a broken export, not rounding.
DEFAULT_ATOL = 1e-3


@dataclass(frozen=True)
class Exported:
    """An exported graph and how far ONNX Runtime's output is from the framework's on the same input."""

    model: onnx.ModelProto
    max_abs_diff: float


def export_module(
    module,
    example: Mapping[str, np.ndarray],
    output_names: Sequence[str],
    *,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """torch.nn.Module -> ONNX. Inputs are passed positionally in `example`'s order."""
    require_export_extra("exporting to ONNX")
    import torch

    module = module.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in example.values())
    if dynamic_axes is None:
        dynamic_axes = {name: {0: "batch"} for name in [*example, *output_names]}
    buffer = io.BytesIO()
    with torch.no_grad():
        # The TorchScript exporter: no onnxscript needed, and the graphs it writes load in the
        # ONNX Runtime that Triton images bundle.
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=list(example),
            output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    return model


def torch_outputs(module, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        result = module.eval()(*(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()))
    if isinstance(result, torch.Tensor):
        result = (result,)
    return [r.detach().cpu().numpy() for r in result]


def onnx_outputs(model: onnx.ModelProto | Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, dict(inputs))


def max_abs_diff(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], what: str) -> float:
    if len(reference) != len(candidate):
        raise ModelsError(f"{what}: {len(candidate)} outputs, the framework gives {len(reference)}")
    worst = 0.0
    for i, (ref, got) in enumerate(zip(reference, candidate, strict=True)):
        if ref.shape != got.shape:
            raise ModelsError(f"{what}: output {i} has shape {got.shape}, the framework's has {ref.shape}")
        if ref.size:
            worst = max(worst, float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)))))
    return worst


def verify(
    what: str,
    reference: Sequence[np.ndarray],
    model: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    atol: float = DEFAULT_ATOL,
) -> float:
    """ONNX Runtime vs the framework on the same inputs; prints and returns the max abs diff."""
    diff = max_abs_diff(reference, onnx_outputs(model, inputs), what)
    print(f"{what}: ONNX Runtime vs framework max abs diff {diff:.3g} (tolerance {atol:g})")
    if not np.isfinite(diff) or diff > atol:
        raise ModelsError(f"{what}: ONNX Runtime output differs from the framework's by {diff:.3g} > {atol:g}")
    return diff


def export_and_verify(
    what: str,
    module,
    example: Mapping[str, np.ndarray],
    output_names: Sequence[str],
    *,
    check: Mapping[str, np.ndarray] | None = None,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    atol: float = DEFAULT_ATOL,
) -> Exported:
    """Exports with `example`, then compares torch and ONNX Runtime on `check` (default: example)."""
    model = export_module(module, example, output_names, dynamic_axes=dynamic_axes)
    inputs = check if check is not None else example
    diff = verify(what, torch_outputs(module, inputs), model, inputs, atol)
    return Exported(model, diff)


def write_exported(
    repository: Path,
    name: str,
    model: onnx.ModelProto,
    meta: ModelMeta,
    *,
    max_batch_size: int = 8,
    files: Mapping[str, Path] | None = None,
    dynamic_batching: bool | None = None,
    output_dims: Mapping[str, tuple[int, ...]] | None = None,
) -> Path:
    """Writes weights, a config generated from the graph's own I/O, the sidecar and extra files.
    `output_dims` pins output dims (batch excluded) that the exporter left symbolic."""
    io_ = graph_io(model)
    batched = max_batch_size > 0
    if batched and not io_.batchable:
        raise ModelsError(f"{name}: the graph has a fixed batch dimension; export it with a dynamic one")
    inputs, outputs = io_.triton_tensors(batched)
    for i, spec in enumerate(outputs):
        pinned = (output_dims or {}).get(spec.name)
        if pinned is not None:
            if len(pinned) != len(spec.dims):
                raise ModelsError(f"{name}: output {spec.name} has {len(spec.dims)} dims, not {len(pinned)}")
            outputs[i] = TensorSpec(spec.name, spec.dtype, tuple(pinned))
    if dynamic_batching is None:
        dynamic_batching = batched and batching_works(inputs)
    config = build_config(
        name, inputs, outputs, max_batch_size=max_batch_size if batched else 0, dynamic_batching=dynamic_batching
    )
    with staged_model_dir(repository, name) as model_dir:
        write_weights(model_dir, model)
        write_config(model_dir, config)
        write_sidecar(model_dir, meta)
        copy_files(model_dir, dict(files or {}))
    return Path(repository) / name
