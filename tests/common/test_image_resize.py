"""The adapters' preprocessing of a real photo (scikit-image's chelsea, 451 x 300) equals the upstream
libraries' own transforms, to 1e-5: open_clip's preprocess (CLIP), torchvision's SSD transform
(SSDlite), the ViT image processor (ViT-GPT2), timm's eval transform (ViT-B/16 in21k); through the
params the exports write."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from services.annotation.models.preprocess import model_input
from services.common.image_resize import Placement, ResizeError, ResizeSpec, resize_for_model

torch = pytest.importorskip("torch", reason="the upstream transforms need torch from the [export] extra")

PHOTO = data.chelsea()  # non-square: resize modes differ
TOL = 1e-5


def _pil(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(rgb)


def test_clip_params_equal_open_clips_preprocess() -> None:
    import open_clip

    from services.models.export.clip import RESIZE_MODES, pretrained_config

    cfg = pretrained_config("ViT-B-32", "openai")
    transform = open_clip.image_transform(224, is_train=False, mean=cfg["mean"], std=cfg["std"],
                                          resize_mode=cfg["resize_mode"], interpolation=cfg["interpolation"])
    want = transform(_pil(PHOTO)).numpy()
    params = {"input_size": 224, "resize": RESIZE_MODES[cfg["resize_mode"]], "interpolation": cfg["interpolation"],
              "mean": list(cfg["mean"]), "std": list(cfg["std"])}
    got = model_input(PHOTO, params)
    assert got.shape == want.shape == (3, 224, 224)
    assert np.abs(got - want).max() < TOL
    # The old stretch gives another input (what the issue found).
    assert np.abs(model_input(PHOTO, {**params, "resize": "stretch"}) - want).max() > 0.1


def test_ssdlite_params_equal_torchvisions_ssd_transform() -> None:
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    from torchvision.transforms.functional import to_tensor

    from services.models.export.detector import RESIZE, SIZE

    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    with torch.no_grad():
        images, _ = model.transform([to_tensor(PHOTO)])
    want = images.tensors[0].numpy()  # normalised by the transform; the exported graph does that itself
    image, placement = resize_for_model(PHOTO, ResizeSpec.from_params(RESIZE, SIZE, default_mode="letterbox"))
    mean = np.asarray(model.transform.image_mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(model.transform.image_std, np.float32).reshape(3, 1, 1)
    got = (image.transpose(2, 0, 1) - mean) / std
    assert got.shape == want.shape == (3, SIZE, SIZE)
    assert np.abs(got - want).max() < TOL
    # Boxes in the stretched input map back to the photo's own corners.
    corners = placement.to_image(np.array([[0, 0, SIZE, SIZE], [SIZE / 2, SIZE / 4, SIZE, SIZE / 2]], np.float32))
    assert np.allclose(corners, [[0, 0, 1, 1], [0.5, 0.25, 1, 0.5]])


def test_captioner_params_equal_the_vit_image_processor() -> None:
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    from services.models.export.captioner import pil_interpolation_name

    # The PIL processor: what ViTFeatureExtractor computed when nlpconnect trained the captioner
    # (transformers 5's default torchvision backend rounds differently, by up to one grey level).
    processor = ViTImageProcessorPil()
    want = processor(images=PHOTO, return_tensors="np")["pixel_values"][0]
    params = {"input_size": 224, "resize": "stretch", "interpolation": pil_interpolation_name(processor.resample),
              "mean": list(processor.image_mean), "std": list(processor.image_std)}
    got = model_input(PHOTO, params)
    assert got.shape == want.shape and np.abs(got - want).max() < TOL


def test_vit_in21k_params_equal_timms_eval_transform() -> None:
    import timm
    from timm.data import create_transform, resolve_data_config

    cfg = timm.models.get_pretrained_cfg("vit_base_patch16_224.augreg_in21k").to_dict()
    transform = create_transform(**resolve_data_config({}, pretrained_cfg=cfg))
    want = transform(_pil(PHOTO)).numpy()
    params = {"input_size": 224, "resize": "shorter_side_center_crop", "interpolation": cfg["interpolation"],
              "crop_pct": cfg["crop_pct"], "mean": list(cfg["mean"]), "std": list(cfg["std"])}
    got = model_input(PHOTO, params)
    assert got.shape == want.shape and np.abs(got - want).max() < TOL


def test_unknown_resize_or_interpolation_is_an_error() -> None:
    with pytest.raises(ResizeError, match="resize 'squash'"):
        ResizeSpec.from_params({"resize": "squash"}, 224)
    with pytest.raises(ResizeError, match="interpolation 'cubic'"):
        ResizeSpec.from_params({"interpolation": "cubic"}, 224)


def test_letterbox_placement_maps_boxes_back() -> None:
    image, placement = resize_for_model(PHOTO, ResizeSpec("letterbox", 320))
    assert isinstance(placement, Placement) and image.shape == (320, 320, 3)
    top = placement.pad_y
    box = np.array([[0, top, 320, 320 - top]], np.float32)
    assert np.allclose(placement.to_image(box), [[0, 0, 1, 1]], atol=1e-2)
