"""Sampled face detection with bisection, box carry-over, box blur and re-encoding (source document 3.4.2).

The video streams through in windows of `every` frames, so memory holds one window whatever the
length. For each window [a, b] the detector runs on frame b (frame a was checked before). When a
and b show the same faces, the frames between get boxes interpolated between a's and b's; when
they differ (a face appeared, left, or moved too far to tell) the middle frame is checked and each
half is resolved the same way, down to neighbouring frames (binary search for the change).

Detection runs on a copy scaled down to `max_side` (PyAV/swscale does the scaling while converting
to RGB, and only for the frames checked). Frames with faces are blurred on their YUV planes; the
others go to the encoder untouched. Reading the next window, detecting and encoding the previous
window overlap in threads.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import av
import numpy as np

from services.annotation.face_blur import boxes as bx
from services.annotation.face_blur.blur import box_blur_frame
from services.annotation.face_blur.tracks import FaceTrack, TrackBuilder
from services.annotation.face_blur.video_io import BlurredOutput, SourceVideo, demux
from services.annotation.face_detection.base import FaceDetector
from services.annotation.face_detection.nms import nms

# 360° video: the frame is wrapped by this fraction of its width on each side before detection,
# so a face up to that wide that crosses the left/right seam is seen whole once.
WRAP_PAD = 0.2
# Faces are also blurred on this many frames before they are first and after they are last
# detected: a face entering the picture is identifiable a frame or two before detectors fire.
TEMPORAL_PAD = 2


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
    ) -> None:
        self.source = source
        self.detector = detector
        self.every = every
        self.wrap = equirectangular
        self.max_side = max_side
        self.width = source.video.codec_context.width
        self.height = source.video.codec_context.height
        self.wrap_width = float(self.width) if equirectangular else None
        self.frames_checked = 0
        self.timings: dict[str, float] = defaultdict(float)
        self.tracks = TrackBuilder(self.width, self.height, equirectangular)
        self._pending: deque[_Pending] = deque()
        self._demux = demux(source)
        self._eof = False
        self.output: BlurredOutput | None = None

    # -- detection -------------------------------------------------------------------------

    async def detect(self, frame: av.VideoFrame) -> np.ndarray:
        """Face boxes of one frame in full-frame pixels (centre inside the frame when wrapping)."""
        start = time.perf_counter()
        width, height = frame.width, frame.height
        scale = 1.0
        if self.max_side and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
        det_w, det_h = max(2, round(width * scale)), max(2, round(height * scale))
        rgb = await asyncio.to_thread(frame.to_ndarray, width=det_w, height=det_h, format="rgb24")
        pad = 0
        if self.wrap:
            pad = max(1, round(det_w * WRAP_PAD))
            rgb = np.concatenate([rgb[:, -pad:], rgb, rgb[:, :pad]], axis=1)
        faces = await self.detector.detect(rgb, None)
        found = bx.as_boxes([[f.x_min - pad, f.y_min, f.x_max - pad, f.y_max] for f in faces])
        if len(found):
            found = found * np.array([width / det_w, height / det_h] * 2)
            if self.wrap:
                # A face near the seam is seen twice (once in the padding): keep one.
                found = bx.canonical(found, self.wrap_width)
                found = found[nms(found, np.array([f.score for f in faces]), 0.3)]
        self.frames_checked += 1
        self.timings["detect"] += time.perf_counter() - start
        return found

    async def _resolve(self, frames: dict[int, av.VideoFrame], dets: dict[int, np.ndarray], lo: int, hi: int) -> None:
        """Checks frames between lo and hi (both checked) until every gap has the same faces at
        both ends."""
        if hi - lo <= 1 or bx.match(dets[lo], dets[hi], self.wrap_width) is not None:
            return
        mid = (lo + hi) // 2
        dets[mid] = await self.detect(frames[mid])
        await self._resolve(frames, dets, lo, mid)
        await self._resolve(frames, dets, mid, hi)

    def _carry(self, dets: dict[int, np.ndarray], lo: int, hi: int) -> dict[int, np.ndarray]:
        """Boxes of every frame in (lo, hi]: checked ones as found, the others interpolated."""
        checked = sorted(i for i in dets if lo <= i <= hi)
        out: dict[int, np.ndarray] = {}
        for left, right in zip(checked, checked[1:], strict=False):
            pairs = bx.match(dets[left], dets[right], self.wrap_width) or []
            for i in range(left + 1, right):
                t = (i - left) / (right - left)
                out[i] = bx.interpolate(dets[left], dets[right], pairs, t, self.wrap_width)
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
        for other in self._pending:
            if index - other.index <= TEMPORAL_PAD:
                self._lend(other.boxes, item)
                self._lend(boxes, other)
        self._pending.append(item)

    def _lend(self, boxes: np.ndarray, to: _Pending) -> None:
        """Gives `to` the boxes of a nearby frame that nothing on `to` covers yet."""
        for box in boxes:
            covered = bx.overlaps_any(box, to.boxes, self.wrap_width) or (
                bool(to.extra) and bx.overlaps_any(box, bx.as_boxes(to.extra), self.wrap_width)
            )
            if not covered:
                to.extra.append(box)

    def _ready(self, final: bool) -> list[_Pending]:
        """Queued frames whose neighbourhood is fully known (all of them at the end)."""
        if not self._pending:
            return []
        newest = self._pending[-1].index
        out = []
        while self._pending and (final or self._pending[0].index <= newest - TEMPORAL_PAD):
            out.append(self._pending.popleft())
        return out

    def _write(self, items: list[_Pending], audio: list[av.Packet]) -> None:
        assert self.output is not None
        for packet in audio:
            self.output.copy_audio(packet)
        for item in items:
            boxes = item.boxes
            if item.extra:
                boxes = np.concatenate([boxes, bx.as_boxes(item.extra)])
            blurred = bx.with_margin(boxes)
            self.tracks.add(item.index, item.time_s, blurred)
            frame = item.frame
            if len(blurred):
                start = time.perf_counter()
                frame = box_blur_frame(frame, blurred, self.wrap)
                self.timings["blur"] += time.perf_counter() - start
            start = time.perf_counter()
            self.output.encode(frame)
            self.timings["encode"] += time.perf_counter() - start

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> tuple[bytes, str, list[FaceTrack]]:
        started = time.perf_counter()
        self.output = await asyncio.to_thread(BlurredOutput, self.source)
        writing: asyncio.Task | None = None
        try:
            first, audio = await asyncio.to_thread(self._read, 1)
            dets = {0: await self.detect(first[0])}
            self._queue(0, first[0], dets[0])
            base, base_frame = 0, first[0]
            writing = asyncio.create_task(asyncio.to_thread(self._write, self._ready(False), audio))
            while True:
                frames, audio = await asyncio.to_thread(self._read, self.every)
                if frames:
                    window = {base: base_frame} | {base + k + 1: f for k, f in enumerate(frames)}
                    last = base + len(frames)
                    dets = {base: dets[base], last: await self.detect(frames[-1])}
                    await self._resolve(window, dets, base, last)
                    for index, boxes in sorted(self._carry(dets, base, last).items()):
                        self._queue(index, window[index], boxes)
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
        self.timings["encode"] += time.perf_counter() - start
        return video
