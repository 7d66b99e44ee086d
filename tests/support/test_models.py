"""A tiny model repository shaped like the real tasks, for tests only.

Every graph is built with `onnx.helper` from fixed random weights (seeded), so outputs are
deterministic and differ between inputs. The models are named `test_*`, carry `source: test` in
their sidecar and are written only to directories the tests own, never to triton_models/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IMAGE_SIZE = 32
NUM_BOXES = 16
NUM_CLASSES = 80
EMBED_DIM = 16
VOCAB = 100
SEQ_LEN = 8


@dataclass(frozen=True)
class TensorDesc:
    name: str
    dtype: str  # Triton TYPE_* name
    dims: tuple[int, ...]  # without the batch dimension when batched


_ONNX_TYPES = {"TYPE_FP32": TensorProto.FLOAT, "TYPE_INT64": TensorProto.INT64}


def _weights(rng: np.random.Generator, *shape: int, scale: float = 0.05) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _value_info(desc: TensorDesc, batched: bool) -> onnx.ValueInfoProto:
    shape = (["batch"] if batched else []) + list(desc.dims)
    return helper.make_tensor_value_info(desc.name, _ONNX_TYPES[desc.dtype], shape)


def _config_text(name: str, max_batch: int, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> str:
    def tensors(kind: str, descs: list[TensorDesc]) -> str:
        items = ",\n".join(
            f'  {{ name: "{d.name}" data_type: {d.dtype} dims: [ {", ".join(map(str, d.dims))} ] }}'
            for d in descs
        )
        return f"{kind} [\n{items}\n]\n"

    text = f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch}\n'
    text += tensors("input", inputs) + tensors("output", outputs)
    if max_batch > 0:
        text += "dynamic_batching { max_queue_delay_microseconds: 2000 }\n"
    text += "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
    return text


def _write(
    root: Path,
    name: str,
    task: str,
    graph: onnx.GraphProto,
    inputs: list[TensorDesc],
    outputs: list[TensorDesc],
    max_batch: int,
    labels: list[str] | None = None,
    params: dict | None = None,
) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by older ONNX Runtimes (e.g. the one inside Triton images)
    onnx.checker.check_model(model)
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text(_config_text(name, max_batch, inputs, outputs))
    sidecar = {"task": task, "source": "test", "description": f"test model shaped like {task}"}
    if labels:
        sidecar["labels"] = labels
    if params:
        sidecar["params"] = params
    (model_dir / "maam.json").write_text(json.dumps(sidecar, indent=2))


def _image_input() -> TensorDesc:
    return TensorDesc("images", "TYPE_FP32", (3, IMAGE_SIZE, IMAGE_SIZE))


def _yolo(root: Path, rng: np.random.Generator, name: str, task: str, labels: list[str], params: dict) -> None:
    """YOLOv8-style head: [batch, 4 + classes, boxes], boxes as cx, cy, w, h in input pixels."""
    rows = 4 + len(labels)
    inp, out = _image_input(), TensorDesc("output0", "TYPE_FP32", (rows, NUM_BOXES))
    flat = 3 * IMAGE_SIZE * IMAGE_SIZE
    scale = np.ones((rows, 1), np.float32)
    scale[:4] = IMAGE_SIZE
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Reshape", ["logits", "shape"], ["grid"]),
        helper.make_node("Sigmoid", ["grid"], ["unit"]),
        helper.make_node("Mul", ["unit", "scale"], ["output0"]),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, flat, rows * NUM_BOXES, scale=0.5), "w"),
        numpy_helper.from_array(_weights(rng, rows * NUM_BOXES, scale=1.0), "b"),
        numpy_helper.from_array(np.array([-1, rows, NUM_BOXES], np.int64), "shape"),
        numpy_helper.from_array(scale, "scale"),
    ]
    graph = helper.make_graph(nodes, name, [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, name, task, graph, [inp], [out], 8, labels, {"input_size": IMAGE_SIZE, **params})


def _detector(root: Path, rng: np.random.Generator) -> None:
    labels = [f"class_{i}" for i in range(NUM_CLASSES)]
    _yolo(root, rng, "test_detector", "object_detection", labels, {"format": "yolov8"})


def _classifier(
    root: Path, rng: np.random.Generator, name: str, task: str, labels: list[str], params: dict | None = None
) -> None:
    inp, out = _image_input(), TensorDesc("probs", "TYPE_FP32", (len(labels),))
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, 3, len(labels), scale=5.0), "w"),
        numpy_helper.from_array(_weights(rng, len(labels), scale=0.5), "b"),
    ]
    graph = helper.make_graph(nodes, name, [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, name, task, graph, [inp], [out], 8, labels, {"input_size": IMAGE_SIZE, **(params or {})})


def _image_embedder(root: Path, rng: np.random.Generator) -> None:
    _embedder(root, rng, "test_image_embedder", "image_embedding",
              {"space": "test-clip", "text_model": "test_text_embedder"})


def _text_embedder(root: Path, rng: np.random.Generator) -> None:
    inp = TensorDesc("input_ids", "TYPE_INT64", (SEQ_LEN,))
    out = TensorDesc("embedding", "TYPE_FP32", (EMBED_DIM,))
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tokens"]),
        helper.make_node("ReduceMean", ["tokens"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("LpNormalization", ["mean"], ["embedding"], axis=1, p=2),
    ]
    init = [numpy_helper.from_array(_weights(rng, VOCAB, EMBED_DIM, scale=1.0), "table")]
    graph = helper.make_graph(nodes, "test_text_embedder", [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, "test_text_embedder", "text_embedding", graph, [inp], [out], 8, None,
           {"seq_len": SEQ_LEN, "vocab_size": VOCAB, "space": "test-clip"})


def _unbatched(root: Path) -> None:
    """max_batch_size 0: Triton passes full shapes, no batching."""
    inp, out = TensorDesc("x", "TYPE_FP32", (4,)), TensorDesc("y", "TYPE_FP32", (4,))
    nodes = [helper.make_node("Mul", ["x", "two"], ["y"])]
    init = [numpy_helper.from_array(np.full(4, 2.0, np.float32), "two")]
    graph = helper.make_graph(nodes, "test_unbatched", [_value_info(inp, False)], [_value_info(out, False)], init)
    _write(root, "test_unbatched", "test_identity", graph, [inp], [out], 0)


TEST_MODELS = ("test_detector", "test_classifier", "test_image_embedder", "test_text_embedder", "test_unbatched")


def write_test_repository(root: Path, seed: int = 0) -> Path:
    """Writes every test model under root; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    _detector(root, rng)
    _classifier(root, rng, "test_classifier", "classification", [f"label_{i}" for i in range(5)])
    _image_embedder(root, rng)
    _text_embedder(root, rng)
    _unbatched(root)
    write_annotation_test_models(root, seed + 1)
    return root


