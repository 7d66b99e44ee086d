"""GOP copy (gop_copy.py) on generated videos made from real photos: the astronaut walks in and out
of the frame twice, so some one-second GOPs show no face at all. Those must come out as the
source's packets, byte for byte; the others decoded, blurred and re-encoded; the whole one valid
stream with the source's frames, time stamps and audio. Both without B-frames (x264 ultrafast,
Constrained Baseline) and with them (x264 medium, High, 3 B-frames: packets reordered)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import pytest

from services.annotation.face_blur import FULL_REENCODE, GOP_COPY, BlurResult, blur_video, default_face_detector
from services.annotation.face_blur.gop_copy import _Avcc, _used_ids
from tests.annotation.face_blur.measure import assert_plays_like_source, measure, psnr
from tests.annotation.face_blur.synthetic import Appearance, face_boxes, make_video, sparse_scenario

W, H, FPS, SECONDS = 320, 240, 12, 8
FRAMES = FPS * SECONDS
EVERY = 6
# Faces on frames 16-32 and 64-80: with the temporal pad, GOPs 1-2 and 5-6 (frames 12-35, 60-83)
# have faces, GOPs 0, 3, 4 and 7 none.
SCENARIO = sparse_scenario(FRAMES)
PRESETS = {"no_b_frames": {"preset": "ultrafast"}, "b_frames": {"preset": "medium"}}


@dataclass
class Run:
    source: bytes
    copied: BlurResult
    full: BlurResult


@pytest.fixture(scope="module", params=sorted(PRESETS))
async def run(request: pytest.FixtureRequest) -> Run:
    source = make_video(W, H, seconds=SECONDS, fps=FPS, gop_seconds=1, scenario=SCENARIO, x264=PRESETS[request.param])
    detector = default_face_detector()
    copied = await blur_video(source, detector, every=EVERY)
    full = await blur_video(source, detector, every=EVERY, copy_gops=False)
    return Run(source, copied, full)


def _packets(data: bytes) -> list[av.Packet]:
    with av.open(io.BytesIO(data)) as container:
        return [p for p in container.demux(video=0) if p.size]


def _frames(data: bytes) -> dict[int, np.ndarray]:
    """Decoded frames (Y, U and V planes) by pts."""
    with av.open(io.BytesIO(data)) as container:
        return {int(f.pts): f.to_ndarray() for f in container.decode(video=0)}


def _gops(data: bytes) -> list[list[int]]:
    """The pts of each GOP of the source (keyframe to keyframe), in display order."""
    gops: list[list[int]] = []
    for packet in _packets(data):
        if packet.is_keyframe:
            gops.append([])
        gops[-1].append(int(packet.pts))
    return [sorted(g) for g in gops]


def _blurred(result: BlurResult) -> set[int]:
    return {index for track in result.tracks for index, _ in track.boxes}


async def test_face_free_gops_are_the_source_packets_byte_for_byte(run: Run) -> None:
    report = run.copied.encoding
    assert report.mode == GOP_COPY and not report.reason
    assert (report.gops_copied, report.gops_reencoded) == (4, 4), report
    assert (report.frames_copied, report.frames_reencoded) == (48, 48), report
    pts = sorted(_frames(run.source))
    blurred = {pts[i] for i in _blurred(run.copied)}
    free = [g for g in _gops(run.source) if not blurred & set(g)]
    assert len(free) == 4
    source_packets = {int(p.pts): bytes(p) for p in _packets(run.source)}
    out_packets = {int(p.pts): bytes(p) for p in _packets(run.copied.video)}
    for gop in free:
        assert all(out_packets[p] == source_packets[p] for p in gop), f"GOP at pts {gop[0]} was not copied"
    # ... and so the decoded frames are the source's, bit for bit.
    src, out = _frames(run.source), _frames(run.copied.video)
    for gop in free:
        assert all(np.array_equal(src[p], out[p]) for p in gop)
    # Every GOP with a face was re-encoded; each run of re-encoded GOPs (one encoder) starts with
    # a keyframe of its own.
    keyframes = {int(p.pts) for p in _packets(run.copied.video) if p.is_keyframe}
    previous_copied = True
    for gop in _gops(run.source):
        face = bool(blurred & set(gop))
        if face:
            assert any(out_packets[p] != source_packets[p] for p in gop)
            assert gop[0] in keyframes or not previous_copied
        previous_copied = not face


async def test_frames_time_stamps_audio_and_format_are_the_sources(run: Run) -> None:
    assert_plays_like_source(run.source, run.copied.video)
    assert len(_frames(run.copied.video)) == FRAMES
    packets = _packets(run.copied.video)
    dts = [int(p.dts) for p in packets]
    assert dts == sorted(dts) and len(set(dts)) == len(dts), "decode time stamps stay strictly increasing"
    assert all(p.dts <= p.pts for p in packets)
    with av.open(io.BytesIO(run.source)) as a, av.open(io.BytesIO(run.copied.video)) as b:
        sa, sb = a.streams.video[0].codec_context, b.streams.video[0].codec_context
        assert (sb.name, sb.profile, sb.pix_fmt, sb.width, sb.height) == (sa.name, sa.profile, sa.pix_fmt, W, H)
        # The source's parameter sets come first in the avcC header, x264's after them.
        src_avcc, out_avcc = _Avcc.parse(sa.extradata), _Avcc.parse(sb.extradata)
        assert src_avcc is not None and out_avcc is not None
        assert out_avcc.sps[:1] == src_avcc.sps and out_avcc.pps[:1] == src_avcc.pps
        assert len(out_avcc.sps) == len(out_avcc.pps) == 2 and _used_ids(out_avcc) == {0, 1}
    assert run.copied.mime_type == "video/mp4"


async def test_reencoded_face_free_frames_keep_the_quality_and_faces_are_blurred(run: Run) -> None:
    src, out = _frames(run.source), _frames(run.copied.video)
    pts = sorted(src)
    blurred = _blurred(run.copied)
    copied_free = [g for g in _gops(run.source) if not {pts.index(p) for p in g} & blurred]
    reencoded = {pts.index(p) for g in _gops(run.source) for p in g} - {pts.index(p) for g in copied_free for p in g}
    clean = sorted(reencoded - blurred)
    assert len(clean) >= 4, "the face GOPs have frames without a face too (before and after it)"
    worst = min(psnr(src[pts[i]], out[pts[i]]) for i in clean)
    assert worst >= 35, f"re-encoded face-free frames at {worst:.1f} dB"
    truth = {i: face_boxes(i, W, H, SCENARIO) for i in range(FRAMES)}
    report, _ = measure(run.source, run.copied.video, {}, blurred, truth=truth)
    assert report.truth_frames >= 30
    assert report.truth_recall >= 0.99, f"frames with a true face left sharp: {report.truth_missed}"


async def test_copy_and_full_reencode_blur_the_same_faces(run: Run) -> None:
    assert [(t.start_frame, t.end_frame, t.boxes) for t in run.copied.tracks] == \
        [(t.start_frame, t.end_frame, t.boxes) for t in run.full.tracks]
    assert run.full.encoding.mode == FULL_REENCODE and run.full.encoding.reason == "GOP copy turned off"
    assert run.full.encoding.frames_reencoded == FRAMES and run.full.encoding.frames_copied == 0
    assert "full re-encode of 96 frames" in run.full.encoding.summary()
    assert_plays_like_source(run.source, run.full.video)
    full, copied = _frames(run.full.video), _frames(run.copied.video)
    assert min(psnr(full[p], copied[p]) for p in full) >= 35


def _small(fmt: str, codec: str, pix_fmt: str = "yuv420p") -> bytes:
    """One second of the astronaut at 160x120, 10 fps, in `fmt` / `codec` (no audio)."""
    from skimage import data as skdata

    face = np.ascontiguousarray(skdata.astronaut()[::4, ::4][:120, :160])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, pix_fmt
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(face, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "codec", "reason"),
    [
        ("webm", "libvpx-vp9", "video/webm is not a container spliced here"),
        ("avi", "mpeg4", "video/x-msvideo is not a container spliced here"),
        ("mov", "mjpeg", "only H.264 is spliced; the video is mjpeg"),
        # A raw H.264 stream: its parameter sets are in band (Annex B), no avcC to add x264's to.
        ("h264", "libx264", "the H.264 parameter sets are not in an avcC header"),
    ],
)
async def test_a_source_that_cannot_be_copied_is_re_encoded_and_says_why(fmt: str, codec: str, reason: str) -> None:
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    result = await blur_video(_small(fmt, codec, pix_fmt), default_face_detector(), every=5)
    assert result.encoding.mode == FULL_REENCODE
    assert result.encoding.reason.startswith(reason), result.encoding.reason
    assert result.encoding.frames_reencoded == 10 and result.encoding.frames_copied == 0
    assert result.encoding.summary().startswith("full re-encode of 10 frames (")


async def test_matroska_gops_are_copied_too() -> None:
    scenario = [Appearance("astronaut", 12, 18, 0.2, 0.1, 0.3, 0.1, 0.8)]
    source = make_video(160, 120, seconds=4, fps=10, audio=False, scenario=scenario, fmt="matroska")
    result = await blur_video(source, default_face_detector(), every=5)
    assert result.mime_type == "video/x-matroska"
    assert result.encoding.mode == GOP_COPY and result.encoding.gops_copied >= 2, result.encoding
    assert_plays_like_source(source, result.video)


async def test_open_gops_are_never_cut() -> None:
    # x264's open GOPs: keyframes after the first are I-frames that B-frames before them refer
    # across, not IDR frames; no cut is safe there, so the whole video is one GOP, re-encoded.
    scenario = [Appearance("astronaut", 12, 18, 0.2, 0.1, 0.3, 0.1, 0.8)]
    source = make_video(160, 120, seconds=4, fps=10, audio=False, scenario=scenario,
                        x264={"preset": "medium", "x264-params": "open-gop=1"})
    assert len(_gops(source)) > 1, "the source has several keyframes"
    result = await blur_video(source, default_face_detector(), every=5)
    assert result.encoding.mode == GOP_COPY
    assert (result.encoding.gops_copied, result.encoding.gops_reencoded) == (0, 1), result.encoding
    assert_plays_like_source(source, result.video)


def test_avcc_records_round_trip() -> None:
    source = make_video(160, 120, seconds=1, fps=10, audio=False)
    with av.open(io.BytesIO(source)) as container:
        extradata = container.streams.video[0].codec_context.extradata
    avcc = _Avcc.parse(extradata)
    assert avcc is not None and avcc.build() == extradata and avcc.length_size == 4
    assert _used_ids(avcc) == {0}
    assert _Avcc.parse(b"\x00\x00\x00\x01\x67") is None and _Avcc.parse(None) is None
