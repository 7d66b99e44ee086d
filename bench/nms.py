"""Non-maximum suppression: the project's nms() (services.annotation.face_detection.nms, IoU through OpenCV's
cv2.dnn.NMSBoxesBatched, class-aware) against a vectorised numpy greedy loop (the alternative it was chosen over)
on YOLO-like candidate sets, in the same process; prints the time ratio and whether both keep the same boxes.

Candidates: objects of random classes, each found by a cluster of jittered boxes (as a detector's anchors
around an object are), plus scattered low-score boxes; sizes from a confident image (about 100 boxes after
the score threshold) to a threshold near zero on all 8400 YOLOv8 anchors.

    python bench/nms.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.annotation.face_detection.nms import nms


def candidates(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    objects = max(1, n // 40)
    centres = rng.uniform(40, 600, (objects, 2))
    sizes = rng.uniform(20, 200, (objects, 2))
    labels = rng.integers(0, 80, objects)
    which = rng.integers(0, objects, n)
    jitter = rng.normal(0, 0.08, (n, 4))
    cx = centres[which, 0] + jitter[:, 0] * sizes[which, 0]
    cy = centres[which, 1] + jitter[:, 1] * sizes[which, 1]
    w = sizes[which, 0] * np.exp(jitter[:, 2])
    h = sizes[which, 1] * np.exp(jitter[:, 3])
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores = np.clip(rng.beta(2, 5, n) + 0.3 * (rng.random(n) < 0.1), 0, 1)
    classes = np.where(rng.random(n) < 0.9, labels[which], rng.integers(0, 80, n))
    return boxes, scores, classes


def numpy_loop(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy class-aware IoU NMS: each kept box checks the remaining boxes of its class in one numpy step."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        same = rest[classes[rest] == classes[best]]
        inter = np.clip(np.minimum(x1[best], x1[same]) - np.maximum(x0[best], x0[same]), 0, None) * np.clip(
            np.minimum(y1[best], y1[same]) - np.maximum(y0[best], y0[same]), 0, None
        )
        suppressed = same[inter / (areas[best] + areas[same] - inter) > threshold]
        order = rest[~np.isin(rest, suppressed)] if suppressed.size else rest
    return np.asarray(keep, np.int64)


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    result = fn()
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - start) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 20
    print(f"{'boxes':>6} {'kept':>5} {'numpy loop ms':>14} {'nms() ms':>9} {'loop/nms()':>11}  same boxes")
    for n in (100, 300, 1000, 3000, 8400):
        boxes, scores, classes = candidates(n, seed=n)
        t_np, theirs = timed(lambda b=boxes, s=scores, c=classes: numpy_loop(b, s, c, 0.45), repeats)
        t_cv, ours = timed(lambda b=boxes, s=scores, c=classes: nms(b, s, 0.45, classes=c), repeats)
        same = ours.tolist() == theirs.tolist()
        print(f"{n:>6} {len(ours):>5} {t_np * 1e3:>14.2f} {t_cv * 1e3:>9.2f} {t_np / t_cv:>11.1f}  {same}")


if __name__ == "__main__":
    main()
