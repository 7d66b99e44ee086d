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


# Where the face is in each crop (x0, y0, x1, y1 as fractions of the crop), brow to chin: the
# astronaut's face (178, 69, 270, 161) of tests/annotation/face_detection/test_haar.py moved into its
# crop; the cameraman's turned face without the hair above it and the ear (what the DNN detector
# boxes on the still crop, 0.387, 0.392, 0.759, 0.787, checked by eye); LFW images are tight face crops,
# the forehead's top cut.
FACE_IN_CROP = {
    "astronaut": (43 / 180, 44 / 180, 135 / 180, 136 / 180),
    "cameraman": (0.37, 0.37, 0.77, 0.80),
    "lfw": (0.03, 0.10, 0.90, 0.96),
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
    # Turning and scaling (the photo test set): the size at `end` (None: `size` throughout), the
    # rotation in degrees (counter-clockwise) at `start` and at `end`, and a mirrored photo.
    size1: float | None = None
    angle0: float = 0.0
    angle1: float = 0.0
    flip: bool = False

    def at(self, index: int) -> tuple[float, float, float, float]:
        """x, y (top-left, fractions), size and angle on frame `index`."""
        t = (index - self.start) / max(1, self.end - self.start)
        size1 = self.size if self.size1 is None else self.size1
        return (self.x0 + (self.x1 - self.x0) * t, self.y0 + (self.y1 - self.y0) * t,
                self.size + (size1 - self.size) * t, self.angle0 + (self.angle1 - self.angle0) * t)


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


def photo_scenario(frames: int) -> list[Appearance]:
    """The real-photo recall set: faces that move, turn (mirrored, rotated up to 25 degrees), grow and
    shrink (1/4 to 3/5 of the frame height) and leave the frame at its edges, one to three at a time
    (never covering each other: the ground truth has no occlusion),
    with a face-free stretch of a fifth of the video in the middle (what GOP copying can keep)."""
    f = frames
    return [
        # Walks in from the left along the top, grows, tilts, and leaves at the right edge.
        Appearance("astronaut", f * 4 // 100, f * 40 // 100, -0.12, 0.0, 0.92, 0.0, 0.30, 0.45, 0.0, 15.0),
        # The cameraman's turned head below it, mirrored, shrinking and tilting the other way.
        Appearance("cameraman", f * 8 // 100, f * 34 // 100, 0.62, 0.48, 0.45, 0.52, 0.50, 0.30, 0.0, -12.0,
                   flip=True),
        # A small face that grows while crossing, at the bottom left.
        Appearance("lfw", f * 18 // 100, f * 38 // 100, 0.05, 0.62, 0.20, 0.45, 0.25, 0.42),
        # After the face-free stretch: the astronaut mirrored, turning from -25 to 20 degrees, shrinking,
        # leaving at the left edge.
        Appearance("astronaut", f * 60 // 100, f * 96 // 100, 0.40, 0.20, -0.25, 0.35, 0.60, 0.35, -25.0, 20.0,
                   flip=True),
        # The cameraman again on the right, unmirrored, growing, leaving at the right edge.
        Appearance("cameraman", f * 66 // 100, f * 92 // 100, 0.75, 0.45, 0.98, 0.25, 0.35, 0.55, 10.0, -5.0),
    ]


def sparse_scenario(frames: int) -> list[Appearance]:
    """The astronaut walks through twice, on a sixth of the video each time (frames 1/6-1/3 and
    2/3-5/6): with GOPs of an eighth of the video or shorter, whole GOPs show no face (what GOP
    copying keeps as it is)."""
    f = frames
    return [
        Appearance("astronaut", f // 6, f // 3, 0.10, 0.10, 0.40, 0.15, 0.5),
        Appearance("astronaut", f * 2 // 3, f * 5 // 6, 0.50, 0.20, 0.20, 0.20, 0.5),
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
    fx, fy, size, _ = item.at(index)
    sprite = sprites()[item.sprite]
    side = max(8, round(size * height))
    w = max(8, round(sprite.rgb.shape[1] * side / sprite.rgb.shape[0]))
    x = round(fx * width)
    y = round(fy * height)
    return x, min(max(y, 0), height - side), w, side


def _rotation(item: Appearance, index: int, w: int, side: int) -> np.ndarray | None:
    """The 2 x 3 affine map of the sprite's pixels on frame `index` (None: not rotated)."""
    angle = item.at(index)[3]
    return None if angle == 0 else cv2.getRotationMatrix2D((w / 2, side / 2), angle, 1.0)


def face_boxes(index: int, width: int, height: int, scenario: list[Appearance]) -> list[np.ndarray]:
    """The ground truth of frame `index`: the pixel box (x0, y0, x1, y1) of every face on it (x may
    run past the frame's edges, as the photo does)."""
    out = []
    for item in scenario:
        if item.start <= index <= item.end:
            x, y, w, side = _placement(item, index, width, height)
            fx0, fy0, fx1, fy1 = FACE_IN_CROP[item.sprite]
            if item.flip:
                fx0, fx1 = 1.0 - fx1, 1.0 - fx0
            # The face is taken as the ellipse in its rectangle; a turned face's box is the box
            # around the turned ellipse (around the turned rectangle it would take in background).
            cx, cy = (fx0 + fx1) / 2 * w, (fy0 + fy1) / 2 * side
            a, b = (fx1 - fx0) / 2 * w, (fy1 - fy0) / 2 * side
            rotation = _rotation(item, index, w, side)
            if rotation is not None:
                cx, cy = rotation[:, :2] @ np.array([cx, cy]) + rotation[:, 2]
            theta = np.radians(item.at(index)[3])
            half_w = np.hypot(a * np.cos(theta), b * np.sin(theta))
            half_h = np.hypot(a * np.sin(theta), b * np.cos(theta))
            out.append(np.array([x + cx - half_w, y + cy - half_h, x + cx + half_w, y + cy + half_h], dtype=np.float64))
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
        rgb = cv2.resize(sprite.rgb, (w, side), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(sprite.alpha, (w, side), interpolation=cv2.INTER_LINEAR)
        if item.flip:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        rotation = _rotation(item, index, w, side)
        if rotation is not None:
            rgb = cv2.warpAffine(np.ascontiguousarray(rgb), rotation, (w, side), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(np.ascontiguousarray(alpha), rotation, (w, side), flags=cv2.INTER_LINEAR)
        rgb, alpha = rgb.astype(np.float32), alpha[..., None]
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
    x264: dict[str, str] | None = None,
    fmt: str = "mp4",
) -> bytes:
    """An H.264/AAC MP4 (or `fmt`) of the regular (or, when equirectangular, the seam-crossing)
    scenario; x264 `crf 18` / `ultrafast` (Constrained Baseline, no B-frames) unless `x264` says
    otherwise (e.g. `{"preset": "medium"}`: High profile with B-frames)."""
    frames = round(seconds * fps)
    if scenario is None:
        scenario = seam_scenario(frames) if equirectangular else regular_scenario(frames)
    back = background(width, height, backdrop)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = max(1, round(gop_seconds * fps))
        video.codec_context.options = {"crf": "18", "preset": "ultrafast"} | (x264 or {})
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
