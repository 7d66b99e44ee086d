"""CLIP ViT-B/32 as `pull clip_vit_b32` builds it for the `openai` weights, at full size with random
weights (no network): the architecture flags come from open_clip's pretrained config for the tag
(QuickGELU, image size, mean / std, interpolation, resize mode), and the exported ONNX computes what
a QuickGELU reference computes with the same weights, not what nn.GELU would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need torch from the [export] extra (not installed)")
open_clip = pytest.importorskip("open_clip", reason="CLIP export needs open_clip from the [export] extra")

from services.common.model_repository import ModelRepository  # noqa: E402
from services.models.errors import ModelsError  # noqa: E402
from services.models.export.clip import (  # noqa: E402
    build_clip,
    check_matches,
    export_clip,
    pretrained_config,
    uses_quick_gelu,
)
from services.models.export.common import onnx_outputs  # noqa: E402


@pytest.fixture(scope="module")
def vit_b32():
    torch.manual_seed(0)
    return build_clip("ViT-B-32", "openai")


def _reference(name: str, state: dict):
    model = open_clip.create_model(name)
    model.load_state_dict(state)
    return model.eval()


def test_the_openai_tag_says_quick_gelu_and_the_build_follows_it(vit_b32) -> None:
    cfg = pretrained_config("ViT-B-32", "openai")
    assert cfg["quick_gelu"] is True and cfg["image_size"] == 224
    assert (cfg["interpolation"], cfg["resize_mode"]) == ("bicubic", "shortest")
    assert uses_quick_gelu(vit_b32)
    # The plain model config builds nn.GELU: the check refuses it for these weights.
    with pytest.raises(ModelsError, match="quick_gelu"):
        check_matches(open_clip.create_model("ViT-B-32"), cfg, "ViT-B-32 / openai")


@pytest.mark.slow
def test_exported_clip_equals_a_quick_gelu_reference(vit_b32, tmp_path: Path) -> None:
    state = vit_b32.state_dict()
    quick, plain = _reference("ViT-B-32-quickgelu", state), _reference("ViT-B-32", state)
    images = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = quick.encode_image(torch.from_numpy(images), normalize=True).numpy()
        gelu = plain.encode_image(torch.from_numpy(images), normalize=True).numpy()
    assert np.abs(want - gelu).max() > 1e-3  # the activation matters: the comparison can fail

    export_clip(tmp_path, vit_b32, "clip_vit_b32", source="test", description="ViT-B/32 random", license="test")
    spec = ModelRepository(tmp_path).get_installed("clip_vit_b32_image")
    got = onnx_outputs(spec.weights_path, {"images": images})[0]
    assert np.abs(got - want).max() < 1e-4
    params = spec.meta.params
    assert params["quick_gelu"] is True and params["input_size"] == 224
    assert (params["resize"], params["interpolation"]) == ("shorter_side_center_crop", "bicubic")
    assert params["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
