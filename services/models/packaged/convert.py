"""tf2onnx in the conversion venv, then the graph's interface made plain: inputs and outputs renamed
to what the adapters and config.pbtxt call them, and a free batch dimension where the graph allows."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from services.models.errors import ModelsError

OPSET = 17


def tf2onnx(python: Path, source: Path, output: Path, *, kind: str, outputs: Sequence[str] = ()) -> None:
    """`python -m tf2onnx.convert --tfjs|--tflite SOURCE` into `output`."""
    if kind not in ("tfjs", "tflite"):
        raise ModelsError(f"unknown source format {kind!r}")
    command = [str(python), "-m", "tf2onnx.convert", f"--{kind}", str(source), "--output", str(output),
               "--opset", str(OPSET)]
    if outputs:
        command += ["--outputs", ",".join(outputs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0 or not output.is_file():
        lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
        raise ModelsError(f"tf2onnx could not convert {source.name}: {lines[-1] if lines else done.returncode}")


def rename_io(model: onnx.ModelProto, names: Mapping[str, str]) -> onnx.ModelProto:
    """Renames graph inputs/outputs (and every use of them); a name not in the graph is an error."""
    graph = model.graph
    known = {v.name for v in graph.input} | {v.name for v in graph.output}
    missing = sorted(set(names) - known)
    if missing:
        raise ModelsError(f"the converted graph has no tensor {missing}; it has {sorted(known)}")
    for value in [*graph.input, *graph.output]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    return model


def free_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """The first dimension of every input and output named `batch` (a graph with a fixed batch of 1)."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"
    return model


def batches(path: Path, feeds: Mapping[str, np.ndarray], batch: int) -> bool:
    """Whether the graph runs a batch of `batch` copies and gives each copy the single-item result."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        one = session.run(None, dict(feeds))
        many = session.run(None, {k: np.repeat(v, batch, axis=0) for k, v in feeds.items()})
    except Exception:  # a graph with a batch of 1 baked into a Reshape fails here
        return False
    return all(
        m.shape[0] == batch and np.allclose(m[-1:], o, atol=1e-4, rtol=1e-3) for m, o in zip(many, one, strict=True)
    )
