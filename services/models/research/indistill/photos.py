"""Unlabelled images for distillation: a directory of image files, or scikit-image's bundled photos and
random edits of them (crops, flips, rotations, colour and blur), all as the classifier adapters feed a
model: stretched to S × S, RGB in [0, 1], NCHW."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from services.models.errors import ModelsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# scikit-image photos that ship inside the wheel (the others are downloaded on first use).
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
    "text", "clock", "checkerboard", "binary_blobs", "motorcycle_left", "motorcycle_right",
)


def to_rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def skimage_photos() -> dict[str, np.ndarray]:
    from skimage import data

    photos: dict[str, np.ndarray] = {}
    for name in SKIMAGE_PHOTOS:
        if name.startswith("motorcycle_"):
            left, right, _ = data.stereo_motorcycle()
            photos[name] = to_rgb(left if name.endswith("left") else right)
        elif hasattr(data, name):
            photos[name] = to_rgb(getattr(data, name)())
    return photos


def read_directory(directory: Path) -> list[np.ndarray]:
    files = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ModelsError(f"{directory} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return [np.asarray(Image.open(p).convert("RGB")) for p in files]


def edits(photos: Sequence[np.ndarray], per_photo: int, seed: int = 0, size: int = 320) -> list[np.ndarray]:
    """`per_photo` random edits of each photo (the first is the photo itself)."""
    torch.manual_seed(seed)
    edit = v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomRotation(20)], p=0.3),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.05)], p=0.7), v2.RandomGrayscale(0.1),
        v2.RandomApply([v2.GaussianBlur(5, (0.1, 2.0))], p=0.2),
    ])
    out = []
    for photo in photos:
        image = torch.from_numpy(photo).permute(2, 0, 1)
        out.append(photo)
        out.extend(edit(image).permute(1, 2, 0).numpy() for _ in range(per_photo - 1))
    return out


def as_tensor(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Stretched to size × size (cv2, as the annotation adapters do), RGB in [0, 1], [N, 3, S, S]."""
    batch = np.stack([
        cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR)
        for img in images
    ])
    return torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