def example_inputs(model: str, batch: int = 2, seed: int = 1) -> dict[str, np.ndarray]:
    """Valid random inputs for a test model."""
    rng = np.random.default_rng(seed)
    if model == "test_text_embedder":
        return {"input_ids": rng.integers(0, VOCAB, (batch, SEQ_LEN), dtype=np.int64)}
    if model == "test_unbatched":
        return {"x": rng.standard_normal(4).astype(np.float32)}
    return {"images": rng.random((batch, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)}


# ---- Annotation-task test models (appended; the models above are unchanged) -----------------
CLIP_LEN = 4
CAPTION_VOCAB = ["<pad>", "<bos>", "<eos>"] + [f"word{i}" for i in range(VOCAB - 3)]


def _embedder(root: Path, rng: np.random.Generator, name: str, task: str, params: dict | None = None,
              dim: int = EMBED_DIM) -> None:
    """A linear image encoder with L2-normalised output (CLIP-like, face or region embedder)."""
    inp, out = _image_input(), TensorDesc("embedding", "TYPE_FP32", (dim,))
    flat = 3 * IMAGE_SIZE * IMAGE_SIZE
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["raw"]),
        helper.make_node("LpNormalization", ["raw"], ["embedding"], axis=1, p=2),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, flat, dim), "w"),
        numpy_helper.from_array(_weights(rng, dim), "b"),
    ]
    graph = helper.make_graph(nodes, name, [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, name, task, graph, [inp], [out], 8, None, {"input_size": IMAGE_SIZE, **(params or {})})


VISUAL_DIM = 24


def write_visual_embedder(root: Path, seed: int = 7) -> Path:
    """A second image embedding of another size (24-d), shaped like the offline visual embedding: its own
    space, no text encoder (not cross-modal). Not part of `write_test_repository`: tests that need two
    embedding spaces of different dimensions add it (or add it later, as a model installed after the fact)."""
    root.mkdir(parents=True, exist_ok=True)
    _embedder(root, np.random.default_rng(seed), "test_visual_embedder", "image_embedding",
              {"space": "test-visual", "dim": VISUAL_DIM, "normalized": True}, dim=VISUAL_DIM)
    return root


def _face_detector(root: Path, rng: np.random.Generator) -> None:
    """YOLOv8-face-style head with one class: [batch, 5, boxes]."""
    _yolo(root, rng, "test_face_detector", "face_detection", ["face"], {"conf_threshold": 0.3, "format": "yolov8"})


def _clip_classifier(root: Path, rng: np.random.Generator) -> None:
    """A clip [3, T, S, S] -> action probabilities."""
    labels = [f"clip_action_{i}" for i in range(6)]
    inp = TensorDesc("clip", "TYPE_FP32", (3, CLIP_LEN, IMAGE_SIZE, IMAGE_SIZE))
    out = TensorDesc("probs", "TYPE_FP32", (len(labels),))
    nodes = [
        helper.make_node("ReduceMean", ["clip"], ["pooled"], axes=[3, 4], keepdims=0),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, 3 * CLIP_LEN, len(labels), scale=5.0), "w"),
        numpy_helper.from_array(_weights(rng, len(labels), scale=0.5), "b"),
    ]
    graph = helper.make_graph(nodes, "test_video_action", [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, "test_video_action", "video_action_recognition", graph, [inp], [out], 8, labels,
           {"input_size": IMAGE_SIZE, "clip_len": CLIP_LEN})


def _captioner(root: Path, rng: np.random.Generator) -> None:
    """Image + tokens so far -> next-token logits at every position [SEQ_LEN, VOCAB]."""
    images, ids = _image_input(), TensorDesc("input_ids", "TYPE_INT64", (SEQ_LEN,))
    out = TensorDesc("logits", "TYPE_FP32", (SEQ_LEN, VOCAB))
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["image_bias"]),
        helper.make_node("Unsqueeze", ["image_bias", "one"], ["bias3"]),
        helper.make_node("Gather", ["table", "input_ids"], ["token_logits"]),
        helper.make_node("Add", ["token_logits", "bias3"], ["logits"]),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, 3, VOCAB, scale=10.0), "w"),
        numpy_helper.from_array(_weights(rng, VOCAB, scale=1.0), "b"),
        numpy_helper.from_array(_weights(rng, VOCAB, VOCAB, scale=3.0), "table"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
    ]
    graph = helper.make_graph(
        nodes, "test_captioner", [_value_info(images, True), _value_info(ids, True)], [_value_info(out, True)], init
    )
    _write(root, "test_captioner", "image_captioning", graph, [images, ids], [out], 8, CAPTION_VOCAB,
           {"input_size": IMAGE_SIZE, "seq_len": SEQ_LEN, "bos_id": 1, "eos_id": 2, "pad_id": 0, "num_beams": 2})


