"""Sampled face detection with bisection, box carry-over, box blur and re-encoding (source document 3.4.2).

The video streams through in windows of `every` frames; memory holds about three windows (frames
wait for the bridge span, see BRIDGE_STEPS) whatever the length. For each window [a, b] the
detector runs on frame b (frame a was checked before). When a and b show the same faces, the
frames between get boxes interpolated between a's and b's; when they differ (a face appeared,
left, or moved too far to tell) the middle frame is checked and each half is resolved the same
way, down to neighbouring frames (binary search for the change). Those checks look only near the
faces that changed and only for faces of their size, with the weaker evidence an expected face
needs; a face the check of b missed is looked for once more where a showed it (_continue).

Detection runs on a copy scaled down to `max_side` (PyAV/swscale does the scaling while converting
to RGB, and only for the frames checked). Frames with faces are blurred on their YUV planes; the
others go to the encoder untouched, or, where the source allows it, the GOPs without a face are
copied from the source and only those with one are re-encoded (gop_copy.py). Reading the next
window, detecting and writing the previous window overlap in threads.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import av
import cv2
import numpy as np

from services.annotation.face_blur import boxes as bx
from services.annotation.face_blur import follow as fl
from services.annotation.face_blur.blur import box_blur_frame
from services.annotation.face_blur.gop_copy import EncodingReport, GopCopyOutput, open_output
from services.annotation.face_blur.tracks import FaceTrack, TrackBuilder
from services.annotation.face_blur.video_io import BlurredOutput, SourceVideo, demux
from services.annotation.face_detection.base import FaceDetector
from services.annotation.face_detection.nms import iomin_matrix, nms

# 360° video: the frame is wrapped by this fraction of its width on each side before detection,
# so a face up to that wide that crosses the left/right seam is seen whole once.
WRAP_PAD = 0.2
# Faces are also blurred on this many frames before they are first and after they are last
# detected: a face entering the picture is identifiable a frame or two before detectors fire.
TEMPORAL_PAD = 2
# Bisection checks look only this many face sizes around the faces that changed, unless that
# region is over ROI_MAX_AREA of the frame anyway, and only for faces of about their size: from
# SIZE_RANGE[0] times the smallest to SIZE_RANGE[1] times the largest (small windows are most of a
# Haar search, so a search for one known face costs a fraction of a full one).
ROI_REACH = 1.5
ROI_MAX_AREA = 0.5
SIZE_RANGE = (0.6, 1.7)
# In a held gap (see _resolve), boxes whose centres are within this many face sizes are taken for
# the same face and interpolated.
HOLD_REACH = 2.5
# A face found on two checked frames at most this many sampling steps apart stays blurred on every
# frame between them, even where checks in between missed it: Haar (and any detector) flickers on
# turned heads, and a sampled check that lands on a missed frame must not cut the track.
BRIDGE_STEPS = 2
# ... and after the last check that found a face, it stays blurred where it was seen for this share
# of a sampling step: the checks after it may have landed on frames where the detector flickered.
HOLD_STEPS = 0.5
# Detection input: `max_side` pixels on the longer side, or this fraction of the frame's longer
# side when that is more. Off by default: on the bench's 1080p video, 0.5 (960 pixels) raised
# recall against the full-size detector from 0.854 to 0.875 only, for 2.5x the detection time.
MAX_SIDE_FRACTION: float | None = None


@dataclass
class _Pending:
    index: int
    time_s: float
    frame: av.VideoFrame
    boxes: np.ndarray  # the faces found or interpolated on this frame
    extra: list[np.ndarray]  # faces of nearby frames that this frame's boxes do not cover


class FaceBlurPipeline:
    def __init__(
        self,
        source: SourceVideo,
        detector: FaceDetector,
        *,
        every: int,
        equirectangular: bool,
        max_side: int | None,
        max_side_fraction: float | None = None,
        follow: bool = True,
        data: bytes | None = None,
        copy_gops: bool = True,
    ) -> None:
        self.source = source
        # The source's bytes, read again by the GOP copy (without them: a full re-encode).
        self.data = data
        self.copy_gops = copy_gops and data is not None
        self.encoding: EncodingReport | None = None
        self.detector = detector
        self.every = every
        self.wrap = equirectangular
        self.width = source.video.codec_context.width
        self.height = source.video.codec_context.height
        if max_side and max_side_fraction:
            max_side = max(max_side, round(max_side_fraction * max(self.width, self.height)))
        self.max_side = max_side
        self.wrap_width = float(self.width) if equirectangular else None
        # Gaps this short between checked frames that both show faces are not bisected further.
        self.hold_gap = max(1, every // 3)
        self.frames_checked = 0
        self.frames_written = 0
        # Window checks on which a face the detector missed was followed by template matching.
        self.frames_followed = 0
        # Faces of the last window check, followed to the next (see _continue).
        self._followed: list[fl.Followed] = []
        self._followed_before: list[fl.Followed] = []  # ... and those of the check before it
        self.follow = follow
        self.timings: dict[str, float] = defaultdict(float)
        self.tracks = TrackBuilder(self.width, self.height, equirectangular)
        self._pending: deque[_Pending] = deque()
        # Checked frames (index, boxes found) within the bridge span of the newest one.
        self._checked: deque[tuple[int, np.ndarray]] = deque()
        self.bridge = BRIDGE_STEPS * every
        self.hold = max(TEMPORAL_PAD, round(HOLD_STEPS * every))
        self._demux = demux(source)
        self._eof = False
        self.output: BlurredOutput | GopCopyOutput | None = None
        # The last frame converted for detection and its RGB (detectors only read it).
        self._converted: tuple[av.VideoFrame, np.ndarray] | None = None

    # -- detection -------------------------------------------------------------------------

    async def detect(
        self,
        frame: av.VideoFrame,
        roi: tuple[int, int, int, int] | None = None,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
        again: bool = False,
    ) -> np.ndarray:
        """Face boxes of one frame in full-frame pixels (centre inside the frame when wrapping);
        only inside `roi` (x0, y0, x1, y1 full-frame pixels) and of about `sizes` (smallest,
        largest face side in full-frame pixels) when given; `expected` as FaceDetector.detect.
        `again`: this frame was checked already (it is not counted twice in frames_checked)."""
        start = time.perf_counter()
        width, height = frame.width, frame.height
        scale = 1.0
        if self.max_side and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
        det_w, det_h = max(2, round(width * scale)), max(2, round(height * scale))
        if self._converted is not None and self._converted[0] is frame:
            rgb = self._converted[1]  # the same frame checked again (_continue): converted once
        else:
            # Area averaging: the sharpest downscale, and the one detectors see in the per-frame path.
            rgb = await asyncio.to_thread(
                frame.to_ndarray, width=det_w, height=det_h, format="rgb24", interpolation="AREA"
            )
            self._converted = (frame, rgb)
        sx, sy = width / det_w, height / det_h
        offset_x = offset_y = 0.0
        if roi is not None:
            x0, y0 = int(roi[0] / sx), int(roi[1] / sy)
            x1, y1 = int(np.ceil(roi[2] / sx)), int(np.ceil(roi[3] / sy))
            rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            offset_x, offset_y = float(x0), float(y0)
        elif self.wrap:
            pad = max(1, round(det_w * WRAP_PAD))
            rgb = np.concatenate([rgb[:, -pad:], rgb, rgb[:, :pad]], axis=1)
            offset_x = -float(pad)
        if sizes is not None:
            sizes = (sizes[0] / sx, sizes[1] / sx)
        faces = await self.detector.detect(rgb, None, sizes=sizes, expected=expected)
        found = bx.as_boxes(
            [[f.x_min + offset_x, f.y_min + offset_y, f.x_max + offset_x, f.y_max + offset_y] for f in faces]
        )
        if len(found):
            found = found * np.array([sx, sy, sx, sy])
            if self.wrap:
                # A face near the seam is seen twice (once in the padding): keep one.
                found = bx.canonical(found, self.wrap_width)
                found = found[nms(found, np.array([f.score for f in faces]), 0.3)]
        self.frames_checked += 0 if again else 1
        self.timings["detect"] += time.perf_counter() - start
        return found

    async def _check_between(
        self, frame: av.VideoFrame, a: np.ndarray, b: np.ndarray, t: float, offsets: tuple[int, int] = (0, 0)
    ) -> np.ndarray:
        """The faces of a frame at fraction t between two checked frames a and b that differ.

        Between them only the faces that a and b do not share changed (the sampling assumes as
        much), so the detector looks only around those and only for faces of their size: a crop of
        a few face sizes instead of the whole frame, a few scales instead of all. Shared faces are
        taken where interpolation puts them, unless the check sees them itself."""
        pairs = bx.pairs_nearby(a, b, self.wrap_width)
        changed = bx.unpaired(a, b, pairs)
        if not len(changed):
            return await self.detect(frame)
        side = bx.sizes(changed)
        sizes = (float(side.min()) * SIZE_RANGE[0], float(side.max()) * SIZE_RANGE[1])
        roi: tuple[int, int, int, int] | None = self._around(changed)
        x0, y0, x1, y1 = roi
        if self.wrap or (x1 - x0) * (y1 - y0) > ROI_MAX_AREA * self.width * self.height:
            roi = None  # (a 360° face may be anywhere across the seam)
        # A changed face is on one side of the gap: expected here, weaker evidence counts.
        found = await self.detect(frame, roi, sizes, expected=True)
        found = self._follow_between(frame, np.concatenate([a, b]), found, offsets)
        shared = bx.interpolate(a, b, pairs, t, self.wrap_width, motion_margin=False)
        kept = [box for box in shared if not len(found) or iomin_matrix(box[None], found).max() < 0.3]
        return np.concatenate([found, bx.as_boxes(kept)]) if kept else found

    def _around(self, boxes: np.ndarray) -> tuple[int, int, int, int]:
        """The region ROI_REACH face sizes around boxes (the largest one's size), inside the frame."""
        reach = bx.sizes(boxes).max() * ROI_REACH
        x0, y0 = max(0, int(boxes[:, 0].min() - reach)), max(0, int(boxes[:, 1].min() - reach))
        return x0, y0, min(self.width, int(boxes[:, 2].max() + reach)), min(self.height, int(boxes[:, 3].max() + reach))

    async def _continue(self, frame: av.VideoFrame, found: np.ndarray, gap: int) -> np.ndarray:
        """Faces of the previous window check (self._followed) that the check of this frame (`gap`
        frames later) missed are looked for once more where they were, as expected faces (a track
        continued on low-confidence detections, as ByteTrack does); failing that, they are followed
        by template matching (follow.py), for up to FOLLOW_CHECKS checks in a row: a face the
        detector found once is not lost because it turned or shrank on this frame. Updates
        self._followed for the next check."""
        previous = self._followed
        before = bx.as_boxes([face.box for face in previous])
        kept = {i for i, _ in bx.pairs_nearby(before, found, self.wrap_width)}
        misses: list[int] = [0] * len(found)
        gray, scale = self._gray(frame)
        scene = None if gray is None else fl.scene_of(gray)  # once per frame, for every face
        for i, face in enumerate(previous):
            if i in kept or face.misses >= fl.FOLLOW_CHECKS:
                continue
            if scene is not None and not fl.same_shot(face, scene):
                continue  # after a cut the last shot's faces are not expected: no weaker second look
            box = face.box
            side = float(bx.sizes(box[None])[0])
            roi = None
            if not self.wrap:
                x0, y0, x1, y1 = self._around(box[None])
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    roi = (x0, y0, x1, y1)
            sizes = (side * SIZE_RANGE[0], side * SIZE_RANGE[1])
            seen = await self.detect(frame, roi, sizes, expected=True, again=True)
            seen = bx.as_boxes([b for b in seen if not bx.overlaps_any(b, found, self.wrap_width)])
            if not len(seen) and self.follow and gray is not None and not self._crosses_seam(box):
                start = time.perf_counter()
                tracked = fl.follow(face, gray, gap, scale, (self.width, self.height), scene)
                self.timings["follow"] += time.perf_counter() - start
                if tracked is not None and not bx.overlaps_any(tracked[0], found, self.wrap_width):
                    seen = tracked[0][None]
                    self.frames_followed += 1
            if len(seen):
                found = np.concatenate([found, seen])
                misses += [face.misses + 1] * len(seen)
        self._followed_before = previous
        self._followed = self._faces_to_follow(found, misses, previous, gap, gray, scale, scene)
        return found

    def _follow_between(
        self, frame: av.VideoFrame, sides: np.ndarray, found: np.ndarray, offsets: tuple[int, int]
    ) -> np.ndarray:
        """Faces of the two sides of a bisection check (`sides`) that the detector missed here,
        followed by template
        matching from the window check that found them: forward from the window's first frame
        (`offsets[0]` frames before this one) or back from its last (`offsets[1]` frames after).
        All faces of both sides, not only the changed ones: a fast face may have been paired with
        another one nearby."""
        if not self.follow:
            return found
        gray, scale = self._gray(frame)
        if gray is None:
            return found
        scene = fl.scene_of(gray)
        for faces, frames in ((self._followed_before, offsets[0]), (self._followed, -offsets[1])):
            for face in faces:
                if frames == 0 or face.misses or not face.patch.size:
                    continue  # only faces the detector found there have a trustworthy template
                if not any(np.array_equal(face.box, c) for c in sides):
                    continue
                start = time.perf_counter()
                tracked = fl.follow(face, gray, frames, scale, (self.width, self.height), scene)
                self.timings["follow"] += time.perf_counter() - start
                if tracked is not None and not bx.overlaps_any(tracked[0], found, self.wrap_width):
                    found = np.concatenate([found, tracked[0][None]])
        return found

    def _gray(self, frame: av.VideoFrame) -> tuple[np.ndarray | None, tuple[float, float]]:
        """The grey detection-size copy of the frame last converted for detection (None if another)."""
        if self._converted is None or self._converted[0] is not frame:
            return None, (1.0, 1.0)
        rgb = self._converted[1]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return gray, (frame.width / rgb.shape[1], frame.height / rgb.shape[0])

    def _crosses_seam(self, box: np.ndarray) -> bool:
        return self.wrap and (box[0] < 0 or box[2] > self.width)

    def _faces_to_follow(
        self, found: np.ndarray, misses: list[int], previous: list[fl.Followed], gap: int,
        gray: np.ndarray | None, scale: tuple[float, float], scene: np.ndarray | None = None,
    ) -> list[fl.Followed]:
        before = bx.as_boxes([face.box for face in previous])
        source = dict((j, i) for i, j in bx.pairs_nearby(before, found, self.wrap_width, reach=HOLD_REACH))
        out = []
        if scene is None and gray is not None:
            scene = fl.scene_of(gray)
        for j, box in enumerate(found):
            patch = None if gray is None or self._crosses_seam(box) else fl.patch_of(gray, box, scale)
            velocity = np.zeros(2)
            if j in source and gap > 0:
                velocity = (bx.centers(box[None])[0] - bx.centers(before[source[j]][None])[0]) / gap
            face_scene = scene
            if misses[j] and j in source and previous[source[j]].patch.size:
                # A followed face keeps the template (and scene) of its last detection: refreshing it
                # from a followed box would let it drift onto the background.
                patch, face_scene = previous[source[j]].patch, previous[source[j]].scene
            if patch is not None:
                out.append(fl.Followed(box, patch, velocity, misses[j], face_scene))
            elif misses[j] == 0:
                # No template (seam, tiny): still looked for again by the detector, not followed.
                out.append(fl.Followed(box, np.zeros((0, 0), np.uint8), velocity, misses[j]))
        return out

    async def _resolve(self, frames: dict[int, av.VideoFrame], dets: dict[int, np.ndarray], lo: int, hi: int) -> None:
        """Checks frames between lo and hi (both checked) until every gap has the same faces at
        both ends."""
        if hi - lo <= 1 or bx.match(dets[lo], dets[hi], self.wrap_width) is not None:
            return
        if hi - lo <= TEMPORAL_PAD:
            # Faces on one side only: the frames between are within the temporal pad of that
            # side, so they are blurred whatever a check would say (faces on both sides: held).
            return
        if len(dets[lo]) and len(dets[hi]) and hi - lo <= self.hold_gap:
            # Faces on both sides, just not the same set (one came or went, or the detector
            # flickered on a turned head): the few frames between get every face of both sides.
            return
        mid = (lo + hi) // 2
        window = (min(frames), max(frames))
        dets[mid] = await self._check_between(
            frames[mid], dets[lo], dets[hi], (mid - lo) / (hi - lo), (mid - window[0], window[1] - mid)
        )
        await self._resolve(frames, dets, lo, mid)
        await self._resolve(frames, dets, mid, hi)

    def _carry(self, dets: dict[int, np.ndarray], lo: int, hi: int) -> dict[int, np.ndarray]:
        """Boxes of every frame in (lo, hi]: checked ones as found, the others interpolated."""
        checked = sorted(i for i in dets if lo <= i <= hi)
        out: dict[int, np.ndarray] = {}
        for left, right in itertools.pairwise(checked):
            pairs = bx.match(dets[left], dets[right], self.wrap_width)
            held = bx.EMPTY
            if pairs is None and not (len(dets[left]) and len(dets[right])):
                # A face on one side only, a gap within TEMPORAL_PAD (see _resolve): the pad
                # blurs the frames between, and they keep no boxes of their own.
                pairs = []
            elif pairs is None:
                # A short gap with faces on both sides: pair what may be the same face even when it
                # moved fast, and hold the rest where it was seen.
                pairs = bx.pairs_nearby(dets[left], dets[right], self.wrap_width, reach=HOLD_REACH)
                held = bx.unpaired(dets[left], dets[right], pairs)
            for i in range(left + 1, right):
                t = (i - left) / (right - left)
                moving = bx.interpolate(dets[left], dets[right], pairs, t, self.wrap_width)
                out[i] = np.concatenate([moving, held]) if len(held) else moving
            out[right] = dets[right]
        return out

    # -- reading and writing ---------------------------------------------------------------

    def _read(self, count: int) -> tuple[list[av.VideoFrame], list[av.Packet]]:
        start = time.perf_counter()
        frames: list[av.VideoFrame] = []
        audio: list[av.Packet] = []
        while len(frames) < count and not self._eof:
            item = next(self._demux, None)
            if item is None:
                self._eof = True
            elif isinstance(item, av.VideoFrame):
                frames.append(item)
            else:
                audio.append(item)
        if self._eof:
            # Audio after the last video frame: drain it with this window.
            audio.extend(p for p in self._demux if not isinstance(p, av.VideoFrame))
        self.timings["decode"] += time.perf_counter() - start
        return frames, audio

    def _queue(self, index: int, frame: av.VideoFrame, boxes: np.ndarray) -> None:
        item = _Pending(index, float(frame.time or 0.0), frame, boxes, [])
        for checked, found in self._checked:
            if 0 < index - checked <= self.hold:
                self._lend(found, item)
        for other in self._pending:
            if index - other.index <= TEMPORAL_PAD:
                self._lend(other.boxes, item)
                self._lend(boxes, other)
        self._pending.append(item)

    def _bridge(self, index: int, found: np.ndarray) -> None:
        """Keeps blurred, on the queued frames between them, each face of checked frame `index`
        that an earlier checked frame within the bridge span also shows (see BRIDGE_STEPS)."""
        while self._checked and self._checked[0][0] < index - self.bridge:
            self._checked.popleft()
        if len(found):
            for before, seen in self._checked:
                pairs = bx.pairs_nearby(seen, found, self.wrap_width)
                if not pairs or index - before <= 1:
                    continue
                for item in self._pending:
                    if before < item.index < index:
                        t = (item.index - before) / (index - before)
                        self._lend(bx.interpolate(seen, found, pairs, t, self.wrap_width), item)
        self._checked.append((index, found))
        for item in self._pending:
            if index < item.index <= index + self.hold:
                self._lend(found, item)

    def _lend(self, boxes: np.ndarray, to: _Pending) -> None:
        """Gives `to` the boxes of a nearby frame that nothing on `to` covers yet."""
        for box in boxes:
            # Covered only when a box there holds nearly all of it: a face that moved on since is not.
            # (360°: any overlap, as the boxes of one face on both sides of the seam do not merge.)
            test = bx.overlaps_any if self.wrap else bx.covered
            covered = test(box, to.boxes, self.wrap_width) or (
                bool(to.extra) and test(box, bx.as_boxes(to.extra), self.wrap_width)
            )
            if not covered:
                to.extra.append(box)

    def _ready(self, final: bool) -> list[_Pending]:
        """Queued frames whose neighbourhood is fully known (all of them at the end)."""
        if not self._pending:
            return []
        newest = self._pending[-1].index
        out = []
        # Frames wait for the bridge span (two windows) so that a later check can still bridge them.
        while self._pending and (final or self._pending[0].index <= newest - max(TEMPORAL_PAD, self.bridge)):
            out.append(self._pending.popleft())
        return out

    def _write(self, items: list[_Pending], audio: list[av.Packet]) -> None:
        assert self.output is not None
        for packet in audio:
            self.output.copy_audio(packet)
        for item in items:
            boxes = item.boxes
            if item.extra:
                boxes = bx.merge_overlapping(np.concatenate([boxes, bx.as_boxes(item.extra)]))
            blurred = bx.snap_to_edges(bx.with_margin(boxes), self.width, self.height, self.wrap)
            self.tracks.add(item.index, item.time_s, blurred)
            self.frames_written += 1
            frame = item.frame
            if isinstance(self.output, GopCopyOutput):
                self.output.put(frame, blurred)  # blurs and encodes the GOPs with a face, copies the others
                continue
            if len(blurred):
                start = time.perf_counter()
                frame = box_blur_frame(frame, blurred, self.wrap)
                self.timings["blur"] += time.perf_counter() - start
            start = time.perf_counter()
            self.output.encode(frame, item.index)
            self.timings["encode"] += time.perf_counter() - start

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> tuple[bytes, str, list[FaceTrack]]:
        started = time.perf_counter()
        self.output, self.encoding = await asyncio.to_thread(
            open_output, self.data or b"", self.source, wrap=self.wrap, timings=self.timings, copy=self.copy_gops
        )
        writing: asyncio.Task | None = None
        try:
            first, audio = await asyncio.to_thread(self._read, 1)
            dets = {0: await self.detect(first[0])}
            gray, scale = self._gray(first[0])
            self._followed = self._faces_to_follow(dets[0], [0] * len(dets[0]), [], 0, gray, scale)
            self._queue(0, first[0], dets[0])
            self._bridge(0, dets[0])
            base, base_frame = 0, first[0]
            writing = asyncio.create_task(asyncio.to_thread(self._write, self._ready(False), audio))
            while True:
                frames, audio = await asyncio.to_thread(self._read, self.every)
                if frames:
                    window = {base: base_frame} | {base + k + 1: f for k, f in enumerate(frames)}
                    last = base + len(frames)
                    found = await self.detect(frames[-1])
                    dets = {base: dets[base], last: await self._continue(frames[-1], found, last - base)}
                    await self._resolve(window, dets, base, last)
                    for index, boxes in sorted(self._carry(dets, base, last).items()):
                        self._queue(index, window[index], boxes)
                    for index in sorted(dets):
                        if index != base:
                            self._bridge(index, dets[index])
                    base, base_frame = last, frames[-1]
                await writing
                writing = asyncio.create_task(asyncio.to_thread(self._write, self._ready(not frames), audio))
                if not frames:
                    break
            await writing
            video = await asyncio.to_thread(self._finish)
        except BaseException:
            if writing is not None and not writing.done():
                # The encoder thread cannot be interrupted; let it finish before closing its container.
                await asyncio.gather(writing, return_exceptions=True)
            self.output.abort()
            raise
        self.timings["total"] = time.perf_counter() - started
        return video, self.output.mime_type, self.tracks.tracks

    def _finish(self) -> bytes:
        assert self.output is not None
        start = time.perf_counter()
        video = self.output.finish()
        assert self.encoding is not None
        if isinstance(self.output, BlurredOutput):
            # (GopCopyOutput times its copying, decoding, blurring and encoding itself.)
            self.timings["encode"] += time.perf_counter() - start
            self.encoding.frames_reencoded = self.frames_written
        return video
