"""MV-SD → ONNX in the model repository: `frames` [batch, T, 3, S, S] (ImageNet-normalised RGB) →
`saliency` [batch, T, S, S] in [0, 1]; an image is a clip of one frame. Verified against torch on clips of
a length it was not exported with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.export.common import export_and_verify, write_exported
from services.models.research.mvsd.data import IMAGENET_MEAN, IMAGENET_STD
from services.models.research.mvsd.model import MVSD

DYNAMIC = {"frames": {0: "batch", 1: "frames"}, "saliency": {0: "batch", 1: "frames"}}


def export_mvsd(
    repository: Path, model: MVSD, name: str = "mvsd", *, clip_frames: int = 8, source: str = "trained",
    description: str = "MV-SD video saliency (T2T-ViT encoder, divided space-time attention, RT2T decoder)",
    license: str = "as the training data allows (DHF1K: research use)",
) -> float:
    size = model.arch.image_size
    frames = min(clip_frames, model.arch.max_frames)
    rng = np.random.default_rng(0)
    example = {"frames": rng.standard_normal((1, min(2, frames), 3, size, size)).astype(np.float32)}
    check = {"frames": rng.standard_normal((2, frames, 3, size, size)).astype(np.float32)}
    exported = export_and_verify(name, model.eval(), example, ["saliency"], check=check, dynamic_axes=DYNAMIC)
    write_exported(
        repository, name, exported.model,
        ModelMeta(
            task="saliency", source=source, description=description, license=license,
            params={
                "input_size": size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                "input_layout": "clip",  # [batch, frames, 3, S, S]
                "clip_frames": frames, "activation": "none", "format": "mvsd",
            },
        ),
        output_dims={"saliency": (-1, size, size)},
    )
    return exported.max_abs_diff
