"""A labelled image-retrieval set built from scikit-image's bundled photos (no download): each photo
with its altered copies (crops, a flip, colour changes, a rotation, JPEG) is one instance group; the
two views of `stereo_motorcycle` share a group. Semantic groups put different photos of one kind
together (textures, microscopy, documents, sky, motorcycles). Used by bench/offline_models.py.

mAP: for every image as a query, the average precision of ranking the rest of the set by cosine
similarity, relevant = same group; recall@1: the nearest other image is of the same group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Photos bundled with scikit-image 0.2x (those needing a download are left out).
PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "cell", "checkerboard", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text",
)
SEMANTIC = {
    "motorcycle": ("motorcycle_left", "motorcycle_right"),
    "texture": ("brick", "grass", "gravel"),
    "microscopy": ("cell", "immunohistochemistry", "microaneurysms", "retina"),
    "document": ("page", "text"),
    "sky": ("hubble_deep_field", "moon"),
}


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float64) - image.min()) / max(float(np.ptp(image)), 1e-9)).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def photos() -> dict[str, np.ndarray]:
    import skimage.data as data

    out = {name: _rgb(getattr(data, name)()) for name in PHOTOS}
    left, right, _ = data.stereo_motorcycle()
    out["motorcycle_left"], out["motorcycle_right"] = _rgb(left), _rgb(right)
    return out


def _crop(image: np.ndarray, fraction: float, corner: str) -> np.ndarray:
    height, width = image.shape[:2]
    h, w = int(height * fraction), int(width * fraction)
    y = {"c": (height - h) // 2, "tl": 0, "br": height - h}[corner]
    x = {"c": (width - w) // 2, "tl": 0, "br": width - w}[corner]
    return image[y : y + h, x : x + w]


def _hue(image: np.ndarray, shift: int) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + shift) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1] if ok else image


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.1)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


ALTERATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "crop80": lambda im: _crop(im, 0.8, "c"),
    "crop60_tl": lambda im: _crop(im, 0.6, "tl"),
    "flip": lambda im: im[:, ::-1],
    "gray": lambda im: np.repeat(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2),
    "hue60": lambda im: _hue(im, 30),
    "dark": lambda im: np.clip(im.astype(np.float32) * 0.6, 0, 255).astype(np.uint8),
    "rot10": lambda im: _rotate(im, 10),
    "jpeg20": lambda im: _jpeg(im, 20),
    "flip_crop70": lambda im: _crop(im[:, ::-1], 0.7, "br"),
}


@dataclass(frozen=True)
class Item:
    name: str
    photo: str
    group: str  # instance group
    semantic: str  # semantic group, "" when the photo has none
    image: np.ndarray


def build() -> list[Item]:
    semantic_of = {p: group for group, members in SEMANTIC.items() for p in members}
    items = []
    for name, image in photos().items():
        group = "motorcycle" if name.startswith("motorcycle_") else name
        items.append(Item(name, name, group, semantic_of.get(name, ""), image))
        for alteration, change in ALTERATIONS.items():
            items.append(Item(f"{name}/{alteration}", name, group, semantic_of.get(name, ""),
                              np.ascontiguousarray(change(image))))
    return items


def average_precision(ranked_relevance: np.ndarray) -> float:
    hits = np.cumsum(ranked_relevance)
    if hits[-1] == 0:
        return 0.0
    precision = hits / np.arange(1, len(ranked_relevance) + 1)
    return float((precision * ranked_relevance).sum() / hits[-1])


def scores(vectors: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """(mAP, recall@1) over the items whose label is not empty, each a query against all others."""
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors @ vectors.T
    labels_array = np.asarray(labels)
    aps, top1 = [], []
    for i, label in enumerate(labels):
        if not label:
            continue
        order = [j for j in np.argsort(-similarity[i]) if j != i]
        relevant = (labels_array[order] == label).astype(np.float64)
        aps.append(average_precision(relevant))
        top1.append(relevant[0])
    return float(np.mean(aps)), float(np.mean(top1))


def colour_histogram(image: np.ndarray, bins: int = 8) -> np.ndarray:
    """The baseline: a joint RGB histogram (bins^3), square-rooted (Hellinger) so cosine compares it."""
    small = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).reshape(-1)
    return np.sqrt(hist / max(float(hist.sum()), 1.0)).astype(np.float32)
