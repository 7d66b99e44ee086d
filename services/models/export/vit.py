"""A ViT region-feature extractor pretrained on ImageNet-21k (timm `vit_base_patch16_224.augreg_in21k`,
as the source document 2.3.6 proposes): image crop -> L2-normalised pre-logits embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import fetching, require_export_extra
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
    rng = np.random.default_rng(0)
    images = ((rng.random((2, 3, size, size), dtype=np.float32) - 0.5) * 2).astype(np.float32)
    exported = export_and_verify(name, _features_module(model), {"images": images}, ["embedding"])
    dim = int(model.num_features)
    write_exported(
        repository, name, exported.model,
        ModelMeta(
            task="region_features",
            source=source,
            description="ViT-B/16 pretrained on ImageNet-21k (timm augreg): L2-normalised region features",
            license=license,
            params={
                "input_size": size,
                "mean": list(cfg.get("mean", (0.5, 0.5, 0.5))),
                "std": list(cfg.get("std", (0.5, 0.5, 0.5))),
                "interpolation": cfg.get("interpolation", "bicubic"),
                "crop_pct": cfg.get("crop_pct", 0.9),
                "dim": dim,
                "normalized": True,
                "space": name,
            },
        ),
        output_dims={"embedding": (dim,)},
    )
    return exported.max_abs_diff


def pull_vit(repository: Path) -> float:
    require_export_extra("pulling the ViT region-feature extractor")
    import timm

    with fetching(f"timm {TIMM_NAME} weights"):
        model = timm.create_model(TIMM_NAME, pretrained=True, num_classes=0)
    return export_vit(repository, model, license="Apache-2.0 (timm / Google AugReg weights)")
