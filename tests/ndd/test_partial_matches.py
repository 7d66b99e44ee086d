"""Partial copies with the offline descriptor: a photo pasted into a larger frame, and a frame holding
several photos, are found through the matched region, both ways round; other photos inside the same kind of
frame are not, and a small tile (a detail of a photo) still is not a near-duplicate."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from services.ndd.descriptors import offline
from services.ndd.descriptors.keypoints import PARTIAL_WEIGHT, coverage_credit


def _score(query: np.ndarray, reference: np.ndarray) -> float:
    features = offline.extract(reference)
    prepared = offline.prepare_query(query)
    cosine = float((prepared.vectors @ features.windows.T).max())
    return offline.score(prepared, cosine, features.keypoints)


def _frame(seed: int, size: tuple[int, int] = (960, 720)) -> Image.Image:
    """A busy background (smoothed noise), like a slide's or a web page's."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


def _paste(frame: Image.Image, photo: np.ndarray, width: int, at: tuple[int, int]) -> Image.Image:
    inner = Image.fromarray(photo)
    inner = inner.resize((width, round(width * inner.height / inner.width)), Image.BILINEAR)
    frame = frame.copy()
    frame.paste(inner, at)
    return frame


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "motorcycle"])
def test_photo_inside_a_larger_frame_is_found_both_ways(photos, name):
    framed = np.asarray(_paste(_frame(1), photos[name], 560, (300, 120)))
    assert _score(framed, photos[name]) >= 0.5  # the screenshot searched: the photo is found
    assert _score(photos[name], framed) >= 0.5  # the photo searched: the screenshot is found
    # Whole copies still rank above partial ones.
    assert _score(framed, photos[name]) <= PARTIAL_WEIGHT + 1e-6


def test_each_photo_of_a_collage_is_found(photos):
    frame = Image.new("RGB", (960, 720), (245, 245, 245))
    frame = _paste(frame, photos["astronaut"], 440, (10, 10))
    frame = _paste(frame, photos["coffee"], 460, (490, 10))
    frame = _paste(frame, photos["motorcycle"], 460, (250, 380))
    collage = np.asarray(frame)
    inside = {name: _score(collage, photos[name]) for name in ("astronaut", "coffee", "motorcycle")}
    outside = {name: _score(collage, photos[name]) for name in ("chelsea", "rocket", "immunohistochemistry")}
    # Every photo of the collage scores above every photo not in it; the better-textured ones clear the
    # DAM's default threshold (coffee, a fifth of the frame, keeps fewer keypoints: ~0.4 today).
    assert min(inside.values()) > max(outside.values()) + 0.2, (inside, outside)
    assert sum(score >= 0.5 for score in inside.values()) >= 2, inside


def test_other_photos_in_a_frame_are_not_found(photos):
    framed = np.asarray(_paste(_frame(2), photos["astronaut"], 560, (300, 120)))
    for other in ("coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry"):
        assert _score(framed, photos[other]) < 0.2, other
        assert _score(photos[other], framed) < 0.2, other


def test_coverage_credit_separates_copies_pictures_and_details():
    assert coverage_credit(1.0, 1.0) == 1.0  # a whole copy
    assert coverage_credit(0.7, 0.95) == 1.0  # a 30 % crop
    assert coverage_credit(1.0, 0.3) == pytest.approx(PARTIAL_WEIGHT)  # a photo at 30 % of a frame
    assert coverage_credit(0.3, 1.0) == pytest.approx(PARTIAL_WEIGHT)  # the same seen from the other side
    assert coverage_credit(1.0, 0.1) == 0.0  # a small tile, a detail
    assert coverage_credit(0.5, 0.3) < 0.5  # two frames that only overlap in part
