"""The packaged models' decoders on heads built by hand, so each formula is checked on its own: NanoDet's
GFL bins, BlazeFace's anchors and tiles, FaceRes's square crop and the NHWC input preparation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from services.annotation.face_detection.blazeface import BlazeFaceDetector, anchor_centres, decode_blazeface
from services.annotation.models.faceres import square_crop
from services.annotation.models.nanodet import decode_nanodet, nanodet_input
from services.annotation.models.preprocess import model_input


def test_nanodet_box_is_the_expectation_of_the_bins_around_the_cell_centre() -> None:
    size, reg_max = 64, 10
    scores = [np.zeros((1, (size // s) ** 2, 3), np.float32) for s in (8, 16, 32)]
    regs = [np.full((1, (size // s) ** 2, 4 * (reg_max + 1)), -50.0, np.float32) for s in (8, 16, 32)]
    cell = 1 * 4 + 2  # stride 16, grid 4: row 1, column 2 -> centre (40, 24)
    scores[1][0, cell, 2] = 0.9
    bins = regs[1][0, cell].reshape(4, reg_max + 1)
    bins[0, 1] = bins[1, 1] = 50.0  # left, top: 1 bin
    bins[2, 2] = bins[3, 2] = 50.0  # right, bottom: 2 bins
    boxes, found, ids = decode_nanodet(scores, regs, [8, 16, 32], size, reg_max, 0.5)
    assert ids.tolist() == [2] and np.allclose(found, [0.9])
    assert np.allclose(boxes[0], [40 - 16, 24 - 16, 40 + 32, 24 + 32], atol=1e-3)


def test_nanodet_input_is_bgr_normalised_with_black_padding_normalised_too() -> None:
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = 255  # red
    mean, std = np.array([1.0, 2.0, 3.0], np.float32), np.array([2.0, 2.0, 2.0], np.float32)
    tensor, lb = nanodet_input(rgb, 40, mean, std)
    assert tensor.shape == (3, 40, 40) and lb.scale == 2 and lb.pad_x == lb.pad_y == 0
    assert np.allclose(tensor[2, 0, 0], (255 - 3) / 2)  # red lands in the last (BGR) channel
    assert np.allclose(tensor[:, 39, 0], -mean / std)  # padding: black, normalised


def test_blazeface_anchors_and_decoding() -> None:
    centres = anchor_centres(128, ((8, 2), (16, 6)))
    assert centres.shape == (896, 2) and np.allclose(centres[0], [4, 4]) and np.allclose(centres[512], [8, 8])
    logits = np.full(896, -20.0, np.float32)
    regs = np.zeros((896, 16), np.float32)
    logits[513] = 5.0
    regs[513, :4] = [2, -2, 20, 10]
    boxes, scores, points = decode_blazeface(logits, regs, centres, 0.5, 0.3)
    assert np.allclose(boxes, [[8 + 2 - 10, 8 - 2 - 5, 8 + 2 + 10, 8 - 2 + 5]]) and scores[0] > 0.99
    assert points.shape == (1, 6, 2) and np.allclose(points[0, 0], [8, 8])


def test_blazeface_tiles_cover_the_image() -> None:
    spec = SimpleNamespace(name="f", max_batch_size=0, config=SimpleNamespace(input=[SimpleNamespace(name="image")]),
                           meta=SimpleNamespace(params={"input_size": 128, "anchors": [[8, 2], [16, 6]],
                                                        "score_outputs": ["s"], "box_outputs": ["b"],
                                                        "tile_levels": 1, "min_tile": 192}))
    detector = BlazeFaceDetector(SimpleNamespace(), spec)
    squares = detector.windows(512, 600)
    assert squares[0] == (0, 0, 600) and len(squares) == 1 + 3 * 3
    assert all(x + s <= 600 and y + s <= 512 for x, y, s in squares[1:])
    assert detector.windows(300, 300) == [(0, 0, 300)]  # half of 300 is below min_tile


def test_square_crop_grows_the_box_and_pads_black() -> None:
    rgb = np.full((100, 100, 3), 200, np.uint8)
    out = square_crop(rgb, (0, 0, 40, 20), 1.25, 50)  # centre (20, 10), side 50: reaches past the top-left
    assert out.shape == (50, 50, 3)
    assert out[0, 0].tolist() == [0, 0, 0] and out[40, 40].tolist() == [200, 200, 200]


def test_nhwc_model_input_resizes_crops_and_subtracts_the_mean_in_pixels() -> None:
    rgb = np.zeros((300, 300, 3), np.uint8)
    rgb[..., 2] = 100  # blue
    x = model_input(rgb, {"layout": "NHWC", "input_size": 224, "resize": 256, "color": "BGR",
                          "mean": [10.0, 20.0, 30.0], "scale": 0.5})
    assert x.shape == (224, 224, 3)
    assert np.allclose(x[0, 0], [(100 - 10) * 0.5, (0 - 20) * 0.5, (0 - 30) * 0.5])
