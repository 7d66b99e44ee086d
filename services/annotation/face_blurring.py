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


def _box(box: object, width: int, height: int) -> pb.BoundingBox:
    """A FaceBox in pixels (or an already normalised 4-tuple) as a normalised BoundingBox."""
    if hasattr(box, "x_min"):
        coords = (box.x_min / width, box.y_min / height, box.x_max / width, box.y_max / height)  # type: ignore
    else:
        coords = tuple(float(v) for v in box)  # type: ignore[union-attr]
        if max(coords) > 1.0:
            coords = (coords[0] / width, coords[1] / height, coords[2] / width, coords[3] / height)
    return pb.BoundingBox(x_min=coords[0], y_min=coords[1], x_max=coords[2], y_max=coords[3])


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
    tracks = []
    for track in result.tracks:
        boxes = [
            pb.FrameBox(frame_index=int(index), box=_box(box, width, height))
            for index, box in _track_boxes(track)
        ]
        start = int(getattr(track, "start_frame", boxes[0].frame_index if boxes else 0))
        end = int(getattr(track, "end_frame", boxes[-1].frame_index if boxes else start))
        tracks.append(
            pb.FaceTrack(
                start_frame=start,
                end_frame=end,
                start_time=float(getattr(track, "start_time", start / fps)),
                end_time=float(getattr(track, "end_time", end / fps)),
                boxes=boxes,
            )
        )
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
    )


def _track_boxes(track: object) -> list[tuple[int, object]]:
    boxes = getattr(track, "boxes", None)
    if isinstance(boxes, dict):
        return sorted(boxes.items())
    out = []
    for item in boxes or ():
        if hasattr(item, "frame_index"):
            out.append((item.frame_index, getattr(item, "box", item)))
        else:
            out.append((item[0], item[1]))
    return out
