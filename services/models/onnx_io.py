"""Reads a graph's inputs and outputs as Triton tensor descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

# ONNX element type -> Triton data type name.
ONNX_TO_TRITON = {
    TensorProto.FLOAT: "TYPE_FP32",
    TensorProto.FLOAT16: "TYPE_FP16",
    TensorProto.DOUBLE: "TYPE_FP64",
    TensorProto.INT64: "TYPE_INT64",
    TensorProto.INT32: "TYPE_INT32",
    TensorProto.INT16: "TYPE_INT16",
    TensorProto.INT8: "TYPE_INT8",
    TensorProto.UINT8: "TYPE_UINT8",
    TensorProto.BOOL: "TYPE_BOOL",
    TensorProto.STRING: "TYPE_STRING",
}


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as Triton's config describes it; dims exclude the batch dimension when batched."""

    name: str
    dtype: str  # Triton TYPE_* name
    dims: tuple[int, ...]  # -1 for a variable dimension


@dataclass(frozen=True)
class GraphIO:
    """A graph's full shapes (batch dimension included), -1 where a dimension is symbolic."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def batchable(self) -> bool:
        """True when every input and output has a leading variable dimension (Triton's batch)."""
        return all(t.dims and t.dims[0] == -1 for t in (*self.inputs, *self.outputs))

    def triton_tensors(self, batched: bool) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The tensors as config.pbtxt lists them: without the batch dimension when batched."""

        def strip(t: TensorSpec) -> TensorSpec:
            return TensorSpec(t.name, t.dtype, t.dims[1:]) if batched else t

        return [strip(t) for t in self.inputs], [strip(t) for t in self.outputs]


def _spec(value: onnx.ValueInfoProto, origin: str) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dtype = ONNX_TO_TRITON.get(tensor_type.elem_type)
    if dtype is None:
        raise ValueError(f"{origin}: tensor {value.name!r} has an element type Triton cannot serve")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor_type.shape.dim)
    return TensorSpec(value.name, dtype, dims)


def graph_io(model: onnx.ModelProto | Path | str) -> GraphIO:
    """Inputs (initializers excluded) and outputs of an ONNX model, with full shapes."""
    origin = str(model) if not isinstance(model, onnx.ModelProto) else "<model>"
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    inputs = tuple(_spec(v, origin) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_spec(v, origin) for v in model.graph.output)
    return GraphIO(inputs, outputs)
