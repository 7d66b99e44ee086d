"""Video descriptors and video-to-video similarity.

Frames are sampled at a fixed interval (~1 fps) plus the first frame after each shot cut, and each
frame gets the offline global descriptor. Two videos are compared through their frame-similarity
matrix: the chamfer similarity (mean over query frames of the best reference frame, as in
ViSiL/DnS without their learned layers) scores the pair, and the dominant time offset between
matched frames (a Hough vote along the diagonals) gives the aligned segment.

A video shown inside a frame (picture in picture, a slide with a video on it) keeps none of the
whole-frame descriptor. Its inner rectangle is found from long straight edges that stay in place
over a run of samples (the content inside and around it moves; the layout does not), and each
sampled frame of such a run is also described by its inner rectangle(s). Those windows are stored
as extra rows with the frame's time, so the engine's frame index shortlists by them too and a
stored PiP video can be searched by id; a pair of frames scores the best of whole-vs-whole and
window-vs-whole (never window-vs-window, which would match two unrelated layouts).
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

# Inner rectangles are looked for at this width (pixels): straight edges survive it and it is cheap.
DETECT_WIDTH = 160
# Kept for describing windows later: the offline descriptor works at 256 px, a 30 % window of a
# 320 px frame is upsampled only ~3x, and a sample costs 320 x 180 bytes instead of a full frame.
KEEP_WIDTH = 320
# Grey-level jump across two pixels that counts as an edge (an inset's boundary after re-encoding).
EDGE_STEP = 10.0
# An edge pixel belongs to a layout line when it is there in this fraction of a run's probe frames
PERSISTENCE = 0.5
# ... and in this many more (as a fraction) than the run's average edge pixel.
ABOVE_DENSITY = 0.3
# Samples per run: the layout is re-detected every run, so a PiP that moves or appears is followed
# and only a run's samples (small grey copies) are held in memory.
RUN_SAMPLES = 16
# An inner rectangle spans 20-92 % of each side (smaller is not worth describing, larger is the frame).
MIN_SIDE, MAX_SIDE = 0.2, 0.92
# Each side of an accepted rectangle is covered by layout lines over this fraction of its length.
SIDE_COVERAGE = 0.85
# Rectangles are ranked by coverage minus this weight times how far their lines run past the corners.
BEYOND_WEIGHT = 0.5
# ... plus this weight times its area (fraction of the frame).
AREA_WEIGHT = 0.3
# At most this many candidate lines per axis (longest first) and windows per sampled frame.
MAX_LINES, MAX_WINDOWS = 24, 3
# Rectangles overlapping more than this (intersection over union) are one window.
SAME_BOX = 0.85


@dataclass(frozen=True)
class VideoFeatures:
    """Rows sharing a time are views of one sampled frame: the whole frame first, then its inner
    windows (none for most videos). Old stored videos have one row per time and read the same."""

    vectors: np.ndarray  # (rows, dim)
    times: np.ndarray  # (rows,) seconds
    duration: float

    @property
    def frames(self) -> int:
        """Sampled frames (a frame's windows are more rows at its time, not more frames)."""
        return len(np.unique(self.times))


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float


Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), end-exclusive, in the pixels of the frame it is on


def _histogram(rgb: np.ndarray) -> np.ndarray:
    """Colour histogram of a frame: unlike pixels it hardly moves under camera motion, so a large
    change between probes is a cut, not a pan."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
    histogram = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256]).ravel()
    return histogram / max(float(histogram.sum()), 1.0)


def _grey(rgb: np.ndarray, width: int) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    height = max(8, round(grey.shape[0] * width / grey.shape[1]))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def _thin_edges(grey: np.ndarray) -> np.ndarray:
    """Edge pixels of horizontal boundaries, thinned to the row where the jump peaks: a textured
    area is edges everywhere, thinned it leaves only curves, and only a real straight boundary
    leaves a long straight run. The jump is taken across two pixels, so a boundary softened by
    scaling and compression still counts; the peak is dilated by a row, as it wobbles by one
    between frames."""
    jump = np.zeros(grey.shape, np.float32)
    jump[1:-1] = np.abs(grey[2:] - grey[:-2])
    peak = np.zeros(grey.shape, bool)
    peak[1:-1] = (jump[1:-1] > EDGE_STEP) & (jump[1:-1] > jump[:-2]) & (jump[1:-1] >= jump[2:])
    return cv2.dilate(peak.astype(np.uint8), np.ones((3, 1), np.uint8)).astype(bool)


def edge_maps(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) thin edge pixels of a small grey frame; vertical ones transposed, so
    both are found as rows."""
    grey = grey.astype(np.float32)
    return _thin_edges(grey), _thin_edges(np.ascontiguousarray(grey.T))


