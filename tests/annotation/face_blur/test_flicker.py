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


EVERY = 10


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


def _still_face_pipeline() -> tuple[pl.FaceBlurPipeline, av.VideoFrame, np.ndarray]:
    from tests.annotation.face_blur.synthetic import Appearance

    scenario = [Appearance("astronaut", 0, 39, 0.3, 0.1, 0.3, 0.1, 0.8)]
    source = open_source(make_video(160, 120, seconds=4, fps=10, audio=False, scenario=scenario))
    frame = next(item for item in demux(source) if isinstance(item, av.VideoFrame))
    pipeline = pl.FaceBlurPipeline(source, HaarFaceDetector(), every=10, equirectangular=False, max_side=None)
    return pipeline, frame, frame.to_ndarray(format="rgb24")


def _seen_before(pipeline: pl.FaceBlurPipeline, frame: av.VideoFrame, boxes: np.ndarray) -> None:
    """As if the previous window check had found `boxes` on `frame`."""
    pipeline._converted = (frame, frame.to_ndarray(format="rgb24"))
    gray, scale = pipeline._gray(frame)
    pipeline._followed = pipeline._faces_to_follow(boxes, [0] * len(boxes), [], 0, gray, scale)


async def test_a_face_the_window_check_missed_is_looked_for_again_where_it_was() -> None:
    pipeline, frame, _ = _still_face_pipeline()
    seen = await pipeline.detect(frame)
    assert len(seen) == 1
    checked = pipeline.frames_checked
    # The next window check "missed" it: the continuation looks again, as an expected face.
    _seen_before(pipeline, frame, seen)
    continued = await pipeline._continue(frame, EMPTY, EVERY)
    assert len(continued) == 1 and np.abs(continued[0] - seen[0]).max() < 0.2 * (seen[0, 2] - seen[0, 0])
    assert pipeline.frames_checked == checked, "the same frame is not counted twice"
    assert pipeline._followed[0].misses == 1, "continued, not found by the check: counts towards FOLLOW_CHECKS"
    # Found by the check itself, or never seen before: nothing to look for again.
    _seen_before(pipeline, frame, seen)
    assert np.array_equal(await pipeline._continue(frame, seen, EVERY), seen)
    _seen_before(pipeline, frame, EMPTY)
    assert len(await pipeline._continue(frame, EMPTY, EVERY)) == 0
    assert pipeline.timings["detect"] > 0


async def test_a_face_that_left_is_not_continued() -> None:
    pipeline, frame, _ = _still_face_pipeline()
    empty = open_source(make_video(160, 120, seconds=1, fps=10, audio=False, scenario=[]))
    no_face = next(item for item in demux(empty) if isinstance(item, av.VideoFrame))
    # Neither the detector nor the template of the face (follow.py) finds it on the empty background.
    _seen_before(pipeline, frame, await pipeline.detect(frame))
    assert len(pipeline._followed) == 1
    assert len(await pipeline._continue(no_face, EMPTY, EVERY)) == 0


async def test_a_face_is_followed_for_at_most_follow_checks_in_a_row() -> None:
    from services.annotation.face_blur.follow import FOLLOW_CHECKS

    pipeline, frame, _ = _still_face_pipeline()
    seen = await pipeline.detect(frame)
    _seen_before(pipeline, frame, seen)
    for _ in range(FOLLOW_CHECKS):
        assert len(await pipeline._continue(frame, EMPTY, EVERY)) == 1
    assert len(await pipeline._continue(frame, EMPTY, EVERY)) == 0, "then the detector must find it again"
