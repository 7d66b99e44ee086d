"""Inputs for calibration and benchmarks: real photos (a directory, or skimage.data's) prepared as
a model's sidecar says (size, mean, std), or valid random tokens for text models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from services.common.model_repository import ModelSpec
from services.models.errors import ModelsError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# skimage.data photos that ship inside scikit-image (no download).
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "moon", "page", "text", "horse")


def photos(directory: Path | None = None, limit: int = 32) -> list[np.ndarray]:
    """RGB uint8 photos from `directory`, or skimage.data's when none is given."""
    images: list[np.ndarray] = []
    if directory is not None:
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelsError(f"calibration directory {directory} does not exist")
        for path in sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(path) as image:
                    images.append(np.asarray(image.convert("RGB")))
            except (OSError, Image.DecompressionBombError):
                continue  # unreadable files are skipped; too few images fail below
            if len(images) >= limit:
                break
        if not images:
            raise ModelsError(f"no readable images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {directory}")
        return images
    try:
        from skimage import data
    except ImportError as exc:
        raise ModelsError("no --calibration directory given and scikit-image is not installed") from exc
    for name in SKIMAGE_PHOTOS:
        try:
            image = np.asarray(getattr(data, name)())
        except Exception:  # some datasets need a download; the bundled ones suffice
            continue
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        images.append(image[..., :3].astype(np.uint8))
    return images[:limit]


def _image_input(spec: ModelSpec) -> tuple[str, int, int] | None:
    """(input name, height, width) when the model takes one RGB image tensor."""
    if len(spec.config.input) != 1:
        return None
    tensor = spec.config.input[0]
    dims = list(tensor.dims)
    if spec.max_batch_size == 0:
        dims = dims[1:]
    params = spec.meta.params
    if params.get("layout") == "NHWC" and len(dims) == 3 and dims[2] == 3:
        dims = [3, dims[0], dims[1]]  # graphs converted from TensorFlow: [H, W, 3]
    if tensor.data_type != 11 or len(dims) != 3 or dims[0] not in (3, -1):  # 11 = TYPE_FP32
        return None
    size = params.get("input_size") or 224
    height = dims[1] if dims[1] > 0 else int(size)
    width = dims[2] if dims[2] > 0 else int(size)
    return tensor.name, height, width


def prepare(spec: ModelSpec, image: np.ndarray) -> np.ndarray:
    """One photo as the model's float input: [3, H, W] resized, scaled to [0, 1], normalised; the
    model's own preparation for NHWC graphs (params `layout`) and NanoDet (params `format`)."""
    found = _image_input(spec)
    if found is None:
        raise ModelsError(f"{spec.name}: not an image model (one FP32 [3, H, W] input)")
    _, height, width = found
    params = spec.meta.params
    if params.get("layout") == "NHWC":
        from services.annotation.models.preprocess import model_input

        return model_input(image, params)
    if params.get("format") == "nanodet":
        from services.annotation.models.nanodet import nanodet_input

        tensor, _ = nanodet_input(image, height, np.asarray(params["mean"], np.float32),
                                  np.asarray(params["std"], np.float32))
        return tensor
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR), np.float32)
    mean = np.asarray(params.get("mean", 0.0), np.float32)
    std = np.asarray(params.get("std", 1.0), np.float32)
    # mean/std are given in pixel units (e.g. 127.5) or for [0, 1] inputs.
    pixels = resized if np.max(mean) > 1.0 else resized / 255.0
    x = (pixels - mean) / std
    return x.transpose(2, 0, 1).astype(np.float32)


def is_image_model(spec: ModelSpec) -> bool:
    return _image_input(spec) is not None


def image_batches(spec: ModelSpec, images: list[np.ndarray], batch: int = 1) -> Iterator[dict[str, np.ndarray]]:
    found = _image_input(spec)
    if found is None:
        raise ModelsError(f"{spec.name}: not an image model (one FP32 [3, H, W] input)")
    name = found[0]
    prepared = [prepare(spec, image) for image in images]
    for start in range(0, len(prepared), batch):
        chunk = np.stack(prepared[start : start + batch])
        yield {name: chunk if spec.max_batch_size > 0 else chunk[0:1]}


def token_batches(spec: ModelSpec, count: int, batch: int = 1, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Random token ids (and a full attention mask) for text models: same inputs for both models."""
    rng = np.random.default_rng(seed)
    length = int(spec.meta.params.get("tokenizer", {}).get("context_length", 16))
    for _ in range(count):
        feeds: dict[str, np.ndarray] = {}
        ids = rng.integers(100, 1000, (batch, length), dtype=np.int64)
        for tensor in spec.config.input:
            feeds[tensor.name] = np.ones_like(ids) if "mask" in tensor.name else ids
        yield feeds
