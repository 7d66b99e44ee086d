"""One model repository holding what `maam models pull clip_vit_b32 clip_zeroshot kinetics_r2plus1d_18`
installs, built offline from the full-size architectures with random weights (open_clip ViT-B-32,
torchvision R(2+1)D-18), and one real CPU Triton (PyTriton) serving it: session fixtures shared by
the models and annotation tests. The torch modules are kept, so tests compare with torch's output."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cpu_triton import cpu_triton

HAS_TORCH = importlib.util.find_spec("torch") is not None
CLIP = "clip_vit_b32"
KINETICS = "kinetics_r2plus1d_18"
HEADS = ("clip_zeroshot_disturbing", "clip_zeroshot_meme", "clip_zeroshot_tags")
ZEROSHOT_TRITON_MODELS = (f"{CLIP}_image", f"{CLIP}_text", KINETICS, *HEADS)


@dataclass
class ZeroShotRepository:
    root: Path
    clip: Any  # open_clip CLIP
    kinetics: Any  # torchvision VideoResNet
    kinetics_weights: Any  # its torchvision Weights enum (labels, transforms)


def build_zeroshot_repository(root: Path) -> ZeroShotRepository:
    import open_clip
    import torch
    from torchvision.models.video import r2plus1d_18

    from services.models.export.clip import export_clip
    from services.models.export.kinetics import export_kinetics, weights_enum
    from services.models.zeroshot.build import pull_zeroshot

    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-32", pretrained=None).eval()  # full size, random weights
    export_clip(root, clip, CLIP, source="test", description="CLIP ViT-B/32 (random weights)", license="test")
    pull_zeroshot(root)
    kinetics = r2plus1d_18(weights=None).eval()
    weights = weights_enum("r2plus1d_18")
    export_kinetics(root, kinetics, weights, name=KINETICS, source="test",
                    description="R(2+1)D-18 (random weights)", license="test")
    return ZeroShotRepository(root, clip, kinetics, weights)


@pytest.fixture(scope="session")
def zeroshot_repository(tmp_path_factory: pytest.TempPathFactory) -> ZeroShotRepository:
    if not HAS_TORCH:
        pytest.skip("exporting CLIP and the Kinetics model needs torch from the [export] extra")
    return build_zeroshot_repository(tmp_path_factory.mktemp("zeroshot_models"))


@pytest.fixture(scope="session")
def zeroshot_triton_url(zeroshot_repository: ZeroShotRepository) -> Iterator[str]:
    """A real tritonserver (PyTriton, CPU) serving the zero-shot repository; yields host:port."""
    with cpu_triton(zeroshot_repository.root, ZEROSHOT_TRITON_MODELS, what="tritonserver (zero-shot)") as url:
        yield url
