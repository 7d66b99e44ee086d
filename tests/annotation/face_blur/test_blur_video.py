"""blur_video end to end on generated videos made from real photos (see synthetic.py), measured
against the per-frame detector (see measure.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data as skdata

from services.annotation.face_blur import BlurResult, blur_video, default_face_detector
from services.annotation.face_detection.dnn import ScrfdFaceDetector
from services.common.inference.onnx_backend import OnnxBackend
from services.common.media import MediaError, probe_video
from tests.annotation.face_blur.measure import BlurReport, measure
from tests.annotation.face_blur.synthetic import make_video
from tests.annotation.face_detection.scrfd_graph import write_model

EVERY = 10


@dataclass
class Run:
    source: bytes
    result: BlurResult
    report: BlurReport


def _blurred_frames(result: BlurResult) -> set[int]:
    return {index for track in result.tracks for index, _ in track.boxes}


async def _run(source: bytes, equirectangular: bool) -> Run:
    detector = default_face_detector()
    result = await blur_video(source, detector, every=EVERY, equirectangular=equirectangular)
    report, _ = measure(source, result.video, None, _blurred_frames(result), detector=detector, wrap=equirectangular)
    return Run(source, result, report)


@pytest.fixture(scope="module")
async def regular() -> Run:
    return await _run(make_video(320, 240, seconds=6, fps=12), equirectangular=False)


@pytest.fixture(scope="module")
async def seam() -> Run:
    return await _run(make_video(384, 192, seconds=6, fps=12, equirectangular=True), equirectangular=True)


def _stream_summary(video: bytes) -> tuple[list[float], list[bytes]]:
    """Video frame times and the raw bytes of every audio packet."""
    with av.open(io.BytesIO(video)) as container:
        audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    with av.open(io.BytesIO(video)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    return times, audio


def test_every_face_the_per_frame_detector_finds_is_blurred(regular: Run) -> None:
    report = regular.report
    assert report.face_frames >= 30, "the scenario shows faces on about half of the frames"
    assert report.recall >= 0.99, f"frames with a face left sharp: {report.missed}"


def test_frames_without_faces_are_left_alone(regular: Run) -> None:
    report = regular.report
    assert report.clean_frames >= 10
    # Only the re-encoding touches them: a blurred face would drop PSNR far below this.
    assert report.clean_min_psnr >= 35, report
    assert report.clean_max_abs_diff < 3, report


def test_audio_frame_count_and_timing_are_kept(regular: Run) -> None:
    source, output = probe_video(regular.source), probe_video(regular.result.video)
    assert output.frame_count == source.frame_count == regular.report.frames == 72
    assert (output.codec, output.fps, output.width, output.height) == ("h264", source.fps, 320, 240)
    assert output.has_audio
    src_times, src_audio = _stream_summary(regular.source)
    out_times, out_audio = _stream_summary(regular.result.video)
    assert out_times == pytest.approx(src_times)
    assert out_audio == src_audio, "audio packets are copied, not re-encoded"
    assert regular.result.mime_type == "video/mp4"
    assert regular.result.probe == source


def test_the_detector_runs_on_few_frames_and_tracks_follow_the_faces(regular: Run) -> None:
    result = regular.result
    assert result.frames_checked <= 72 // 2, result.frames_checked
    assert result.frames_checked >= 72 // EVERY
    # The astronaut twice, the LFW face and the cameraman.
    assert len(result.tracks) >= 4
    for track in result.tracks:
        frames = [index for index, _ in track.boxes]
        assert frames == list(range(track.start_frame, track.end_frame + 1))
        assert track.end_time >= track.start_time
        for _, box in track.boxes:
            assert all(0.0 <= v <= 1.0 for v in box) and box[0] < box[2] and box[1] < box[3]
    assert {"decode", "detect", "encode", "total"} <= set(result.timings)


def test_a_face_crossing_the_360_seam_is_blurred_on_both_sides(seam: Run) -> None:
    report = seam.report
    assert report.face_frames >= 40
    assert report.recall >= 0.99, f"frames with a face left sharp: {report.missed}"
    crossing = [box for track in seam.result.tracks for _, box in track.boxes if box[0] > box[2]]
    assert crossing, "some boxes wrap around the seam (x_min > x_max)"
    assert len(seam.result.tracks) == 1, "one face, one track, across the seam"
    assert report.clean_min_psnr >= 35


@pytest.fixture(scope="module")
def small_video() -> bytes:
    return make_video(160, 120, seconds=2, fps=10, audio=False)


async def test_every_one_checks_every_frame(small_video: bytes) -> None:
    result = await blur_video(small_video, default_face_detector(), every=1)
    assert result.frames_checked == 20
    assert probe_video(result.video).frame_count == 20
    assert not probe_video(result.video).has_audio


@pytest.mark.parametrize(
    ("fmt", "codec", "pix_fmt", "mime", "out_codec", "fps"),
    [
        ("webm", "libvpx-vp9", "yuv420p", "video/webm", "vp9", 10),
        ("avi", "mpeg4", "yuv420p", "video/x-msvideo", "mpeg4", 10),
        ("mov", "mjpeg", "yuvj420p", "video/quicktime", "mjpeg", 10),
        ("matroska", "libx264", "yuv420p", "video/x-matroska", "h264", 10),
        # A raw H.264 stream has no container and no time stamps: MP4 out, at FFmpeg's 25 fps.
        ("h264", "libx264", "yuv420p", "video/mp4", "h264", 25),
    ],
)
async def test_container_and_codec_are_kept(fmt: str, codec: str, pix_fmt: str, mime: str, out_codec: str,
                                            fps: int) -> None:
    buffer = io.BytesIO()
    face = np.ascontiguousarray(skdata.astronaut()[::4, ::4][:120, :128])  # 128x120
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 120, pix_fmt
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(face, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result = await blur_video(buffer.getvalue(), default_face_detector(), every=5)
    assert result.mime_type == mime
    output = probe_video(result.video)
    assert (output.codec, output.frame_count, round(output.fps)) == (out_codec, 10, fps)


async def test_works_with_a_dnn_detector_from_the_repository(small_video: bytes, tmp_path: Path) -> None:
    from services.common.model_repository import ModelRepository

    repository = ModelRepository(write_model(tmp_path, "scrfd_random", "random"))
    async with OnnxBackend(repository, workers=1) as backend:
        detector = ScrfdFaceDetector.from_repository("scrfd_random", backend, repository)
        result = await blur_video(small_video, detector, every=5)
    # The graph has random weights: it "finds" boxes everywhere, so every frame gets some.
    assert result.tracks
    assert probe_video(result.video).frame_count == 20


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x00garbage" * 100, "could not be opened"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "expected a video"),
    ],
)
async def test_bad_input_is_a_media_error(data: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        await blur_video(data, default_face_detector())


async def test_a_truncated_video_is_a_media_error(small_video: bytes) -> None:
    with pytest.raises(MediaError):
        await blur_video(small_video[: len(small_video) // 2], default_face_detector())


async def test_bad_parameters_are_refused(small_video: bytes) -> None:
    with pytest.raises(ValueError, match="every"):
        await blur_video(small_video, default_face_detector(), every=0)
    with pytest.raises(ValueError, match="max_side"):
        await blur_video(small_video, default_face_detector(), max_side=4)


async def test_bisection_finds_the_frame_a_face_appears_on() -> None:
    # A still face from frame 37 on: checks at 0, 10, ..., 50 and 59, plus a binary search in
    # (30, 40) for the first frame with the face.
    from tests.annotation.face_blur.synthetic import Appearance

    scenario = [Appearance("astronaut", 37, 59, 0.3, 0.1, 0.3, 0.1, 0.8)]
    video = make_video(160, 120, seconds=6, fps=10, audio=False, scenario=scenario)
    result = await blur_video(video, default_face_detector(), every=10)
    assert len(result.tracks) == 1
    track = result.tracks[0]
    # Blurred from TEMPORAL_PAD frames before the first detection to the end.
    assert (track.start_frame, track.end_frame) == (35, 59)
    assert result.frames_checked <= 7 + 4
