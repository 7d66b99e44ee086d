"""Every video RPC through a real gRPC channel on both backends, on a video of three shots made
from skimage photos: keyframes at the shot changes, per-keyframe results with their times."""

from __future__ import annotations

import pytest

from protos import media_annotation_pb2 as pb
from tests.annotation.conftest import Running

pytestmark = pytest.mark.asyncio(loop_scope="session")

VIDEO_MODELS = {
    "test_detector", "test_nsfw_classifier", "test_disturbing_classifier", "test_face_detector",
    "test_video_action", "test_saliency",
}


def req(data: bytes, **kw) -> pb.AnnotationRequest:
    return pb.AnnotationRequest(asset_data=data, **kw)


def assert_keyframes_at_shots(info: pb.VideoInfo) -> None:
    assert (info.width, info.height, info.frame_count) == (96, 96, 24)
    assert abs(info.duration - 3.0) < 0.2 and info.codec == "h264"
    # One keyframe per shot: at 0 s, 1 s and 2 s.
    assert [round(t, 2) for t in info.keyframe_timestamps] == [0.0, 1.0, 2.0]


async def test_unary_video_annotation(service: Running, video: bytes) -> None:
    reply = await service.stub.VideoAnnotation(pb.VideoAnnotationRequest(video_data=video))
    assert reply.status == 0 and not reply.model_errors, reply.model_errors
    assert set(reply.valid_models) == VIDEO_MODELS
    assert_keyframes_at_shots(reply.video)
    objects = reply.video_object_detection_result
    assert [f.timestamp for f in objects.frames] == list(reply.video.keyframe_timestamps)
    assert all(f.detections for f in objects.frames)
    nsfw = reply.video_nsfw_detection_result
    assert len(nsfw.frames) == 3 and nsfw.max_score == max(f.score for f in nsfw.frames)
    # A video is NSFW if any keyframe is, and the triggering times are those keyframes'.
    assert nsfw.is_nsfw == any(f.score >= nsfw.threshold for f in nsfw.frames)
    assert list(nsfw.triggering_timestamps) == [f.timestamp for f in nsfw.frames if f.score >= nsfw.threshold]
    actions = reply.video_action_recognition_result
    assert actions.model == "test_video_action" and len(actions.clips) == 2  # 2-second clips of 3 s
    assert actions.clips[0].start_time == 0 and actions.clips[1].start_time == 2.0
    assert actions.actions and actions.actions[0].label.startswith("clip_action_")
    assert len(reply.video_saliency_detection_result.frames) == 3


async def test_stream_matches_unary(service: Running, video: bytes) -> None:
    request = pb.VideoAnnotationRequest(video_data=video, models=["test_detector", "test_disturbing_classifier"])
    messages = [m async for m in service.stub.VideoAnnotationStream(request)]
    kinds = sorted(m.WhichOneof("response") for m in messages)
    assert kinds == ["video_disturbing_content_detection_result", "video_object_detection_result"]
    unary = await service.stub.VideoAnnotation(request)
    streamed = next(m for m in messages if m.HasField("video_object_detection_result"))
    assert streamed.video_object_detection_result == unary.video_object_detection_result


async def test_keyframe_cap_per_minute(service: Running, video: bytes) -> None:
    options = pb.VideoOptions(max_keyframes_per_minute=2)  # 3 shots, 2 allowed in the first minute
    reply = await service.stub.VideoObjectDetection(req(video, video_options=options))
    times = [f.timestamp for f in reply.frames]
    assert len(times) == 2 and times[0] == 0.0 and times[1] in (1.0, 2.0)
    assert list(reply.video.keyframe_timestamps) == times


async def test_single_video_endpoints(service: Running, video: bytes) -> None:
    nsfw = await service.stub.VideoNSFWDetection(req(video))
    assert nsfw.model == "test_nsfw_classifier" and len(nsfw.frames) == 3
    disturbing = await service.stub.VideoDisturbingContentDetection(req(video))
    assert disturbing.model == "test_disturbing_classifier"
    assert disturbing.is_disturbing == bool(disturbing.triggering_timestamps)
    faces = await service.stub.VideoFaceRecognition(req(video, model="test_face_detector"))
    assert [f.timestamp for f in faces.frames] == [0.0, 1.0, 2.0]
    assert faces.embedding_model == "test_face_embedder"
    saliency = await service.stub.VideoSaliencyDetection(req(video, model="spectral-residual"))
    assert saliency.model == "spectral-residual" and all(f.map.png for f in saliency.frames)
    tsn = await service.stub.VideoActionRecognition(
        req(video, model="test_action_classifier", video_options=pb.VideoOptions(clip_seconds=1.5))
    )
    assert tsn.model == "test_action_classifier" and [c.start_time for c in tsn.clips] == [0.0, 1.5]
    assert all(c.actions[0].label.startswith("action_") for c in tsn.clips)
    assert_keyframes_at_shots(nsfw.video)


async def test_face_blurring_returns_a_playable_video(service: Running, video: bytes) -> None:
    import io

    import av

    reply = await service.stub.VideoFaceBlurring(
        req(video, model="test_face_detector", video_options=pb.VideoOptions(face_check_every=6))
    )
    assert reply.model == "test_face_detector" and reply.mime_type.startswith("video/")
    assert reply.video.frame_count == 24 and reply.frames_checked >= 4
    assert reply.video_size == len(reply.video_data) > 0
    # H.264 in MP4 (B-frames, an IDR at each shot): the GOPs without a face are copied, the video
    # stays one valid stream of all 24 frames whatever the detector found.
    assert reply.encoding.startswith("GOP copy: ") and 0 <= reply.frames_copied <= 24, reply.encoding
    with av.open(io.BytesIO(reply.video_data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    for track in reply.tracks:
        assert track.start_frame <= track.end_frame and track.boxes
