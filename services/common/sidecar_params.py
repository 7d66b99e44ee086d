"""The `params` keys of `maam.json`, defined once per (task, format): what the adapters and services
read, and the descriptive keys every sidecar may carry. ModelRepository checks each sidecar against
this when it loads (an unknown key is an error naming the model), so a key misspelt by an export, an
import or a hand edit (SCRFD's `nms_iou` for `nms_threshold`) fails loudly instead of being ignored
while the defaults happen to agree.

Tasks and formats not listed here are not checked yet; a new format or key is added to SCHEMAS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Any sidecar: provenance and catalog flags.
DESCRIPTIVE = frozenset({
    "format", "runtime", "default", "package", "verification", "upstream",
    "space", "embedding_space", "dim", "normalized", "cross_modal",
    "quantization",  # why `maam models quantize` refuses this model (measured), without --force
})
# How services/common/image_resize.py and services/annotation/models/preprocess.py build an image input.
IMAGE_INPUT = frozenset({
    "input_size", "mean", "std", "layout", "resize", "interpolation", "crop_pct", "antialias", "color",
    "scale", "offset", "letterbox",
})
YOLO = IMAGE_INPUT | {"score_threshold", "conf_threshold", "iou_threshold", "nms_iou", "class_agnostic_nms"}
EMBEDDER = IMAGE_INPUT | {"text_model", "quick_gelu"}

# (task, params.format or the built-in runtime; None: the task's models that name none) -> keys.
SCHEMAS: dict[tuple[str, str | None], frozenset[str]] = {
    # services/annotation/face_detection/dnn.py ScrfdParams
    ("face_detection", "scrfd"): frozenset({
        "input_size", "score_threshold", "nms_threshold", "mean", "std", "strides", "num_anchors",
    }),
    ("face_detection", "yolov8"): YOLO,
    ("object_detection", "yolov8"): YOLO,
    ("object_detection", None): YOLO,
    ("image_embedding", None): EMBEDDER,
    ("region_embedding", None): EMBEDDER,
    # services/annotation/faces.py: crops aligned on five landmarks when `alignment` says so.
    ("face_embedding", None): IMAGE_INPUT | {"alignment"},
    # services/common/text_tokenizers.py, text_encoding.py
    ("text_embedding", None): frozenset({"tokenizer", "image_model", "seq_len", "vocab_size"}),
    # services/annotation/models/captioning.py (the pulled encoder + decoder, and the one-model form)
    ("image_captioning", None): IMAGE_INPUT | {
        "decoder_model", "decoder_start_token_id", "eos_token_id", "pad_token_id", "max_length", "num_beams",
        "tokenizer", "seq_len", "bos_id", "eos_id", "pad_id",
    },
    ("caption_decoder", None): frozenset({"encoder_model", "vocab_size"}),
}


def params_format(params: Mapping[str, Any], runtime: str | None) -> str | None:
    value = params.get("format") or params.get("runtime") or runtime
    return str(value) if value else None


def unknown_params(task: str, params: Mapping[str, Any], runtime: str | None = None) -> tuple[list[str], str]:
    """Keys of `params` no reader of this (task, format) knows, and the schema's description; ([], "")
    when the pair has no schema yet."""
    fmt = params_format(params, runtime)
    schema = SCHEMAS.get((task, fmt))
    if schema is None:
        return [], ""
    allowed = schema | DESCRIPTIVE
    return sorted(k for k in params if k not in allowed), f"{task} ({fmt or 'default format'})"
