"""Video descriptors and video-to-video similarity.

Frames are sampled at a fixed interval (~1 fps) plus the first frame after each shot cut, and each
frame gets the offline global descriptor. Two videos are compared through their frame-similarity
matrix: the chamfer similarity (mean over query frames of the best reference frame, as in
ViSiL/DnS without their learned layers) scores the pair, and the dominant time offset between
matched frames (a Hough vote along the diagonals) gives the aligned segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from services.common.media import MediaError, iter_video_frames, probe_video
from services.ndd.descriptors import offline
from services.ndd.descriptors.calibration import calibrate

# Frames are decoded at this rate to find shot cuts between the ~1 fps samples.
CUT_PROBE_S = 0.25
# A query frame matches a reference frame above this raw cosine.
MATCH_COSINE = 0.8
# Time offsets closer than this (seconds) vote for the same alignment.
OFFSET_TOLERANCE_S = 1.5


@dataclass(frozen=True)
class VideoFeatures:
    vectors: np.ndarray  # (frames, dim)
    times: np.ndarray  # (frames,) seconds
    duration: float


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float


def _histogram(rgb: np.ndarray) -> np.ndarray:
    """Colour histogram of a frame: unlike pixels it hardly moves under camera motion, so a large
    change between probes is a cut, not a pan."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
    histogram = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256]).ravel()
    return histogram / max(float(histogram.sum()), 1.0)


def extract(data: bytes, interval_s: float = 1.0, cut_threshold: float = 0.6, max_frames: int = 3600) -> VideoFeatures:
    probe = probe_video(data)
    vectors: list[np.ndarray] = []
    times: list[float] = []
    next_sample = 0.0
    previous: np.ndarray | None = None
    for _, time_s, rgb in iter_video_frames(data, every_seconds=min(CUT_PROBE_S, interval_s)):
        histogram = _histogram(rgb)
        cut = previous is not None and float(np.abs(histogram - previous).sum()) > cut_threshold
        previous = histogram
        if time_s + 1e-6 >= next_sample or cut:
            vectors.append(offline.describe_frame(rgb))
            times.append(time_s)
            next_sample = time_s + interval_s
            if len(vectors) >= max_frames:
                break
    if not vectors:
        raise MediaError("the video has no decodable frames")
    duration = max(probe.duration, times[-1])
    return VideoFeatures(np.stack(vectors).astype(np.float32), np.asarray(times, np.float32), duration)


def compare(query: VideoFeatures, reference: VideoFeatures) -> tuple[float, list[Segment]]:
    """(calibrated chamfer similarity, aligned matching segments) of a query against a reference."""
    similarity = query.vectors @ reference.vectors.T
    best = similarity.argmax(axis=1)
    chamfer = float(similarity.max(axis=1).mean())
    score = calibrate(offline.NAME, chamfer)
    matched = similarity[np.arange(len(best)), best] >= MATCH_COSINE
    if not matched.any():
        return score, []
    offsets = reference.times[best] - query.times
    # Vote: the offset agreeing with the most matched frames (within the tolerance) wins.
    candidates = offsets[matched]
    support = [(np.abs(candidates - o) <= OFFSET_TOLERANCE_S).sum() for o in candidates]
    winner = candidates[int(np.argmax(support))]
    offset = float(np.median(candidates[np.abs(candidates - winner) <= OFFSET_TOLERANCE_S]))
    aligned = matched & (np.abs(offsets - offset) <= OFFSET_TOLERANCE_S)
    q_times, r_times = query.times[aligned], reference.times[best[aligned]]
    segment = Segment(
        query_start=round(float(q_times.min()), 2),
        query_end=round(float(q_times.max()), 2),
        reference_start=round(float(r_times.min()), 2),
        reference_end=round(float(r_times.max()), 2),
    )
    # Frames that match out of temporal order (shuffled or looped content) lower the score.
    consistency = float(aligned.sum()) / float(len(best))
    return score * (0.5 + 0.5 * consistency), [segment]
