"""Non-maximum suppression (services.annotation.face_detection.nms) and the YOLOv8 decoding that uses it: what is
suppressed and what is kept, by IoU (OpenCV) and by intersection over the smaller box (numpy), class-aware or not."""

from __future__ import annotations

import numpy as np
import pytest

from services.annotation.face_detection.nms import iomin_matrix, iou_matrix, nms
from services.annotation.models.detection import decode_yolov8

# Two boxes of IoU 1/3 (50 / 150), one far away, one inside the first (IoU 0.25, inside: intersection / smaller = 1).
A, B, FAR, INSIDE = [0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110], [0, 0, 5, 5]


def test_iou_and_iomin_of_known_boxes() -> None:
    assert iou_matrix([A], [B, FAR, INSIDE])[0] == pytest.approx([1 / 3, 0, 0.25])
    assert iomin_matrix([A], [B, FAR, INSIDE])[0] == pytest.approx([0.5, 0, 1])
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]]).tolist() == [[0.0]]  # empty boxes overlap nothing


def test_the_best_of_overlapping_boxes_is_kept_and_the_rest_suppressed() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.4).tolist() == [1, 2]
    # Over the threshold suppresses, at it or under does not.
    assert nms([A, B], [0.9, 0.8], 0.3).tolist() == [0]
    assert nms([A, B], [0.9, 0.8], 0.34).tolist() == [0, 1]
    assert nms([A, B], [0.8, 0.9], 0.3).tolist() == [1]  # the better score wins, whatever the input order
    # Suppression is not transitive: B's neighbour C survives when B itself was suppressed by A.
    c = [10, 0, 20, 10]
    assert nms([A, B, c], [0.9, 0.8, 0.7], 0.3).tolist() == [0, 2]


def test_ties_keep_input_order_and_scores_only_rank() -> None:
    assert nms([A, A, FAR], [0.5, 0.5, 0.5], 0.5).tolist() == [0, 2]
    # Zero and negative scores are ranked, not dropped (OpenCV alone drops scores not above its threshold).
    assert nms([A, FAR, INSIDE], [0.0, -1.0, 0.0], 0.5).tolist() == [0, 2, 1]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    assert nms([A, B, FAR, INSIDE], [4, 3, 2, 1], 0.9, max_keep=2).tolist() == [0, 1]


def test_classes_suppress_only_their_own() -> None:
    boxes, scores = [A, A, A], [0.9, 0.8, 0.7]
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, classes=[0, 1, 0]).tolist() == [0, 1]
    # Negative coordinates (a box past the letterbox edge) must not let classes overlap after offsetting apart.
    corner, past = [590, 590, 640, 640], [-52, -52, -2, -2]
    assert nms([corner, past], [0.9, 0.8], 0.1, classes=[0, 1]).tolist() == [0, 1]


def test_iomin_drops_a_box_inside_a_better_one() -> None:
    assert nms([A, INSIDE], [0.9, 0.8], 0.5).tolist() == [0, 1]  # IoU 0.25: both kept
    assert nms([A, INSIDE], [0.9, 0.8], 0.5, overlap="iomin").tolist() == [0]
    assert nms([A, INSIDE], [0.9, 0.8], 0.5, overlap="iomin", classes=[0, 1]).tolist() == [0, 1]
    assert nms([A, B, FAR], [0.9, 0.8, 0.7], 0.6, overlap="iomin").tolist() == [0, 1, 2]  # B: 0.5 of itself
    with pytest.raises(ValueError, match="overlap must be"):
        nms([A], [1.0], 0.5, overlap="giou")
    with pytest.raises(ValueError, match="1 boxes but 2 scores"):
        nms([A], [1.0, 0.5], 0.5)


def test_opencv_and_the_numpy_loop_agree_on_random_clusters() -> None:
    """The IoU path (OpenCV) keeps what a plain greedy loop over iou_matrix keeps."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 120))
        xy = rng.uniform(-20, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 60, (n, 2))], axis=1)
        scores = rng.random(n).round(2)  # ties included
        classes = rng.integers(0, 3, n)
        for labels in (None, classes):
            order, expected = list(np.argsort(-scores, kind="stable")), []
            while order:
                best = order.pop(0)
                expected.append(int(best))
                overlaps = iou_matrix(boxes[best : best + 1], boxes[order])[0]
                same = np.ones(len(order), bool) if labels is None else labels[order] == labels[best]
                order = [i for i, o, s in zip(order, overlaps, same, strict=True) if not (s and o > 0.45)]
            assert nms(boxes, scores, 0.45, classes=labels).tolist() == expected


def _yolo_output(rows: list[tuple[float, float, float, float, int, float]], classes: int = 3) -> np.ndarray:
    """[4 + classes, N] from (cx, cy, w, h, class, score) rows."""
    out = np.zeros((4 + classes, len(rows)), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[:4, i] = cx, cy, w, h
        out[4 + cls, i] = score
    return out


def test_decode_yolov8_is_class_aware_unless_asked_not_to_be() -> None:
    out = _yolo_output([
        (50, 50, 20, 20, 0, 0.9),  # a person
        (51, 50, 20, 20, 0, 0.8),  # the same person again: suppressed
        (50, 51, 20, 20, 1, 0.7),  # a bicycle in the same place: another class, kept
        (200, 200, 10, 10, 2, 0.1),  # under the score threshold
    ])
    boxes, scores, classes = decode_yolov8(out, 0.25, 0.45)
    assert classes.tolist() == [0, 1] and scores.tolist() == pytest.approx([0.9, 0.7])
    assert boxes[0].tolist() == [40, 40, 60, 60]
    _, _, agnostic = decode_yolov8(out, 0.25, 0.45, class_aware=False)
    assert agnostic.tolist() == [0]
    _, scores, _ = decode_yolov8(out, 0.25, 0.45, max_detections=1)
    assert scores.tolist() == pytest.approx([0.9])
    boxes, _, _ = decode_yolov8(out, 0.95, 0.45)
    assert boxes.shape == (0, 4)
