"""A zero-shot head as ONNX: embedding [N, D] -> L2-normalised -> cosine with each class's mean
prompt embedding [N, C] -> softmax(logit_scale * cosine) [N, C] (CLIP's calibration, its learned
temperature 100). Built with onnx.helper: no torch, a few kB per class."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.models.export.common import OPSET

# CLIP's learned logit scale (exp(4.6052) = 100) for OpenAI's and LAION's checkpoints.
DEFAULT_LOGIT_SCALE = 100.0


def class_vectors(prompt_embeddings: list[np.ndarray]) -> np.ndarray:
    """[D, C]: per class, the mean of its (L2-normalised) prompt embeddings, normalised again."""
    columns = []
    for rows in prompt_embeddings:
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        mean = rows.astype(np.float64).mean(axis=0)
        columns.append(mean / np.linalg.norm(mean))
    return np.stack(columns, axis=1).astype(np.float32)


def head_graph(
    weights: np.ndarray, logit_scale: float = DEFAULT_LOGIT_SCALE, name: str = "clip_zeroshot"
) -> onnx.ModelProto:
    dim, classes = weights.shape
    inits = [
        numpy_helper.from_array(weights.astype(np.float32), "class_vectors"),
        numpy_helper.from_array(np.asarray(logit_scale, np.float32), "logit_scale"),
        numpy_helper.from_array(np.asarray(1e-12, np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("ReduceL2", ["embedding"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["safe_norm"]),
        helper.make_node("Div", ["embedding", "safe_norm"], ["unit"]),
        helper.make_node("MatMul", ["unit", "class_vectors"], ["cosine"]),
        helper.make_node("Mul", ["cosine", "logit_scale"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("cosine", TensorProto.FLOAT, ["batch", classes]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="maam")
    model.ir_version = 8  # loads in the ONNX Runtime that Triton images bundle
    onnx.checker.check_model(model)
    return model
