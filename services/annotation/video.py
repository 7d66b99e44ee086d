"""Video sampling in one decoding pass (PyAV): keyframes at shot changes (grey-histogram jumps)
plus periodic fill, capped per minute of video; and short clips for action recognition."""

from __future__ import annotations

import heapq
import io
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from protos import media_annotation_pb2 as pb
from services.common.media import MediaError, VideoProbe, probe_video


@dataclass(frozen=True)
class Frame:
    index: int
    time: float
    rgb: np.ndarray


@dataclass(frozen=True)
class Clip:
    start: float
    end: float
    frames: list[np.ndarray]


@dataclass
class DecodedVideo:
    probe: VideoProbe
    keyframes: list[Frame]
    clips: list[Clip] = field(default_factory=list)
    frame_count: int = 0
    # VideoOptions.equirectangular: 360° frames (saliency wraps their seam).
    equirectangular: bool = False

    def info(self) -> pb.VideoInfo:
        return pb.VideoInfo(
            width=self.probe.width,
            height=self.probe.height,
            fps=self.probe.fps,
            frame_count=self.frame_count or self.probe.frame_count,
            duration=self.probe.duration,
            codec=self.probe.codec,
            keyframe_timestamps=[f.time for f in self.keyframes],
        )


@dataclass(frozen=True)
class Sampling:
    keyframes_per_minute: float = 12.0
    max_keyframes: int = 64
    shot_threshold: float = 0.5
    max_side: int = 960
    # Clips for action recognition: 0 frames per clip = no clips.
    clip_seconds: float = 2.0
    frames_per_clip: int = 0
    max_clips: int = 16


def _histogram(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    hist = np.bincount((grey // 8).ravel(), minlength=32).astype(np.float32)
    return hist / hist.sum()


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def decode_video(data: bytes, sampling: Sampling) -> DecodedVideo:
    """Blocking (run it in a thread). Raises MediaError for undecodable input."""
    import av

    probe = probe_video(data)
    duration = probe.duration or (probe.frame_count / probe.fps if probe.fps else 0.0)
    # The cap counts per started minute, so a short clip may still keep each of its shots.
    minutes = max(1, math.ceil(duration / 60.0))
    limit = max(1, min(sampling.max_keyframes, math.floor(minutes * sampling.keyframes_per_minute)))
    fill_period = 60.0 / max(sampling.keyframes_per_minute, 1e-6)
    # Min-heap of (score, index, Frame): a shot change scores its histogram jump, periodic fill
    # scores 0 and the first frame scores infinity, so the cap drops fill frames first.
    heap: list[tuple[float, int, Frame]] = []
    last_hist: np.ndarray | None = None
    last_kept = -math.inf

    clip_step = sampling.clip_seconds
    if sampling.frames_per_clip and duration > sampling.clip_seconds * sampling.max_clips:
        clip_step = duration / sampling.max_clips
    clip_starts = (
        [k * clip_step for k in range(sampling.max_clips) if k * clip_step < max(duration, 1e-3)]
        if sampling.frames_per_clip
        else []
    )
    clip_frames: list[list[np.ndarray]] = [[] for _ in clip_starts]
    targets = sorted(
        (start + (j + 0.5) * sampling.clip_seconds / sampling.frames_per_clip, k)
        for k, start in enumerate(clip_starts)
        for j in range(sampling.frames_per_clip)
    )
    next_target = 0

    index = -1
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"the video could not be opened: {exc}") from exc
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for decoded in container.decode(stream):
                index += 1
                time_s = float(decoded.time) if decoded.time is not None else index / (probe.fps or 25.0)
                rgb = decoded.to_ndarray(format="rgb24")
                hist = _histogram(rgb)
                jump = float(np.abs(hist - last_hist).sum()) if last_hist is not None else math.inf
                last_hist = hist
                score = -1.0
                if jump == math.inf or jump >= sampling.shot_threshold:
                    score = jump
                elif time_s - last_kept >= fill_period:
                    score = 0.0
                if score >= 0:
                    last_kept = time_s
                    item = (score, index, Frame(index, time_s, _shrink(rgb, sampling.max_side)))
                    if len(heap) < limit:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heappushpop(heap, item)
                while next_target < len(targets) and targets[next_target][0] <= time_s + 1e-6:
                    clip_frames[targets[next_target][1]].append(_shrink(rgb, 256))
                    next_target += 1
        except av.error.FFmpegError as exc:
            if index < 0:
                raise MediaError(f"the video could not be decoded: {exc}") from exc
            # A truncated tail: the frames decoded so far are still good.
    finally:
        container.close()
    if index < 0:
        raise MediaError("the video has no decodable frames")
    keyframes = sorted((frame for _, _, frame in heap), key=lambda f: f.index)
    clips = [
        Clip(start, min(start + sampling.clip_seconds, duration or start + sampling.clip_seconds), frames)
        for start, frames in zip(clip_starts, clip_frames, strict=True)
        if frames
    ]
    return DecodedVideo(probe, keyframes, clips, frame_count=index + 1)
