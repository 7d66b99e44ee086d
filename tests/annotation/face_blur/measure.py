"""Measuring a blurred video against its source: which faces the per-frame detector finds, whether
each of them is blurred in the output, and whether frames without faces were left alone.
Shared by the tests and bench/face_blur.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from services.annotation.face_blur.boxes import pixel_regions
from services.annotation.face_detection.base import FaceDetector
from services.annotation.face_detection.haar import HaarFaceDetector
from services.common.media import iter_video_frames

# A region counts as blurred when its detail (variance of the Laplacian) fell below this share of
# the source's; codec noise alone keeps it near 1, a blurred face is far below.
BLURRED_DETAIL_RATIO = 0.35
WRAP_PAD = 0.25
# Ground-truth faces count when this share of the face is inside the frame and its visible part is
# this many pixels on each side (see visible_truth).
VISIBLE_SHARE = 0.5
MIN_VISIBLE = 16


def detect_per_frame(
    rgb: np.ndarray, detector: HaarFaceDetector, max_side: int | None, wrap: bool
) -> list[np.ndarray]:
    """The per-frame reference: the detector on one whole frame (wrap-padded for 360° frames),
    boxes in frame pixels; for 360° frames the box may reach past the seam."""
    if not wrap:
        return [np.array([f.x_min, f.y_min, f.x_max, f.y_max]) for f in detector.detect_sync(rgb, max_side)]
    width = rgb.shape[1]
    pad = round(width * WRAP_PAD)
    padded = np.concatenate([rgb[:, -pad:], rgb, rgb[:, :pad]], axis=1)
    return _unwrapped(detector.detect_sync(padded, max_side and round(max_side * padded.shape[1] / width)), pad, width)


async def reference_faces(
    source: bytes, detector: FaceDetector, max_side: int | None = None, wrap: bool = False
) -> dict[int, list[np.ndarray]]:
    """The per-frame reference of any FaceDetector (a DNN one is async): its faces on every frame."""
    out: dict[int, list[np.ndarray]] = {}
    for index, _, rgb in iter_video_frames(source):
        if not wrap:
            out[index] = [np.array([f.x_min, f.y_min, f.x_max, f.y_max]) for f in await detector.detect(rgb, max_side)]
            continue
        width = rgb.shape[1]
        pad = round(width * WRAP_PAD)
        padded = np.ascontiguousarray(np.concatenate([rgb[:, -pad:], rgb, rgb[:, :pad]], axis=1))
        faces = await detector.detect(padded, max_side and round(max_side * padded.shape[1] / width))
        out[index] = _unwrapped(faces, pad, width)
    return out


def _unwrapped(faces: list, pad: int, width: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for face in faces:
        box = np.array([face.x_min - pad, face.y_min, face.x_max - pad, face.y_max])
        shift = np.floor((box[0] + box[2]) / 2 / width) * width
        box[[0, 2]] -= shift
        if not any(np.abs(box - other).max() < 0.3 * (box[2] - box[0]) for other in out):
            out.append(box)
    return out


def visible_truth(box: np.ndarray, width: int, height: int, wrap: bool = False) -> np.ndarray | None:
    """The part of a ground-truth face inside the frame, when it counts as a face to blur: at least
    VISIBLE_SHARE of it inside and MIN_VISIBLE pixels on its shorter side (a sliver at the edge is
    not identifiable, and no detector is asked to find it)."""
    if wrap:
        return box
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(width), box[2]), min(float(height), box[3])
    if x1 - x0 < MIN_VISIBLE or y1 - y0 < MIN_VISIBLE:
        return None
    if (x1 - x0) * (y1 - y0) < VISIBLE_SHARE * (box[2] - box[0]) * (box[3] - box[1]):
        return None
    return np.array([x0, y0, x1, y1])


def detail(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F).var())


def region_blurred(src: np.ndarray, out: np.ndarray, box: np.ndarray, wrap: bool) -> bool:
    height, width = src.shape[:2]
    src_gray = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
    out_gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    before = after = 0.0
    for x0, y0, x1, y1 in pixel_regions(box, width, height, wrap):
        before += detail(src_gray[y0:y1, x0:x1]) * (x1 - x0) * (y1 - y0)
        after += detail(out_gray[y0:y1, x0:x1]) * (x1 - x0) * (y1 - y0)
    return before > 0 and after < BLURRED_DETAIL_RATIO * before


@dataclass
class BlurReport:
    frames: int = 0
    face_frames: int = 0  # frames where the per-frame detector finds a face
    blurred_face_frames: int = 0  # ... whose every face is blurred in the output
    missed: list[int] = field(default_factory=list)
    clean_frames: int = 0  # frames with no face found and nothing blurred by the pipeline
    clean_max_abs_diff: float = 0.0  # worst mean |output - source| over the clean frames
    clean_min_psnr: float = float("inf")
    # The same, counting only the detections of real faces (IoU >= 0.5 with a ground-truth face,
    # as in PASCAL VOC), when the truth is given: the per-frame detector also fires now and then on
    # background texture and on the rest of the photos the faces come from.
    real_face_frames: int = 0
    blurred_real_face_frames: int = 0
    real_missed: list[int] = field(default_factory=list)
    # Against the ground truth itself (every visible true face, found by a detector or not).
    truth_frames: int = 0
    blurred_truth_frames: int = 0
    truth_missed: list[int] = field(default_factory=list)

    @property
    def truth_recall(self) -> float:
        return self.blurred_truth_frames / self.truth_frames if self.truth_frames else 1.0

    @property
    def recall(self) -> float:
        return self.blurred_face_frames / self.face_frames if self.face_frames else 1.0

    @property
    def real_recall(self) -> float:
        return self.blurred_real_face_frames / self.real_face_frames if self.real_face_frames else 1.0


def on_a_face(box: np.ndarray, truth: list[np.ndarray], min_iou: float = 0.5) -> bool:
    """Whether a detection is one of the true faces (intersection over union >= min_iou)."""
    for face in truth:
        w = min(box[2], face[2]) - max(box[0], face[0])
        h = min(box[3], face[3]) - max(box[1], face[1])
        if w <= 0 or h <= 0:
            continue
        union = (box[2] - box[0]) * (box[3] - box[1]) + (face[2] - face[0]) * (face[3] - face[1]) - w * h
        if w * h >= min_iou * union:
            return True
    return False


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(
    source: bytes,
    output: bytes,
    reference: dict[int, list[np.ndarray]] | None,
    blurred_frames: set[int],
    *,
    detector: HaarFaceDetector | None = None,
    max_side: int | None = 640,
    wrap: bool = False,
    truth: dict[int, list[np.ndarray]] | None = None,
) -> tuple[BlurReport, dict[int, list[np.ndarray]]]:
    """Compares output with source frame by frame. `reference` holds the per-frame detector's
    faces (computed here when None and returned for reuse); `blurred_frames` are the frames the
    pipeline reports boxes on; `truth`, the true faces of each frame (synthetic.face_boxes)."""
    detector = detector or HaarFaceDetector()
    compute = reference is None
    reference = {} if reference is None else reference
    report = BlurReport()
    for (index, _, src), (_, _, out) in zip(iter_video_frames(source), iter_video_frames(output), strict=True):
        report.frames += 1
        visible = [v for v in (visible_truth(b, src.shape[1], src.shape[0], wrap) for b in
                               (truth or {}).get(index, [])) if v is not None]
        if visible:
            report.truth_frames += 1
            if all(region_blurred(src, out, box, wrap) for box in visible):
                report.blurred_truth_frames += 1
            else:
                report.truth_missed.append(index)
        if compute:
            reference[index] = detect_per_frame(src, detector, max_side, wrap)
        faces = reference.get(index, [])
        if faces:
            report.face_frames += 1
            blurred = [region_blurred(src, out, box, wrap) for box in faces]
            if all(blurred):
                report.blurred_face_frames += 1
            else:
                report.missed.append(index)
            on_faces = truth.get(index, []) if truth else []
            real = [ok for box, ok in zip(faces, blurred, strict=True) if on_a_face(box, on_faces)]
            if real:
                report.real_face_frames += 1
                if all(real):
                    report.blurred_real_face_frames += 1
                else:
                    report.real_missed.append(index)
        elif index not in blurred_frames:
            report.clean_frames += 1
            diff = float(np.mean(np.abs(src.astype(np.int16) - out.astype(np.int16))))
            report.clean_max_abs_diff = max(report.clean_max_abs_diff, diff)
            report.clean_min_psnr = min(report.clean_min_psnr, psnr(src, out))
    return report, reference


def assert_plays_like_source(source: bytes, output: bytes) -> None:
    """PyAV on both: the same number of video frames with the same time stamps, and the audio packets
    byte for byte (copied, never re-encoded)."""
    import io

    import av

    def summary(data: bytes) -> tuple[list[float], list[bytes]]:
        with av.open(io.BytesIO(data)) as container:
            audio = [bytes(p) for s in container.streams.audio[:1] for p in container.demux(s) if p.size]
        with av.open(io.BytesIO(data)) as container:
            times = [float(f.time) for f in container.decode(video=0)]
        return times, audio

    src_times, src_audio = summary(source)
    out_times, out_audio = summary(output)
    assert len(out_times) == len(src_times), (len(out_times), len(src_times))
    assert np.allclose(out_times, src_times, atol=1e-6), "frame time stamps changed"
    assert out_audio == src_audio, "audio packets are copied, not re-encoded"
