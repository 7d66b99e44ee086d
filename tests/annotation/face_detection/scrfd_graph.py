"""Tiny ONNX graphs with SCRFD's input and output layout, built with onnx.helper, for tests only.

They are NOT face detectors. `controlled` has hand-set weights so that a fully white 8x8 cell of
the input fires anchor 0 of stride 8 with a known box and landmarks (to check the decoding
exactly); `random` has seeded random weights (to run the whole path on arbitrary outputs).
Output names are numbers and their order is shuffled, as in real exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
STRIDES = (8, 16, 32)
ANCHORS = 2
# Landmark offsets (in strides) of anchor 0 in the controlled graph.
KPS_OFFSETS = np.array([0, 0, 1, 0, 0.5, 0.5, 0, 1, 1, 1], np.float32)


def _head(nodes: list, init: list, name: str, stride: int, channels: int, weight: np.ndarray, bias: np.ndarray,
          sigmoid: bool) -> None:
    init += [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]
    conv_out = f"{name}_conv"
    nodes.append(helper.make_node("Conv", ["input.1", f"{name}_w", f"{name}_b"], [conv_out],
                                  kernel_shape=[stride, stride], strides=[stride, stride]))
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [conv_out], [f"{name}_sig"]))
        conv_out = f"{name}_sig"
    nodes.append(helper.make_node("Transpose", [conv_out], [f"{name}_t"], perm=[0, 2, 3, 1]))
    init.append(numpy_helper.from_array(np.array([-1, channels // ANCHORS], np.int64), f"{name}_shape"))
    nodes.append(helper.make_node("Reshape", [f"{name}_t", f"{name}_shape"], [name]))


def build(kind: str, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list = []
    init: list = []
    outputs = []
    for stride in STRIDES:
        cells = (SIZE // stride) ** 2 * ANCHORS
        for what, per_anchor in (("score", 1), ("bbox", 4), ("kps", 10)):
            channels = per_anchor * ANCHORS
            shape = (channels, 3, stride, stride)
            if kind == "controlled":
                weight = np.zeros(shape, np.float32)
                bias = np.zeros(channels, np.float32)
                if what == "score":
                    if stride == 8:
                        weight[0] = 20.0 / (3 * stride * stride)  # mean of the cell, scaled
                    bias[:] = -10.0
                elif what == "bbox":
                    bias[:] = 1.0  # one stride from the anchor on every side
                else:
                    bias[:10] = KPS_OFFSETS
            else:
                weight = (rng.standard_normal(shape) * 0.5 / stride).astype(np.float32)
                bias = (rng.standard_normal(channels) * 0.5).astype(np.float32)
                if what == "bbox":  # mostly positive distances, so some boxes survive decoding
                    bias = np.abs(bias) + 1.0
            name = str(400 + len(outputs))
            _head(nodes, init, name, stride, channels, weight, bias, sigmoid=what == "score")
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [cells, per_anchor]))
    order = rng.permutation(len(outputs))
    graph = helper.make_graph(
        nodes,
        f"scrfd_layout_{kind}",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [outputs[i] for i in order],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_model(root: Path, name: str, kind: str, task: str = "face_detection", params: dict | None = None) -> Path:
    """A repository entry (config.pbtxt, maam.json, 1/model.onnx) for the graph; returns root."""
    model = build(kind)
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, model_dir / "1" / "model.onnx")
    outs = "\n".join(
        f'  {{ name: "{o.name}" data_type: TYPE_FP32 dims: '
        f'[ {", ".join(str(d.dim_value) for d in o.type.tensor_type.shape.dim)} ] }},'
        for o in model.graph.output
    ).rstrip(",")
    (model_dir / "config.pbtxt").write_text(
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
        f'input [\n  {{ name: "input.1" data_type: TYPE_FP32 dims: [ 1, 3, {SIZE}, {SIZE} ] }}\n]\n'
        f"output [\n{outs}\n]\n"
    )
    sidecar = {"task": task, "source": "test", "description": f"SCRFD-layout test graph ({kind}), not a detector",
               "params": {"input_size": SIZE, **(params or {})}}
    (model_dir / "maam.json").write_text(json.dumps(sidecar))
    return root
