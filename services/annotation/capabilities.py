"""ListCapabilities: which rows of the task table an installed model serves now, and for the others the
one command that installs a model of them (clients show a feature as disabled with that command)."""

from __future__ import annotations

from typing import Any

from protos import media_annotation_pb2 as pb
from services.annotation.catalog import MissingModelError, ModelCatalog
from services.annotation.models.formats import BUILTINS
from services.annotation.models.ocr import OcrPipeline
from services.annotation.tasks import TaskSpec

SHIPPED = "maam models install-shipped"
# Per repository task: the command that installs a model of it (shipped packages first, then `pull`).
ENABLE_BY_TASK = {
    "object_detection": SHIPPED,
    "nsfw_classification": SHIPPED,
    "nsfw_detection": SHIPPED,
    "face_detection": SHIPPED,
    "ocr_detection": SHIPPED,
    "image_embedding": SHIPPED,
    "region_embedding": SHIPPED,
    "text_embedding": "maam models pull clip_vit_b32",
    "image_captioning": "maam models pull vit_gpt2_caption",
    # CLIP zero-shot heads (built from an installed CLIP: `maam models pull clip_vit_b32` first).
    "disturbing_classification": "maam models pull clip_zeroshot",
    "meme_classification": "maam models pull clip_zeroshot",
    "image_tagging": "maam models pull clip_zeroshot",
    "action_recognition": "maam models pull kinetics_r2plus1d_18",
    "video_action_recognition": "maam models pull kinetics_r2plus1d_18",
}
# Rows no package ships a model for: the user brings one (`maam models import`).
IMPORT = "maam models import NAME --onnx FILE.onnx --task {task}"


def enable_command(spec: TaskSpec) -> str:
    for task in spec.models + spec.fallback:
        if task in ENABLE_BY_TASK:
            return ENABLE_BY_TASK[task]
    return IMPORT.format(task=spec.models[0]) if spec.models else ""


def _names(model: Any) -> list[str]:
    if isinstance(model, OcrPipeline):
        return model.models
    return [str(getattr(model, "name", type(model).__name__))]


def _paired(catalog: ModelCatalog, spec: TaskSpec, found: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A row whose RPC runs a paired model (text into the image encoder's space) is available only with that
    pair: a text encoder of another space (MiniLM) cannot search images."""
    try:
        name = spec.default_model(catalog) if spec.default_model else None
    except MissingModelError:
        return []
    if name is None:
        return found
    return [(task, model) for task, model in found if name in _names(model)]


def capability(catalog: ModelCatalog, spec: TaskSpec) -> pb.TaskCapability:
    found = catalog._serving(spec, spec.models) or catalog._serving(spec, spec.fallback)[:1]
    found = _paired(catalog, spec, found)
    models = [name for _, model in found for name in _names(model)]
    builtin = bool(found) and all(task in BUILTINS for task, _ in found)
    return pb.TaskCapability(task=spec.name, media=spec.media.value.replace(" ", "_"), rpc=spec.rpc, models=models,
                             available=bool(found), builtin=builtin,
                             enable_command="" if found else enable_command(spec))


def capabilities(catalog: ModelCatalog) -> pb.CapabilitiesResponse:
    return pb.CapabilitiesResponse(tasks=[capability(catalog, spec) for spec in catalog.tasks])