def _long_runs(lines: np.ndarray, length: int) -> np.ndarray:
    """Pixels of runs along axis 1 at least `length` long (gaps of 2 px bridged): straight lines."""
    mask = lines.astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, max(3, length)), np.uint8))
    return mask.astype(bool)


def _candidate_lines(lines: np.ndarray, minimum: int) -> list[int]:
    """Rows (of `lines`) with at least `minimum` line pixels, strongest first, one per 3-row band."""
    counts = lines.sum(axis=1)
    out: list[int] = []
    for row in np.argsort(-counts, kind="stable"):
        if counts[row] < minimum or len(out) >= MAX_LINES:
            break
        if all(abs(int(row) - kept) > 2 for kept in out):
            out.append(int(row))
    return out


def inner_rectangles(horizontal: np.ndarray, vertical: np.ndarray) -> list[tuple[float, Box]]:
    """(score, box in detection pixels) of inner rectangles outlined by layout lines on all four
    sides, best first; `horizontal` and `vertical` are fractions of a run's samples with an edge
    (vertical transposed)."""
    height, width = horizontal.shape
    # Where edges are dense (texture, detail) any pixel is an edge in about as many probes as the
    # density: layout has to stand out above it, not just above PERSISTENCE.
    threshold = max(PERSISTENCE, float(np.mean(horizontal) + np.mean(vertical)) / 2 + ABOVE_DENSITY)
    rows_on = _long_runs(horizontal >= threshold, round(0.1 * width))
    cols_on = _long_runs(vertical >= threshold, round(0.1 * height))
    ys = _candidate_lines(rows_on, round(MIN_SIDE * width * SIDE_COVERAGE))
    xs = _candidate_lines(cols_on, round(MIN_SIDE * height * SIDE_COVERAGE))
    # The frame's own edges are not candidates: they would close any content line into a
    # "rectangle"; an inset flush with the frame's edge is left to the whole-frame descriptor.
    ys, xs = sorted(ys), sorted(xs)
    if len(ys) < 2 or len(xs) < 2:
        return []
    h_cover, h_beyond = _side_evidence(rows_on, np.asarray(ys), np.asarray(xs))  # (ys, xs, xs): top/bottom
    v_cover, v_beyond = _side_evidence(cols_on, np.asarray(xs), np.asarray(ys))  # (xs, ys, ys): left/right
    y_arr, x_arr = np.asarray(ys), np.asarray(xs)
    # Every (y0, y1) x (x0, x1) pair of pairs of a plausible size at once: a few thousand per run.
    y0s, y1s = _sized_pairs(y_arr, height)
    x0s, x1s = _sized_pairs(x_arr, width)
    if not len(y0s) or not len(x0s):
        return []
    top, bottom = (y0s[:, None], x0s[None, :], x1s[None, :]), (y1s[:, None], x0s[None, :], x1s[None, :])
    left, right = (x0s[None, :], y0s[:, None], y1s[:, None]), (x1s[None, :], y0s[:, None], y1s[:, None])
    cover = np.stack([h_cover[top], h_cover[bottom], v_cover[left], v_cover[right]])
    beyond = np.stack([h_beyond[top], h_beyond[bottom], v_beyond[left], v_beyond[right]])
    tall, wide = (y_arr[y1s] - y_arr[y0s])[:, None], (x_arr[x1s] - x_arr[x0s])[None, :]
    # Lines running on past the corners are only weak counter-evidence (a background can have
    # straight lines of its own that meet the inset's); of nested outlines the larger wins, as a
    # straight line in the content (a horizon, a shelf) cuts an inset into smaller, equally
    # well-outlined parts.
    score = (cover - BEYOND_WEIGHT * beyond).mean(axis=0) + AREA_WEIGHT * tall * wide / (width * height)
    found = [(float(score[i, j]), (int(x_arr[x0s[j]]), int(y_arr[y0s[i]]), int(x_arr[x1s[j]]) + 1,
                                   int(y_arr[y1s[i]]) + 1))
             for i, j in zip(*np.nonzero(cover.min(axis=0) >= SIDE_COVERAGE), strict=True)]
    found.sort(key=lambda f: -f[0])
    kept: list[tuple[float, Box]] = []
    for score_, box in found:
        same = [k for k, (_, other) in enumerate(kept) if _overlap(box, other) >= SAME_BOX]
        if not same:
            if len(kept) < MAX_WINDOWS:
                kept.append((score_, box))
            continue
        # A border's two outlines: the inner one is the content (the outer one, preferred by the
        # area bonus, would put the border into the window).
        k = same[0]
        if _area(box) < _area(kept[k][1]):
            kept[k] = (kept[k][0], box)
    return kept


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _sized_pairs(lines: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (first, second) of sorted candidate lines that are MIN_SIDE-MAX_SIDE of the side apart."""
    first, second = np.triu_indices(len(lines), k=1)
    gap = lines[second] - lines[first]
    keep = (gap >= MIN_SIDE * side) & (gap <= MAX_SIDE * side)
    return first[keep], second[keep]


def _side_evidence(lines: np.ndarray, rows: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate row and each span between two cuts along it: (the fraction of the span
    covered by line pixels, the most covered of the two stretches just past its ends), each
    (rows, cuts, cuts). An inset's outline ends at its corners; a rectangle cut out of longer
    content lines does not. The stretches start a few pixels past the corner, where the crossing
    side's own edge blurs in."""
    sums = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(lines[rows], axis=1)], axis=1)
    length = lines.shape[1]
    start, end = np.meshgrid(cuts, cuts, indexing="ij")

    def covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.clip(a, 0, length), np.clip(b, 0, length)
        taken = sums[:, b] - sums[:, a]
        return np.where(b > a, taken / np.maximum(1, b - a), 0.0)

    gap, reach = 3, np.maximum(4, np.round(0.15 * np.abs(end - start))).astype(np.int64)
    cover = covered(start, end)
    beyond = np.maximum(covered(start - gap - reach, start - gap), covered(end + gap, end + gap + reach))
    return cover, beyond


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union: a border's outer and inner outline are one inset, while nested
    outlines of clearly different sizes both stay candidates (which one is the inset, the line
    evidence alone cannot always tell)."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(1, union)


