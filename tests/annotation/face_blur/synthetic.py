"""Test videos made from real photos: faces from `skimage.data` (the astronaut Eileen Collins, the
cameraman's profile, faces of the LFW subset) pasted with feathered edges onto real backgrounds
(`coffee`, `rocket`), moving, appearing, leaving and coming back, with a sine tone as AAC audio.
Shared by the tests and bench/face_blur.py."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import av
import cv2
import numpy as np
from skimage import data as skdata


@dataclass(frozen=True)
class Sprite:
    name: str
    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1]


def _feather(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    r = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    return np.clip((1.0 - r) / 0.15, 0.0, 1.0)


# Where the face is in each crop (x0, y0, x1, y1 as fractions of the crop), checked by eye: the
# astronaut's face (178, 69, 270, 161) and the cameraman's turned head (175, 95, 265, 200) of
# tests/annotation/face_detection/test_haar.py moved into their crops; LFW images are tight face crops.
FACE_IN_CROP = {
    "astronaut": (43 / 180, 44 / 180, 135 / 180, 136 / 180),
    "cameraman": (55 / 180, 35 / 170, 145 / 180, 140 / 170),
    "lfw": (0.0, 0.0, 1.0, 1.0),
}


@cache
def sprites() -> dict[str, Sprite]:
    """Face crops (head and some surroundings) of real photos."""
    astronaut = skdata.astronaut()[25:205, 135:315]
    camera = skdata.camera()[60:230, 120:300]
    lfw = (skdata.lfw_subset()[3] * 255).astype(np.uint8)  # the first 100 images are faces
    lfw = cv2.resize(lfw, (100, 100), interpolation=cv2.INTER_CUBIC)
    out = {}
    for name, rgb in (
        ("astronaut", astronaut),
        ("cameraman", np.stack([camera] * 3, axis=-1)),
        ("lfw", np.stack([lfw] * 3, axis=-1)),
    ):
        out[name] = Sprite(name, np.ascontiguousarray(rgb), _feather(*rgb.shape[:2]))
    return out


@dataclass(frozen=True)
class Appearance:
    """A face on screen from frame `start` to `end` (inclusive), moving linearly."""

    sprite: str
    start: int
    end: int
    x0: float  # top-left corner at `start`, as fractions of the frame width / height
    y0: float
    x1: float  # ... and at `end`
    y1: float
    size: float  # sprite height as a fraction of the frame height


def regular_scenario(frames: int) -> list[Appearance]:
    """The astronaut comes in, walks across, leaves, comes back elsewhere; two other faces come and go.
    Gaps without a face last a fifth of the video (longer than any sampling step tested)."""
    f = frames
    return [
        Appearance("astronaut", f * 10 // 100, f * 38 // 100, -0.10, 0.02, 0.45, 0.08, 0.45),
        Appearance("lfw", f * 20 // 100, f * 33 // 100, 0.75, 0.58, 0.70, 0.55, 0.38),
        Appearance("astronaut", f * 58 // 100, f * 92 // 100, 0.05, 0.30, 0.25, 0.20, 0.5),
        Appearance("cameraman", f * 66 // 100, f * 85 // 100, 0.66, 0.25, 0.62, 0.30, 0.5),
    ]


def seam_scenario(frames: int) -> list[Appearance]:
    """On an equirectangular frame: the astronaut walks right across the right/left seam."""
    f = frames
    return [
        Appearance("astronaut", f * 10 // 100, f * 90 // 100, 0.70, 0.25, 1.15, 0.25, 0.5),
    ]


def background(width: int, height: int, name: str = "coffee") -> np.ndarray:
    image = getattr(skdata, name)()
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _placement(item: Appearance, index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a sprite is drawn on frame `index`: left, top, width, height in pixels (left may be
    off the frame; for 360° frames it wraps)."""
    t = (index - item.start) / max(1, item.end - item.start)
    sprite = sprites()[item.sprite]
    side = max(8, round(item.size * height))
    w = max(8, round(sprite.rgb.shape[1] * side / sprite.rgb.shape[0]))
    x = round((item.x0 + (item.x1 - item.x0) * t) * width)
    y = round((item.y0 + (item.y1 - item.y0) * t) * height)
    return x, min(max(y, 0), height - side), w, side


def face_boxes(index: int, width: int, height: int, scenario: list[Appearance]) -> list[np.ndarray]:
    """The ground truth of frame `index`: the pixel box (x0, y0, x1, y1) of every face on it (x may
    run past the frame's edges, as the photo does)."""
    out = []
    for item in scenario:
        if item.start <= index <= item.end:
            x, y, w, side = _placement(item, index, width, height)
            fx0, fy0, fx1, fy1 = FACE_IN_CROP[item.sprite]
            out.append(np.array([x + fx0 * w, y + fy0 * side, x + fx1 * w, y + fy1 * side], dtype=np.float64))
    return out


def render_frame(
    index: int, width: int, height: int, scenario: list[Appearance], backdrop: np.ndarray, wrap: bool
) -> np.ndarray:
    frame = backdrop.copy()
    for item in scenario:
        if not item.start <= index <= item.end:
            continue
        sprite = sprites()[item.sprite]
        x, y, w, side = _placement(item, index, width, height)
        rgb = cv2.resize(sprite.rgb, (w, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = cv2.resize(sprite.alpha, (w, side), interpolation=cv2.INTER_LINEAR)[..., None]
        cols = np.arange(x, x + w)
        if wrap:
            cols = cols % width
        else:
            keep = (cols >= 0) & (cols < width)
            cols, rgb, alpha = cols[keep], rgb[:, keep], alpha[:, keep]
        region = frame[y : y + side][:, cols].astype(np.float32)
        frame[y : y + side, cols] = (region * (1 - alpha) + rgb * alpha).astype(np.uint8)
    return frame


def make_video(
    width: int = 320,
    height: int = 240,
    seconds: float = 6.0,
    fps: int = 15,
    *,
    equirectangular: bool = False,
    audio: bool = True,
    gop_seconds: float = 1.0,
    backdrop: str = "coffee",
    scenario: list[Appearance] | None = None,
) -> bytes:
    """An H.264/AAC MP4 of the regular (or, when equirectangular, the seam-crossing) scenario."""
    frames = round(seconds * fps)
    if scenario is None:
        scenario = seam_scenario(frames) if equirectangular else regular_scenario(frames)
    back = background(width, height, backdrop)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = max(1, round(gop_seconds * fps))
        video.codec_context.options = {"crf": "18", "preset": "ultrafast"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=44100)
            sound.codec_context.layout = "mono"
        for index in range(frames):
            # A slow pan keeps the background alive, like a real camera.
            shifted = np.roll(back, index, axis=1)
            rgb = render_frame(index, width, height, scenario, shifted, equirectangular)
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            rate, chunk = 44100, 1024
            total = round(seconds * rate)
            for start in range(0, total, chunk):
                t = np.arange(start, min(start + chunk, total)) / rate
                samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return buffer.getvalue()
