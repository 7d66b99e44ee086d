"""A ViT region-feature extractor pretrained on ImageNet-21k (timm `vit_base_patch16_224.augreg_in21k`,
as the source document 2.3.6 proposes): image crop -> L2-normalised pre-logits embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import ModelsError, building, require_export_extra
from services.models.export.common import export_and_verify, write_exported

NAME = "vit_b16_in21k"
TIMM_NAME = "vit_base_patch16_224.augreg_in21k"


def _features_module(model):
    import torch

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            pooled = self.model.forward_head(self.model.forward_features(images), pre_logits=True)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return Features().eval()


def export_vit(repository: Path, model, *, name: str = NAME, source: str = "pulled", license: str) -> float:
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    size = int(model.patch_embed.img_size[0])
    if cfg.get("input_size") and tuple(cfg["input_size"][1:]) != tuple(model.patch_embed.img_size):
        raise ModelsError(f"{name}: built for {model.patch_embed.img_size}, its weights for {cfg['input_size']}")
    crop_pct = float(cfg.get("crop_pct", 0.9))
    crop_mode = cfg.get("crop_mode", "center")
    if crop_mode != "center":
        raise ModelsError(f"{name}: timm crop_mode {crop_mode!r} has no adapter resize")
    rng = np.random.default_rng(0)
    images = ((rng.random((2, 3, size, size), dtype=np.float32) - 0.5) * 2).astype(np.float32)
    exported = export_and_verify(name, _features_module(model), {"images": images}, ["embedding"])
    dim = int(model.num_features)
    write_exported(
        repository, name, exported.model,
        ModelMeta(
            task="region_embedding",
            source=source,
            description="ViT-B/16 pretrained on ImageNet-21k (timm augreg): L2-normalised region features",
            license=license,
            params={
                "input_size": size,
                "mean": list(cfg.get("mean", (0.5, 0.5, 0.5))),
                "std": list(cfg.get("std", (0.5, 0.5, 0.5))),
                # timm's eval transform: shorter side to floor(size / crop_pct), centre crop to size,
                # PIL with the named interpolation.
                "resize": "shorter_side_center_crop",
                "interpolation": cfg.get("interpolation", "bicubic"),
                "crop_pct": crop_pct,
                "dim": dim,
                "normalized": True,
                "space": name,
            },
        ),
        output_dims={"embedding": (dim,)},
    )
    return exported.max_abs_diff


def pull_vit(repository: Path, upstream) -> float:
    require_export_extra("pulling the ViT region-feature extractor", ("torch", "timm"))
    import timm

    from services.models.hub import hf_file

    weights = hf_file(upstream, upstream.files[0], f"timm {TIMM_NAME} weights")
    with building(f"timm {TIMM_NAME}"):
        # timm's own pretrained config (mean, std, crop, interpolation), weights from the pinned file.
        # (custom_load off: it means the Google .npz, the hub file is a timm state dict.)
        model = timm.create_model(TIMM_NAME, pretrained=True, num_classes=0,
                                  pretrained_cfg_overlay={"file": str(weights), "custom_load": False})
    return export_vit(repository, model, license="Apache-2.0 (timm / Google AugReg weights)")