def _saliency(root: Path, rng: np.random.Generator) -> None:
    inp, out = _image_input(), TensorDesc("saliency", "TYPE_FP32", (1, IMAGE_SIZE, IMAGE_SIZE))
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["raw"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["raw"], ["saliency"]),
    ]
    init = [
        numpy_helper.from_array(_weights(rng, 1, 3, 3, 3, scale=1.0), "w"),
        numpy_helper.from_array(_weights(rng, 1, scale=0.1), "b"),
    ]
    graph = helper.make_graph(nodes, "test_saliency", [_value_info(inp, True)], [_value_info(out, True)], init)
    _write(root, "test_saliency", "saliency", graph, [inp], [out], 8, None, {"input_size": IMAGE_SIZE})


ANNOTATION_TEST_MODELS = (
    "test_nsfw_classifier",
    "test_disturbing_classifier",
    "test_meme_classifier",
    "test_hateful_meme_classifier",
    "test_action_classifier",
    "test_video_action",
    "test_face_detector",
    "test_face_embedder",
    "test_region_embedder",
    "test_captioner",
    "test_saliency",
)
# The triton_url fixture waits for every model here, so the annotation models are served too.
TEST_MODELS = TEST_MODELS + ANNOTATION_TEST_MODELS


def write_annotation_test_models(root: Path, seed: int = 1) -> Path:
    """The annotation-task test models (a separate seed keeps the models above byte-identical)."""
    rng = np.random.default_rng(seed)
    _classifier(root, rng, "test_nsfw_classifier", "nsfw_classification", ["neutral", "nsfw"],
                        {"nsfw_labels": ["nsfw"], "threshold": 0.5})
    _classifier(root, rng, "test_disturbing_classifier", "disturbing_classification", ["safe", "disturbing"])
    _classifier(root, rng, "test_meme_classifier", "meme_classification", ["not_meme", "meme"])
    _classifier(root, rng, "test_hateful_meme_classifier", "hateful_meme_classification",
                        ["not_hateful", "hateful"])
    _classifier(root, rng, "test_action_classifier", "action_recognition", [f"action_{i}" for i in range(8)])
    _clip_classifier(root, rng)
    _face_detector(root, rng)
    _embedder(root, rng, "test_face_embedder", "face_embedding")
    _embedder(root, rng, "test_region_embedder", "region_embedding")
    _captioner(root, rng)
    _saliency(root, rng)
    return root

_base_example_inputs = example_inputs


def example_inputs(model: str, batch: int = 2, seed: int = 1) -> dict[str, np.ndarray]:
    """Valid random inputs for a test model (the annotation models with other inputs added)."""
    rng = np.random.default_rng(seed)
    if model == "test_captioner":
        return {
            "images": rng.random((batch, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32),
            "input_ids": rng.integers(0, VOCAB, (batch, SEQ_LEN), dtype=np.int64),
        }
    if model == "test_video_action":
        return {"clip": rng.random((batch, 3, CLIP_LEN, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)}
    return _base_example_inputs(model, batch, seed)


def write_nsfw_detector(root: Path, name: str = "test_nsfw_detector", seed: int = 2) -> Path:
    """A NudeNet-shaped detector (YOLOv8 head, task nsfw_detection), kept out of the test repository so
    the annotation tests' model sets stay as they are; tests that need it add it to a repository."""
    _yolo(root, np.random.default_rng(seed), name, "nsfw_detection", ["EXPOSED", "COVERED"],
          {"format": "yolov8", "nsfw_labels": ["EXPOSED"], "conf_threshold": 0.05})
    return root
