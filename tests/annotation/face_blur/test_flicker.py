"""The pipeline's answer to a detector that flickers: a face found on two checked frames stays
blurred between them, and for half a sampling step after the last check that found it. Driven
through the pipeline's queue with real decoded frames and the checks' results given directly, so
that which check "misses" is exact."""

from __future__ import annotations

import av
import numpy as np

from services.annotation.face_blur import pipeline as pl
from services.annotation.face_blur.boxes import EMPTY, as_boxes
from services.annotation.face_blur.video_io import demux, open_source
from services.annotation.face_detection.haar import HaarFaceDetector
from tests.annotation.face_blur.synthetic import make_video

FACE = as_boxes([[40, 30, 80, 70]])


def _pipeline(every: int) -> tuple[pl.FaceBlurPipeline, list[av.VideoFrame]]:
    source = open_source(make_video(160, 120, seconds=4, fps=10, audio=False, scenario=[]))
    frames = [item for item in demux(source) if isinstance(item, av.VideoFrame)]
    return pl.FaceBlurPipeline(source, HaarFaceDetector(), every=every, equirectangular=False, max_side=None), frames


def _blurred(pipeline: pl.FaceBlurPipeline, checks: dict[int, np.ndarray], frames: list[av.VideoFrame]) -> list[int]:
    """Queues the frames (checked ones with their boxes, the others with none, as when a check
    in between missed the face) and returns the frames that end up with a box."""
    for index, frame in enumerate(frames[: max(checks) + 1]):
        pipeline._queue(index, frame, checks.get(index, EMPTY))
    for index in sorted(checks):
        pipeline._bridge(index, checks[index])
    items = pipeline._ready(final=True)
    return [item.index for item in items if len(item.boxes) or item.extra]


def test_a_face_missed_by_one_check_between_two_that_find_it_stays_blurred() -> None:
    pipeline, frames = _pipeline(every=10)
    blurred = _blurred(pipeline, {0: FACE, 10: EMPTY, 20: FACE, 30: EMPTY}, frames)
    hold = pipeline.hold
    assert hold == 5
    # 0..20 bridged (the miss at 10 included), then held for half a step after 20.
    assert blurred == list(range(0, 20 + hold + 1))


def test_faces_far_apart_or_beyond_the_bridge_span_are_not_bridged() -> None:
    pipeline, frames = _pipeline(every=10)
    elsewhere = FACE + np.array([90, 0, 90, 0])
    blurred = _blurred(pipeline, {0: FACE, 10: EMPTY, 20: elsewhere, 30: EMPTY}, frames)
    # Each sighting: the temporal pad before it (2 frames), the hold after it (5).
    assert blurred == [*range(0, 6), *range(18, 26)]
    pipeline, frames = _pipeline(every=5)
    # Every 5: the bridge spans 10 frames; a face seen again 15 frames later is another sighting.
    blurred = _blurred(pipeline, {0: FACE, 5: EMPTY, 10: EMPTY, 15: FACE, 20: EMPTY}, frames)
    assert pipeline.hold == 2
    assert blurred == [*range(0, 3), *range(13, 18)]
