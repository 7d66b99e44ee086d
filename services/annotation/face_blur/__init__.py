"""Video face blurring (source document 3.4): every face in a regular or 360° video blurred, fast.

`blur_video` is the entry point of the `VideoFaceBlurring` RPC and of `maam blur-faces`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from services.annotation.face_blur.gop_copy import FULL_REENCODE, GOP_COPY, EncodingReport, GopCopyError
from services.annotation.face_blur.pipeline import MAX_SIDE_FRACTION, FaceBlurPipeline
from services.annotation.face_blur.tracks import FaceTrack
from services.annotation.face_blur.video_io import open_source
from services.annotation.face_detection.base import FaceDetector
from services.common.media import MediaError, VideoProbe, probe_video

__all__ = [
    "FULL_REENCODE", "GOP_COPY", "BlurResult", "EncodingReport", "FaceTrack", "MediaError", "blur_video",
    "default_face_detector",
]

log = logging.getLogger(__name__)


@dataclass
class BlurResult:
    video: bytes
    mime_type: str
    tracks: list[FaceTrack]
    probe: VideoProbe  # of the source video
    frames_checked: int  # frames the detector ran on
    # Seconds spent per stage (decode, detect, blur, encode; they overlap in threads) and in total;
    # with GOP copy also copy (muxing copied packets) and decode_again (GOPs with a face).
    timings: dict[str, float] = field(default_factory=dict)
    # How the video was written: GOPs copied from the source, or a full re-encode and why.
    encoding: EncodingReport = field(default_factory=lambda: EncodingReport(FULL_REENCODE))


def default_face_detector() -> FaceDetector:
    """The Haar cascade detector that ships with OpenCV: works offline on every install (the fallback;
    `blur_video` without a detector uses the installed DNN detector first)."""
    from services.annotation.face_detection.haar import HaarFaceDetector

    return HaarFaceDetector()


async def blur_video(
    data: bytes,
    detector: FaceDetector | None = None,
    *,
    every: int = 10,
    equirectangular: bool = False,
    max_side: int | None = 640,
    max_side_fraction: float | None = MAX_SIDE_FRACTION,
    copy_gops: bool = True,
) -> BlurResult:
    """Blurs every face in the video `data`; the detector runs on every `every`-th frame (plus the
    frames bisection needs) scaled to `max_side`, or to `max_side_fraction` of the frame's longer
    side when that is larger (small faces in large frames stay findable). Without a detector: the
    installed DNN face detector (open_face_detector), Haar when none is installed. Bad input raises
    MediaError. `copy_gops`: the GOPs without a face are copied from the source where its codec and
    container allow (gop_copy.py), else (or when False) every frame is re-encoded; `encoding` of
    the result says which happened."""
    if detector is None:
        from services.annotation.face_detection.factory import open_face_detector

        async with open_face_detector() as opened:
            return await blur_video(data, opened, every=every, equirectangular=equirectangular, max_side=max_side,
                                    max_side_fraction=max_side_fraction, copy_gops=copy_gops)
    if every < 1:
        raise ValueError(f"every must be at least 1, not {every}")
    if max_side is not None and max_side < 32:
        raise ValueError(f"max_side must be at least 32 pixels, not {max_side}")
    if max_side_fraction is not None and not 0 < max_side_fraction <= 1:
        raise ValueError(f"max_side_fraction must be in (0, 1], not {max_side_fraction}")
    probe = await asyncio.to_thread(probe_video, data)
    failed = ""
    for copy in (copy_gops, False):
        source = await asyncio.to_thread(open_source, data)
        try:
            pipeline = FaceBlurPipeline(
                source, detector, every=every, equirectangular=equirectangular, max_side=max_side,
                max_side_fraction=max_side_fraction, data=data, copy_gops=copy,
            )
            video, mime_type, tracks = await pipeline.run()
            break
        except GopCopyError as exc:
            # The stream broke a rule the splice relies on (gop_copy.py): start again, re-encoding all.
            failed = f"the GOP copy failed: {exc}"
            log.warning("%s; re-encoding every frame", failed)
        finally:
            source.close()
    encoding = pipeline.encoding or EncodingReport(FULL_REENCODE)
    if failed:
        encoding.reason = failed
    log.info("blurred video written by %s", encoding.summary())
    return BlurResult(
        video=video,
        mime_type=mime_type,
        tracks=tracks,
        probe=probe,
        frames_checked=pipeline.frames_checked,
        timings=dict(pipeline.timings),
        encoding=encoding,
    )
