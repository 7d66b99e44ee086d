"""VideoFaceBlurring: the face-blur pipeline (services.annotation.face_blur) run with the
service's face detector, its result turned into the response message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protos import media_annotation_pb2 as pb
from services.annotation.assets import invalid
from services.common.media import MediaError

if TYPE_CHECKING:
    from services.annotation.tasks import Unit, VideoFile

DEFAULT_CHECK_EVERY = 5
DETECT_MAX_SIDE = 640


async def blur(unit: Unit, video: VideoFile) -> pb.VideoFaceBlurringResponse:
    """The task table's run function of VideoFaceBlurring: unit.model is a FacePipeline."""
    from services.annotation.face_blur import blur_video

    options = video.options
    try:
        result = await blur_video(
            video.data,
            unit.model.detector,
            every=options.face_check_every or DEFAULT_CHECK_EVERY,
            equirectangular=options.equirectangular,
            max_side=DETECT_MAX_SIDE,
        )
    except MediaError as exc:
        raise invalid(str(exc)) from exc
    probe = result.probe
    width, height = int(probe.width), int(probe.height)
    fps = float(probe.fps) or 25.0
    # Track boxes are normalised already (a box across a 360° seam has x_min > x_max).
    tracks = [
        pb.FaceTrack(
            start_frame=track.start_frame,
            end_frame=track.end_frame,
            start_time=track.start_time,
            end_time=track.end_time,
            boxes=[pb.FrameBox(frame_index=index, box=pb.BoundingBox(x_min=x0, y_min=y0, x_max=x1, y_max=y1))
                   for index, (x0, y0, x1, y1) in track.boxes],
        )
        for track in result.tracks
    ]
    video_bytes = bytes(result.video)
    inline = len(video_bytes) <= video.max_inline_bytes
    return pb.VideoFaceBlurringResponse(
        model=unit.name,
        video_data=video_bytes if inline else b"",
        mime_type=result.mime_type,
        tracks=tracks,
        video=pb.VideoInfo(
            width=width,
            height=height,
            fps=fps,
            frame_count=int(probe.frame_count),
            duration=float(probe.duration),
            codec=str(probe.codec),
        ),
        frames_checked=int(result.frames_checked),
        video_size=len(video_bytes),
        encoding=result.encoding.summary(),
        frames_copied=result.encoding.frames_copied,
    )
