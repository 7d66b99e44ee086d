"""Image pre-processing shared by the adapters: letterbox, resize, normalise, NCHW."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from services.common.image_resize import ResizeSpec, resize_for_model


@dataclass(frozen=True)
class Letterbox:
    """How an image was scaled and padded into a square model input (to map boxes back)."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    def to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Input-pixel boxes -> boxes normalised to the original image, clipped to [0, 1]."""
        out = boxes_xyxy.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale / self.width
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale / self.height
        return np.clip(out, 0.0, 1.0)


def letterbox(rgb: np.ndarray, size: int, *, corner: bool = False, fill: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Scales the image to fit a size x size square keeping its aspect ratio, then pads (centred as
    YOLO does, or at the bottom/right when `corner`, as NudeNet was trained)."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x = 0 if corner else (size - new_w) // 2
    pad_y = 0 if corner else (size - new_h) // 2
    canvas = np.full((size, size, 3), fill, np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, pad_x, pad_y, width, height)


def resize(rgb: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Plain resize to (size, size) or (height, width)."""
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    interp = cv2.INTER_AREA if rgb.shape[0] > height else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


def to_tensor(
    rgb: np.ndarray, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """uint8 HWC RGB -> float32 CHW in [0, 1], then (x - mean) / std when given."""
    chw = rgb.astype(np.float32).transpose(2, 0, 1) / 255.0
    if mean is not None:
        chw -= np.asarray(mean, np.float32).reshape(3, 1, 1)
    if std is not None:
        chw /= np.asarray(std, np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray(chw)


def normalise_chw(x_hwc: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None) -> np.ndarray:
    """float32 HWC in [0, 1] -> CHW, then (x - mean) / std when given."""
    chw = x_hwc.transpose(2, 0, 1).astype(np.float32)
    if mean is not None:
        chw = chw - np.asarray(mean, np.float32).reshape(3, 1, 1)
    if std is not None:
        chw = chw / np.asarray(std, np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray(chw)


def model_input(rgb: np.ndarray, params: Mapping[str, Any], default_size: int = 224) -> np.ndarray:
    """One image as the model's params describe its input. Default (NCHW): resized to `input_size`
    as `params.resize` / `interpolation` / `crop_pct` say (services/common/image_resize.py; default a
    plain stretch), [0, 1], then (x - mean) / std with mean and std in [0, 1] units. `layout: "NHWC"` (graphs converted
    from TensorFlow): resized to `resize` and centre-cropped to `input_size` (or resized to it), `color`
    RGB or BGR, then (x - mean) * scale + offset with mean in pixel units (0-255)."""
    size = int(params.get("input_size") or default_size)
    if params.get("layout", "NCHW") != "NHWC":
        image, _ = resize_for_model(rgb, ResizeSpec.from_params(params, size))
        return normalise_chw(image, params.get("mean"), params.get("std"))
    first = int(params.get("resize") or size)
    image = resize(rgb, first)
    if first != size:
        offset = (first - size) // 2
        image = image[offset : offset + size, offset : offset + size]
    if params.get("color") == "BGR":
        image = image[..., ::-1]
    x = image.astype(np.float32)
    if params.get("mean") is not None:
        x -= np.asarray(params["mean"], np.float32)
    x = x * float(params.get("scale", 1.0)) + float(params.get("offset", 0.0))
    return np.ascontiguousarray(x)


def crop(rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The part of the image inside a normalised box (at least one pixel)."""
    height, width = rgb.shape[:2]
    x0 = int(np.clip(np.floor(box[0] * width), 0, width - 1))
    y0 = int(np.clip(np.floor(box[1] * height), 0, height - 1))
    x1 = int(np.clip(np.ceil(box[2] * width), x0 + 1, width))
    y1 = int(np.clip(np.ceil(box[3] * height), y0 + 1, height))
    return rgb[y0:y1, x0:x1]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else x
