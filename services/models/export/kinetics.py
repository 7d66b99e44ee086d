"""torchvision Kinetics-400 video classifiers (R(2+1)D-18 by default) -> ONNX over clips
[N, 3, T, H, W]. Labels, clip length and preprocessing are read from the torchvision Weights enum
(its `meta` and its `transforms()`), never copied by hand, so the sidecar says what the weights do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from services.annotation.models.video_clip import FORMAT
from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError, fetching, require_export_extra
from services.models.export.common import export_module, torch_outputs, verify, write_exported

# pull name -> (torchvision builder, Weights enum, member)
ARCHITECTURES = {
    "r2plus1d_18": ("r2plus1d_18", "R2Plus1D_18_Weights", "KINETICS400_V1"),
    "mc3_18": ("mc3_18", "MC3_18_Weights", "KINETICS400_V1"),
    "r3d_18": ("r3d_18", "R3D_18_Weights", "KINETICS400_V1"),
}
DEFAULT_CLIP_LEN = 16  # torchvision's reference recipe for the R(2+1)D / MC3 / R3D weights


def weights_enum(arch: str = "r2plus1d_18"):
    from torchvision.models import video

    _, enum_name, member = ARCHITECTURES[arch]
    return getattr(getattr(video, enum_name), member)


def preprocessing_params(weights) -> dict[str, Any]:
    """What the weights' VideoClassification transform does, as maam.json params."""
    transform = weights.transforms()
    docs = str(weights.meta.get("_docs", ""))
    found = re.search(r"clip_len=(\d+)", docs)
    interpolation = getattr(transform.interpolation, "value", str(transform.interpolation))
    if interpolation != "bilinear":
        raise ModelsError(f"{weights}: interpolation {interpolation!r}; the serving side implements bilinear only")
    return {
        "format": FORMAT,
        "layout": "CTHW",
        "clip_len": int(found.group(1)) if found else DEFAULT_CLIP_LEN,
        "resize_size": [int(v) for v in transform.resize_size],
        "crop_size": [int(v) for v in transform.crop_size],
        "mean": [float(v) for v in transform.mean],
        "std": [float(v) for v in transform.std],
        "interpolation": interpolation,
        "antialias": False,  # hard-coded in torchvision's video presets
        "activation": "softmax",
        "top_k": 5,
    }


def export_kinetics(
    repository: Path, model, weights, *, name: str, source: str = "pulled", description: str, license: str
) -> float:
    """Exports `name` (task video_action_recognition); returns ONNX Runtime vs torch max abs diff."""
    params = preprocessing_params(weights)
    labels = tuple(str(c) for c in weights.meta["categories"])
    crop_h, crop_w = params["crop_size"]
    rng = np.random.default_rng(0)
    shape = (1, 3, params["clip_len"], crop_h, crop_w)
    example = {"clips": rng.standard_normal(shape).astype(np.float32)}
    graph = export_module(model.eval(), example, ["logits"])
    check = {"clips": rng.standard_normal((2, *shape[1:])).astype(np.float32)}  # another batch size
    reference = torch_outputs(model, check)
    # Logits of a random-init network can be large; the tolerance follows their scale.
    atol = 1e-3 * max(1.0, float(np.max(np.abs(reference[0]))))
    diff = verify(name, reference, graph, check, atol)
    write_exported(
        repository, name, graph,
        ModelMeta(
            task="video_action_recognition", source=source, labels=labels,
            description=description, license=license, params=params,
        ),
        max_batch_size=4,
        output_dims={"logits": (len(labels),)},
    )
    return diff


def pull_kinetics(repository: Path, arch: str = "r2plus1d_18") -> float:
    require_export_extra("pulling the Kinetics-400 action model")
    from torchvision.models import video

    builder, _, member = ARCHITECTURES[arch]
    weights = weights_enum(arch)
    with fetching(f"torchvision {builder} {member} weights", host="download.pytorch.org"):
        model = getattr(video, builder)(weights=weights)
    return export_kinetics(
        repository, model, weights, name=f"kinetics_{arch}",
        description=f"action recognition: torchvision {builder} ({member}, Kinetics-400, 400 actions)",
        license="BSD-3-Clause (torchvision); weights trained on Kinetics-400",
    )