class LayoutRun:
    """A run of samples and the edge maps of every probe frame decoded meanwhile (4 per second, not
    just the samples: the more frames, the less a slowly moving content line passes for layout)."""

    def __init__(self) -> None:
        self.horizontal: np.ndarray | None = None
        self.vertical: np.ndarray | None = None
        self.probes = 0
        self.greys: list[np.ndarray] = []
        self.whole: list[np.ndarray] = []
        self.times: list[float] = []

    def add_probe(self, rgb: np.ndarray) -> None:
        horizontal, vertical = edge_maps(_grey(rgb, DETECT_WIDTH))
        if self.horizontal is None or self.vertical is None:
            self.horizontal, self.vertical = horizontal.astype(np.float32), vertical.astype(np.float32)
        else:
            self.horizontal += horizontal
            self.vertical += vertical
        self.probes += 1

    def add_sample(self, rgb: np.ndarray, time_s: float) -> None:
        self.whole.append(offline.describe_frame(rgb))
        self.greys.append(_grey(rgb, KEEP_WIDTH))
        self.times.append(time_s)

    def windows(self) -> list[Box]:
        """Inner rectangles of the run in KEEP_WIDTH pixels, shrunk by a detection pixel so a
        border's own edge stays out of the window."""
        if self.horizontal is None or self.vertical is None:
            return []
        scale = KEEP_WIDTH / DETECT_WIDTH
        found = inner_rectangles(self.horizontal / self.probes, self.vertical / self.probes)
        return [(round((x0 + 1) * scale), round((y0 + 1) * scale), round((x1 - 1) * scale), round((y1 - 1) * scale))
                for _, (x0, y0, x1, y1) in found]

    def views(self) -> list[tuple[float, list[np.ndarray]]]:
        """(time, views) of each sample: its whole-frame vector, then one per inner rectangle."""
        boxes = self.windows()
        return [(time_s, [vector] + [offline.describe_frame(grey[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes])
                for time_s, grey, vector in zip(self.times, self.greys, self.whole, strict=True)]


def extract(data: bytes, interval_s: float = 1.0, cut_threshold: float = 0.6, max_frames: int = 3600) -> VideoFeatures:
    probe = probe_video(data)
    vectors: list[np.ndarray] = []
    times: list[float] = []

    def flush(run: LayoutRun) -> None:
        for time_s, views in run.views():
            vectors.extend(views)
            times.extend([time_s] * len(views))

    run = LayoutRun()
    samples = 0
    next_sample = 0.0
    previous: np.ndarray | None = None
    for _, time_s, rgb in iter_video_frames(data, every_seconds=min(CUT_PROBE_S, interval_s)):
        histogram = _histogram(rgb)
        cut = previous is not None and float(np.abs(histogram - previous).sum()) > cut_threshold
        previous = histogram
        run.add_probe(rgb)
        if time_s + 1e-6 >= next_sample or cut:
            run.add_sample(rgb, time_s)
            next_sample = time_s + interval_s
            samples += 1
            if len(run.times) >= RUN_SAMPLES:
                flush(run)
                run = LayoutRun()
            if samples >= max_frames:
                break
    if run.times:
        flush(run)
    if not vectors:
        raise MediaError("the video has no decodable frames")
    duration = max(probe.duration, times[-1])
    return VideoFeatures(np.stack(vectors).astype(np.float32), np.asarray(times, np.float32), duration)


def _frame_starts(times: np.ndarray) -> np.ndarray:
    """Index of each sampled frame's first row (its whole-frame view): rows of a frame are adjacent."""
    if not len(times):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.concatenate([[True], times[1:] != times[:-1]]))


def frame_similarity(query: VideoFeatures, reference: VideoFeatures) -> np.ndarray:
    """(query frames, reference frames) cosine: the best of whole-vs-whole and window-vs-whole
    either way, so a query inside a frame meets the reference and a reference inside a frame
    meets the query."""
    q_starts, r_starts = _frame_starts(query.times), _frame_starts(reference.times)
    similarity = query.vectors @ reference.vectors.T
    q_window = np.ones(len(query.times), bool)
    q_window[q_starts] = False
    r_window = np.ones(len(reference.times), bool)
    r_window[r_starts] = False
    # Two windows are never compared: inner rectangles of two unrelated layouts are easy to match.
    similarity[np.ix_(q_window, r_window)] = -1.0
    return np.maximum.reduceat(np.maximum.reduceat(similarity, q_starts, axis=0), r_starts, axis=1)


def compare(query: VideoFeatures, reference: VideoFeatures) -> tuple[float, list[Segment]]:
    """(calibrated chamfer similarity, aligned matching segments) of a query against a reference."""
    similarity = frame_similarity(query, reference)
    q_frame_times = query.times[_frame_starts(query.times)]
    r_frame_times = reference.times[_frame_starts(reference.times)]
    best = similarity.argmax(axis=1)
    chamfer = float(similarity.max(axis=1).mean())
    score = calibrate(offline.NAME, chamfer)
    matched = similarity[np.arange(len(best)), best] >= MATCH_COSINE
    if not matched.any():
        return score, []
    offsets = r_frame_times[best] - q_frame_times
    # Vote: the offset agreeing with the most matched frames (within the tolerance) wins.
    candidates = offsets[matched]
    support = [(np.abs(candidates - o) <= OFFSET_TOLERANCE_S).sum() for o in candidates]
    winner = candidates[int(np.argmax(support))]
    offset = float(np.median(candidates[np.abs(candidates - winner) <= OFFSET_TOLERANCE_S]))
    aligned = matched & (np.abs(offsets - offset) <= OFFSET_TOLERANCE_S)
    q_times, r_times = q_frame_times[aligned], r_frame_times[best[aligned]]
    segment = Segment(
        query_start=round(float(q_times.min()), 2),
        query_end=round(float(q_times.max()), 2),
        reference_start=round(float(r_times.min()), 2),
        reference_end=round(float(r_times.max()), 2),
    )
    # Frames that match out of temporal order (shuffled or looped content) lower the score.
    consistency = float(aligned.sum()) / float(len(best))
    return score * (0.5 + 0.5 * consistency), [segment]
