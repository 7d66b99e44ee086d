"""The offline descriptor scores every listed edit of a photo high and other photos low."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from services.ndd.descriptors import offline
from services.ndd.descriptors.calibration import calibrate


def _jpeg(image: Image.Image, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _overlay(image: Image.Image) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, image.width // 4, image.height // 4), fill=(255, 0, 0))  # a "logo"
    draw.text((20, image.height - 40), "SOME CAPTION TEXT", fill=(255, 255, 255))
    return image


EDITS = {
    "resize": lambda im: np.asarray(im.resize((im.width // 3, im.height // 3))),
    "crop 30%": lambda im: np.asarray(im.crop((int(im.width * 0.15), 0, im.width, int(im.height * 0.82)))),
    "jpeg q20": lambda im: _jpeg(im, 20),
    "colour": lambda im: np.asarray(ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.4)).enhance(0.2)),
    "rotate 7deg": lambda im: np.asarray(im.rotate(7, resample=Image.BILINEAR)),
    "overlay": lambda im: np.asarray(_overlay(im)),
    "flip": lambda im: np.asarray(im.transpose(Image.FLIP_LEFT_RIGHT)),
}


def _score(query: np.ndarray, reference: np.ndarray) -> float:
    features = offline.extract(reference)
    prepared = offline.prepare_query(query)
    cosine = float((prepared.vectors @ features.windows.T).max())
    return offline.score(prepared, cosine, features.keypoints)


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_edited_copy_scores_high(photos, name, edit):
    original = photos[name]
    assert _score(EDITS[edit](Image.fromarray(original)), original) >= 0.6


def test_other_photos_score_low(photos):
    names = list(photos)
    scores = [_score(photos[a], photos[b]) for a in names for b in names if a != b]
    assert max(scores) < 0.2


def test_small_tile_of_a_photo_is_not_a_near_duplicate(photos):
    photo = photos["astronaut"]
    tile = photo[100:260, 150:310]  # ~10 % of the photo
    assert _score(photo, tile) < 0.2


def test_mirror_trick_equals_describing_the_mirrored_image(photos):
    rgb = photos["chelsea"]
    mirrored = offline.describe_query(np.ascontiguousarray(rgb[:, ::-1]))
    direct = offline.describe_query(rgb)
    half = len(direct) // 2
    # The whole-frame vector of the mirrored image equals the sign-flipped vector of the original.
    assert np.allclose(mirrored[0], direct[half], atol=1e-4)


def test_calibration_maps_to_unit_interval():
    assert calibrate("offline", -1.0) == 0.0
    assert calibrate("offline", 1.0) == 1.0
    assert 0.0 < calibrate("offline", 0.8) < 1.0
    assert calibrate("deep", 0.3) == 0.0


def test_flat_images_fall_back_to_the_global_score():
    flat = np.full((120, 160, 3), 128, np.uint8)
    flat[:, 80:] = 200
    assert _score(flat, flat) > 0.9
