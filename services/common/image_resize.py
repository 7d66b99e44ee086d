"""How an image becomes a model's square input, as its sidecar says (`params.resize`,
`params.interpolation`, `params.crop_pct`, `params.antialias`), done the way the upstream libraries do
it so a model sees what it was trained on, and the annotation service and CMRR give one image one vector:

- `stretch`: both sides to the input size (transformers' ViTImageProcessor; torchvision's detection
  transform with `antialias: false`, which resizes the float image without antialiasing).
- `letterbox`: keep the aspect ratio, pad to the square (YOLO).
- `shorter_side_center_crop`: the shorter side to the input size, or to floor(size / crop_pct) when
  `crop_pct` is given (timm), then the centre crop (open_clip's `shortest`, torchvision's
  Resize(int) + CenterCrop, with their rounding).

A named interpolation (`nearest`, `bilinear`, `bicubic`, `lanczos`) resizes with PIL, as torchvision
does on PIL images (antialiased when shrinking); none keeps OpenCV's area / linear resize.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

MODES = ("stretch", "letterbox", "shorter_side_center_crop")
# Values written by earlier exports: mode + interpolation in one word.
LEGACY = {
    "stretch_bicubic": ("stretch", "bicubic"),
    "shorter_side_bicubic_center_crop": ("shorter_side_center_crop", "bicubic"),
}
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
CV2_FILTERS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


class ResizeError(ValueError):
    """A sidecar names a resize mode or interpolation no adapter implements."""


@dataclass(frozen=True)
class ResizeSpec:
    mode: str
    size: int
    interpolation: str | None = None
    crop_pct: float | None = None
    antialias: bool = True
    fill: int = 114  # letterbox padding
    corner: bool = False  # letterbox at the top-left (NudeNet) instead of centred

    @classmethod
    def from_params(cls, params: Mapping[str, Any], size: int, default_mode: str = "stretch") -> ResizeSpec:
        raw = params.get("resize")
        mode = raw if isinstance(raw, str) and raw else default_mode
        interpolation = params.get("interpolation")
        if mode in LEGACY:
            mode, interpolation = LEGACY[mode][0], interpolation or LEGACY[mode][1]
        if mode not in MODES:
            raise ResizeError(f"resize {mode!r} is not one of {', '.join(MODES)}")
        if interpolation is not None and interpolation not in PIL_FILTERS:
            raise ResizeError(f"interpolation {interpolation!r} is not one of {', '.join(PIL_FILTERS)}")
        antialias = bool(params.get("antialias", True))
        if not antialias and interpolation not in CV2_FILTERS:
            raise ResizeError(f"antialias false needs interpolation {', '.join(CV2_FILTERS)}")
        crop = params.get("crop_pct")
        corner = params.get("letterbox", "center") in ("pad_bottom_right", "corner")
        return cls(mode, int(size), interpolation, float(crop) if crop else None, antialias, corner=corner)


@dataclass(frozen=True)
class Placement:
    """Where the image landed in the model input: input pixel = image pixel * scale + pad."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    def to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Input-pixel boxes -> boxes normalised to the original image, clipped to [0, 1]."""
        out = boxes_xyxy.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale_x / self.width
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale_y / self.height
        return np.clip(out, 0.0, 1.0)


def _resize(rgb: np.ndarray, width: int, height: int, spec: ResizeSpec) -> np.ndarray:
    """float32 HWC in [0, 1] at width x height."""
    if spec.interpolation is None:
        interp = cv2.INTER_AREA if rgb.shape[0] > height else cv2.INTER_LINEAR
        return cv2.resize(rgb, (width, height), interpolation=interp).astype(np.float32) / 255.0
    if not spec.antialias:  # torch's interpolate on the float image (torchvision detection models)
        x = rgb.astype(np.float32) / 255.0
        if spec.interpolation == "bilinear":
            rows, cols = _linear_weights(rgb.shape[0], height), _linear_weights(rgb.shape[1], width)
            return np.einsum("yh,hwc,xw->yxc", rows, x, cols, optimize=True).astype(np.float32)
        return cv2.resize(x, (width, height), interpolation=CV2_FILTERS[spec.interpolation])
    image = Image.fromarray(rgb).resize((width, height), PIL_FILTERS[spec.interpolation])
    return np.asarray(image, np.float32) / 255.0


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's bilinear interpolate, align_corners=False, no antialiasing
    (exact in float32; OpenCV's float path rounds its coefficients)."""
    # Source coordinates in float32, as torch computes them.
    scale = np.float32(n_in / n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = (src - low).astype(np.float32)
    weights = np.zeros((n_out, n_in), np.float32)
    np.add.at(weights, (np.arange(n_out), low), 1 - frac)
    np.add.at(weights, (np.arange(n_out), high), frac)
    return weights


def shorter_side_size(width: int, height: int, side: int) -> tuple[int, int]:
    """torchvision's Resize(int): the shorter side to `side`, the longer truncated (width, height)."""
    if width <= height:
        return side, int(side * height / width)
    return int(side * width / height), side


def resize_for_model(rgb: np.ndarray, spec: ResizeSpec) -> tuple[np.ndarray, Placement]:
    """uint8 HWC RGB -> float32 HWC in [0, 1], size x size, and where the image is in it."""
    height, width = rgb.shape[:2]
    size = spec.size
    if spec.mode == "stretch":
        return _resize(rgb, size, size, spec), Placement(size / width, size / height, 0, 0, width, height)
    if spec.mode == "letterbox":
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        if spec.interpolation is None:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(rgb, (new_w, new_h), interpolation=interp).astype(np.float32) / 255.0
        else:
            resized = _resize(rgb, new_w, new_h, spec)
        pad_x = 0 if spec.corner else (size - new_w) // 2
        pad_y = 0 if spec.corner else (size - new_h) // 2
        canvas = np.full((size, size, 3), spec.fill / 255.0, np.float32)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        return canvas, Placement(scale, scale, pad_x, pad_y, width, height)
    side = math.floor(size / spec.crop_pct) if spec.crop_pct else size
    new_w, new_h = shorter_side_size(width, height, side)
    resized = _resize(rgb, new_w, new_h, spec)
    # torchvision's CenterCrop rounding.
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    crop = resized[top : top + size, left : left + size]
    return np.ascontiguousarray(crop), Placement(new_w / width, new_h / height, -left, -top, width, height)
