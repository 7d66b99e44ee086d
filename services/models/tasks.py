"""What each task's adapter feeds a model and reads back, as ranks and types of the graph's tensors
(batch dimension included). `maam models import` checks a foreign graph against this before it is
accepted, so a model that installs is one its adapter can drive."""

from __future__ import annotations

from dataclasses import dataclass

from services.models.onnx_io import GraphIO, TensorSpec


@dataclass(frozen=True)
class TensorRule:
    dtype: str  # Triton TYPE_* name
    rank: int
    channels: int | None = None  # dims[1] when fixed (3 for RGB images)


@dataclass(frozen=True)
class TaskIO:
    inputs: tuple[TensorRule, ...]
    outputs: tuple[TensorRule, ...]
    # Output whose last class axis must match the labels: (output index, axis).
    label_axis: tuple[int, int] | None = None
    extra_outputs_allowed: bool = False
    optional_inputs: int = 0  # trailing inputs that may be absent (e.g. attention_mask)
    note: str = ""


IMAGE = TensorRule("TYPE_FP32", 4, 3)

TASKS: dict[str, TaskIO] = {
    "nsfw_detection": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 3),), label_axis=(0, 1),
                             note="YOLOv8 layout: [batch, 4 + classes, boxes]"),
    "object_detection": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 3),), label_axis=(0, 1),
                               note="YOLOv8 layout: [batch, 4 + classes, boxes]"),
    "classification": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), label_axis=(0, 1),
                             note="[batch, classes] probabilities"),
    "image_embedding": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), note="[batch, dim]"),
    "region_embedding": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), note="[batch, dim]"),
    "face_embedding": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), note="[batch, dim], aligned 112 px crops"),
    "face_expression": TaskIO((TensorRule("TYPE_FP32", 4),), (TensorRule("TYPE_FP32", 2),), label_axis=(0, 1),
                              note="grey face crops [batch, S, S, 1] -> [batch, expressions]"),
    "face_detection": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), extra_outputs_allowed=True,
                             note="SCRFD: per-stride score, box (and landmark) outputs"),
    "text_embedding": TaskIO((TensorRule("TYPE_INT64", 2), TensorRule("TYPE_INT64", 2)),
                             (TensorRule("TYPE_FP32", 2),), optional_inputs=1,
                             note="input_ids [, attention_mask] -> [batch, dim]"),
    "ocr_detection": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 4),), note="DB probability map [batch, 1, H, W]"),
    "ocr_direction": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 2),), label_axis=(0, 1), note="[batch, 2]"),
    "ocr_recognition": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 3),), label_axis=(0, 2),
                              note="CTC [batch, steps, classes]"),
    "image_captioning": TaskIO((IMAGE,), (TensorRule("TYPE_FP32", 3),), note="encoder states [batch, tokens, dim]"),
    "caption_decoder": TaskIO((TensorRule("TYPE_INT64", 2), TensorRule("TYPE_FP32", 3)),
                              (TensorRule("TYPE_FP32", 2),), note="(tokens, encoder states) -> next-token logits"),
}


def _fits(spec: TensorSpec, rule: TensorRule) -> str | None:
    if spec.dtype != rule.dtype:
        return f"{spec.name!r} is {spec.dtype}, the adapter needs {rule.dtype}"
    if len(spec.dims) != rule.rank:
        return f"{spec.name!r} has rank {len(spec.dims)} {list(spec.dims)}, the adapter needs rank {rule.rank}"
    if rule.channels is not None and spec.dims[1] not in (-1, rule.channels):
        return f"{spec.name!r} has {spec.dims[1]} channels, the adapter feeds {rule.channels}"
    return None


def check_task_io(task: str, io: GraphIO, labels: int = 0) -> list[str]:
    """Problems that would stop `task`'s adapter from driving this graph (empty list: it fits)."""
    rules = TASKS.get(task)
    if rules is None:
        return [f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}"]
    problems: list[str] = []
    needed = len(rules.inputs) - rules.optional_inputs
    if not needed <= len(io.inputs) <= len(rules.inputs):
        problems.append(f"{task} models take {needed}-{len(rules.inputs)} inputs, this graph takes {len(io.inputs)}")
    for spec, rule in zip(io.inputs, rules.inputs, strict=False):
        if (why := _fits(spec, rule)) is not None:
            problems.append(f"input {why}")
    if len(io.outputs) < len(rules.outputs) or (
        len(io.outputs) > len(rules.outputs) and not rules.extra_outputs_allowed
    ):
        problems.append(f"{task} models give {len(rules.outputs)} output(s), this graph gives {len(io.outputs)}")
    for spec, rule in zip(io.outputs, rules.outputs, strict=False):
        if (why := _fits(spec, rule)) is not None:
            problems.append(f"output {why}")
    if labels and rules.label_axis and not problems:
        index, axis = rules.label_axis
        size = io.outputs[index].dims[axis]
        classes = size - 4 if task in ("nsfw_detection", "object_detection") and size > 0 else size
        if classes > 0 and classes != labels:
            output = io.outputs[index].name
            problems.append(f"{labels} labels given, the graph's output {output!r} has {classes} classes")
    if problems and rules.note:
        problems.append(f"({task}: {rules.note})")
    return problems
