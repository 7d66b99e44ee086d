"""Re-encoding only what must change: the GOPs of an H.264 video that show no face are copied from
the source as packets, untouched; only the GOPs with a face are decoded, blurred and re-encoded.

A GOP here runs from one IDR frame to the next (an IDR closes the GOP: nothing after it refers to a
frame before it, and every frame before it is shown before it), so each re-encoded stretch starts
with its own IDR and can sit between copied ones. The splice keeps the stream one valid H.264
stream:
- the re-encoded GOPs use their own SPS/PPS id (x264's `sps-id`, one the source does not use), and
  both parameter sets are in the stream's avcC header, so copied frames still decode with the
  source's parameter sets and re-encoded ones with x264's; same resolution, pixel format, profile
  and level as the source;
- the encoder makes no B-frames, so each frame gives one packet in order; the packets take the
  frames' own pts and the source GOP's dts (the i-th smallest dts is never above the i-th smallest
  pts, so dts <= pts holds and dts stays monotonic across the splice, B-frame sources included).
Everything else is a full re-encode (BlurredOutput), with the reason reported (`copy_refusal`).

The output reads the source a second time with its own demuxer (the bytes are in memory already),
GOP by GOP, as the pipeline's decisions (the boxes of each frame) come in: memory holds the packets
of about one GOP, never its decoded frames; a GOP with a face is decoded again from its packets.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from services.annotation.face_blur.blur import box_blur_frame
from services.annotation.face_blur.video_io import _FORMATS, ENCODER_OPTIONS, BlurredOutput, SourceVideo
from services.common.media import open_video_container

log = logging.getLogger(__name__)

FULL_REENCODE = "full re-encode"
GOP_COPY = "GOP copy"

# Containers whose H.264 sample entry carries the avcC record (parameter sets out of band).
_COPY_CONTAINERS = ("video/mp4", "video/quicktime", "video/x-matroska")
# FFmpeg's profile names -> x264's.
_X264_PROFILES = {
    "Baseline": "baseline", "Constrained Baseline": "baseline", "Main": "main", "High": "high",
    "High 10": "high10", "High 4:2:2": "high422", "High 4:4:4 Predictive": "high444",
}
_IDR, _SPS, _PPS = 5, 7, 8


class GopCopyError(RuntimeError):
    """The splice could not be made as planned (blur_video then re-encodes the whole video)."""


@dataclass
class EncodingReport:
    """How the blurred video was written: `mode` GOP_COPY or FULL_REENCODE (then `reason` says why)."""

    mode: str
    reason: str = ""
    gops_copied: int = 0
    gops_reencoded: int = 0
    frames_copied: int = 0
    frames_reencoded: int = 0

    def summary(self) -> str:
        if self.mode == FULL_REENCODE:
            return f"{FULL_REENCODE} of {self.frames_reencoded} frames ({self.reason})"
        gops = self.gops_copied + self.gops_reencoded
        frames = self.frames_copied + self.frames_reencoded
        return (f"{GOP_COPY}: {self.gops_copied} of {gops} GOPs ({self.frames_copied} of {frames} frames) "
                f"copied from the source, {self.gops_reencoded} re-encoded")


# -- H.264 parameter sets --------------------------------------------------------------------


@dataclass
class _Avcc:
    """An avcC record (ISO/IEC 14496-15 AVCDecoderConfigurationRecord)."""

    profile: int
    compatibility: int
    level: int
    length_size: int
    sps: list[bytes]
    pps: list[bytes]
    tail: bytes  # the high profiles' chroma format and bit depths

    @classmethod
    def parse(cls, data: bytes | None) -> _Avcc | None:
        if not data or len(data) < 7 or data[0] != 1:
            return None  # (Annex B extradata: start codes, no record)
        try:
            pos = 6
            sps, pps = [], []
            for count, out in ((data[5] & 0x1F, sps), (None, pps)):
                if count is None:
                    count = data[pos]
                    pos += 1
                for _ in range(count):
                    size = int.from_bytes(data[pos:pos + 2], "big")
                    out.append(bytes(data[pos + 2:pos + 2 + size]))
                    if len(out[-1]) != size or not size:
                        return None
                    pos += 2 + size
        except IndexError:
            return None
        return cls(data[1], data[2], data[3], (data[4] & 3) + 1, sps, pps, bytes(data[pos:]))

    def build(self) -> bytes:
        out = bytearray([1, self.profile, self.compatibility, self.level, 0xFC | (self.length_size - 1)])
        out.append(0xE0 | len(self.sps))
        for nal in self.sps:
            out += len(nal).to_bytes(2, "big") + nal
        out.append(len(self.pps))
        for nal in self.pps:
            out += len(nal).to_bytes(2, "big") + nal
        return bytes(out + self.tail)


def _rbsp_ues(nal: bytes, skip: int, count: int) -> list[int]:
    """The first `count` Exp-Golomb numbers of a NAL unit after its header and `skip` bytes."""
    payload = bytearray()
    zeros = 0
    for byte in nal[1:]:
        if zeros >= 2 and byte == 3:  # emulation prevention
            zeros = 0
            continue
        zeros = zeros + 1 if byte == 0 else 0
        payload.append(byte)
    bits = "".join(f"{b:08b}" for b in payload[skip:skip + 8])
    out, pos = [], 0
    for _ in range(count):
        lead = bits.index("1", pos) - pos
        out.append(int(bits[pos + lead:pos + 2 * lead + 1], 2) - 1)
        pos += 2 * lead + 1
    return out


def _used_ids(avcc: _Avcc) -> set[int]:
    sps_ids = {_rbsp_ues(nal, 3, 1)[0] for nal in avcc.sps}  # after profile, constraints, level
    pps_ids = {i for nal in avcc.pps for i in _rbsp_ues(nal, 0, 2)}  # its own id and its SPS's
    return sps_ids | pps_ids


def _annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01)."""
    out = []
    for chunk in bytes(data).split(b"\x00\x00\x01"):
        nal = chunk.rstrip(b"\x00")  # the zero byte of a 4-byte start code, trailing zero bytes
        if nal:
            out.append(nal)
    return out


def _nal_types(data: bytes, length_size: int) -> list[int]:
    """The NAL unit types of a length-prefixed (avcC) packet."""
    out, pos = [], 0
    while pos + length_size < len(data):
        size = int.from_bytes(data[pos:pos + length_size], "big")
        out.append(data[pos + length_size] & 0x1F)
        pos += length_size + size
    return out


# -- the plan ----------------------------------------------------------------------------------


def copy_refusal(source: SourceVideo) -> str | None:
    """Why the face-free GOPs of this source cannot be copied (None: they can)."""
    ctx = source.video.codec_context
    if source.mime_type not in _COPY_CONTAINERS:
        return f"{source.mime_type} is not a container spliced here (MP4, MOV, Matroska)"
    if ctx.name != "h264":
        return f"only H.264 is spliced; the video is {ctx.name}"
    avcc = _Avcc.parse(ctx.extradata)
    if avcc is None or not avcc.sps or not avcc.pps:
        return "the H.264 parameter sets are not in an avcC header"
    try:
        encoder = av.Codec("libx264", "w")
    except av.error.FFmpegError:
        return "no libx264 encoder in this FFmpeg"
    if ctx.pix_fmt not in {f.name for f in encoder.video_formats or ()}:
        return f"x264 cannot encode {ctx.pix_fmt} frames"
    if ctx.profile not in _X264_PROFILES:
        return f"x264 cannot encode the {ctx.profile} profile"
    try:
        used = _used_ids(avcc)
    except ValueError:
        return "the source's parameter sets could not be read"
    if min(set(range(32)) - used, default=None) is None:
        return "no SPS/PPS id left for the re-encoded GOPs"
    return None


def open_output(
    data: bytes, source: SourceVideo, *, wrap: bool, timings: dict[str, float], copy: bool = True,
) -> tuple[BlurredOutput | GopCopyOutput, EncodingReport]:
    """The writer of the blurred video: GOP copy where `copy_refusal` has nothing against it (and
    `copy`), else a full re-encode; with the report it keeps up to date."""
    reason = "GOP copy turned off" if not copy else copy_refusal(source)
    if reason is None:
        report = EncodingReport(GOP_COPY)
        return GopCopyOutput(data, source, wrap=wrap, timings=timings, report=report), report
    return BlurredOutput(source), EncodingReport(FULL_REENCODE, reason)


# -- the writer --------------------------------------------------------------------------------


@dataclass
class _Gop:
    packets: list[av.Packet] = field(default_factory=list)
    closed: bool = False  # every packet of it has been read (the next IDR or the end came)

    @property
    def pts(self) -> list[int]:
        return sorted(int(p.pts) for p in self.packets)


@dataclass
class _Stretch:
    """Consecutive re-encoded GOPs: one encoder, the pts of the frames fed to it (display order),
    the dts its packets take, how many of them are muxed."""

    encoder: av.video.codeccontext.VideoCodecContext
    pts: list[int] = field(default_factory=list)
    dts: list[int] = field(default_factory=list)
    durations: dict[int, int | None] = field(default_factory=dict)
    muxed: int = 0


class GopCopyOutput:
    """The output container in memory: copied GOPs, re-encoded GOPs and the source's audio packets.

    `put` takes the pipeline's frames in display order with the boxes to blur on them (the frame's
    pixels are not used: a GOP that has a face is decoded again from its packets)."""

    def __init__(
        self, data: bytes, source: SourceVideo, *, wrap: bool, timings: dict[str, float], report: EncodingReport,
    ) -> None:
        self.wrap = wrap
        self.timings = timings
        self.report = report
        src = source.video
        self._src_ctx = src.codec_context
        avcc = _Avcc.parse(self._src_ctx.extradata)
        assert avcc is not None  # (copy_refusal)
        self._avcc = avcc
        self._id = min(set(range(32)) - _used_ids(avcc))
        self._time_base = src.time_base or Fraction(1, 90000)
        self._rate = Fraction(src.average_rate or src.guessed_rate or 25)
        fmt = _FORMATS[source.mime_type][0]
        self.mime_type = source.mime_type
        # The encoder's parameter sets go into the stream's avcC beside the source's.
        extradata = self._new_encoder().extradata
        own = _annexb_nals(extradata or b"")
        self._encoder_extradata = extradata
        sps = [n for n in own if n[0] & 0x1F == _SPS]
        pps = [n for n in own if n[0] & 0x1F == _PPS]
        if not sps or not pps:
            raise GopCopyError("x264 gave no parameter sets out of band")
        merged = _Avcc(avcc.profile, avcc.compatibility, avcc.level, avcc.length_size,
                       avcc.sps + sps, avcc.pps + pps, avcc.tail)

        self._input = open_video_container(data)
        self._in_video = self._input.streams.video[0]
        in_audio = self._input.streams.audio[0] if self._input.streams.audio else None
        self._buffer = io.BytesIO()
        self.container = av.open(self._buffer, mode="w", format=fmt)
        try:
            self.video = self.container.add_stream_from_template(self._in_video)
            self.video.codec_context.extradata = merged.build()
            self.video.time_base = self._time_base
            self.audio = None
            if in_audio is not None and source.audio is not None:
                try:
                    self.audio = self.container.add_stream_from_template(in_audio)
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("the audio stream cannot be copied into %s: %s", fmt, exc)
        except BaseException:
            self.container.close()
            self._input.close()
            raise
        streams = [self._in_video] + ([in_audio] if self.audio is not None and in_audio is not None else [])
        self._packets = self._input.demux(streams)
        self._gops: deque[_Gop] = deque()
        self._eof = False
        self._boxes: dict[int, np.ndarray] = {}  # pts -> boxes to blur, of frames not written yet
        self._stretch: _Stretch | None = None  # the encoder of the re-encoded GOPs being written

    @property
    def codec(self) -> str:
        return "h264"

    # -- encoder -------------------------------------------------------------------------

    def _new_encoder(self) -> av.video.codeccontext.VideoCodecContext:
        src = self._src_ctx
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = src.width, src.height, src.pix_fmt
        enc.time_base = self._time_base
        enc.framerate = self._rate
        enc.flags |= av.codec.context.Flags.global_header  # SPS/PPS out of band, for the avcC
        for name in ("color_range", "colorspace", "color_primaries", "color_trc"):
            with contextlib.suppress(AttributeError, ValueError, TypeError):
                value = getattr(src, name)
                if value is not None:
                    setattr(enc, name, value)
        enc.options = dict(ENCODER_OPTIONS["libx264"]) | {
            "profile": _X264_PROFILES[str(src.profile)],
            "level": str(self._avcc.level),
            # One packet per frame in display order (see the module docstring), and parameter sets
            # of an id the source does not use.
            "x264-params": f"bframes=0:sps-id={self._id}",
        }
        enc.thread_type = "AUTO"
        enc.open()
        return enc

    # -- reading the source ----------------------------------------------------------------

    def _read_one(self) -> None:
        try:
            packet = next(self._packets, None)
        except (av.error.FFmpegError, ValueError) as exc:
            log.warning("source truncated: %s", exc)  # (the pipeline saw the same end)
            packet = None
        if packet is None:
            self._eof = True
            if self._gops:
                self._gops[-1].closed = True
            return
        if packet.stream.type == "audio":
            if packet.dts is not None and packet.size and self.audio is not None:
                packet.stream = self.audio
                self.container.mux(packet)
            return
        if not packet.size:
            return
        if packet.pts is None or packet.dts is None:
            raise GopCopyError("a video packet without time stamps")
        idr = packet.is_keyframe and _IDR in _nal_types(bytes(packet), self._avcc.length_size)
        if idr and self._gops and self._gops[-1].packets:
            self._gops[-1].closed = True
        if idr or not self._gops or self._gops[-1].closed:
            self._gops.append(_Gop())
        self._gops[-1].packets.append(packet)

    def _pump(self, final: bool) -> None:
        """Writes every GOP whose frames all have their boxes (every GOP left when `final`)."""
        while True:
            if not self._gops or not self._gops[0].closed:
                if self._eof:
                    return
                self._read_one()
                continue
            gop = self._gops[0]
            if not final and any(p not in self._boxes for p in gop.pts):
                return
            self._gops.popleft()
            self._write(gop)

    # -- writing ---------------------------------------------------------------------------

    def put(self, frame: av.VideoFrame, boxes: np.ndarray) -> None:
        if frame.pts is None:
            raise GopCopyError("a decoded frame without a time stamp")
        self._boxes[int(frame.pts)] = boxes
        self._pump(final=False)

    def copy_audio(self, packet: av.Packet) -> None:
        """(Audio is copied from this output's own reading of the source, in file order.)"""

    def _write(self, gop: _Gop) -> None:
        pts = gop.pts
        boxes = [self._boxes.pop(p, None) for p in pts]
        if all(b is not None and not len(b) for b in boxes):
            self._end_stretch()
            start = time.perf_counter()
            for packet in gop.packets:
                packet.stream = self.video
                self.container.mux(packet)
            self.report.gops_copied += 1
            self.report.frames_copied += len(pts)
            self.timings["copy"] += time.perf_counter() - start
            return
        # Frames the pipeline never got (a corrupt tail) are left out, as the full re-encode does.
        wanted = {p: b for p, b in zip(pts, boxes, strict=True) if b is not None}
        if wanted:
            self._reencode(gop, wanted)

    def _reencode(self, gop: _Gop, wanted: dict[int, np.ndarray]) -> None:
        """Decodes the GOP again, blurs and encodes its frames: into the stretch that the GOP before
        it started when that one was re-encoded too (one encoder per run of re-encoded GOPs: an
        encoder per GOP cost 1.8x the encoding time on 8-frame GOPs at 720p), else into a new one."""
        start = time.perf_counter()
        decoder = av.CodecContext.create("h264", "r")
        decoder.extradata = self._src_ctx.extradata
        decoder.thread_type = "AUTO"
        frames: dict[int, av.VideoFrame] = {}
        try:
            for packet in [*gop.packets, None]:
                for frame in decoder.decode(packet):
                    if frame.pts is not None and int(frame.pts) in wanted:
                        frame.time_base = self._time_base  # (a decoder of its own has none)
                        frames[int(frame.pts)] = frame
        except (av.error.FFmpegError, ValueError) as exc:
            log.warning("a GOP of the source decodes only in part: %s", exc)
        self.timings["decode_again"] += time.perf_counter() - start
        if len(frames) != len(wanted):
            raise GopCopyError(f"the GOP at pts {gop.pts[0]} decoded to {len(frames)} of its {len(wanted)} frames")
        if self._stretch is None:
            self._stretch = _Stretch(self._new_encoder())
            if self._stretch.encoder.extradata != self._encoder_extradata:
                raise GopCopyError("x264's parameter sets changed between GOPs")
        stretch = self._stretch
        order = sorted(frames)
        # The GOP's smallest dts, as many as frames are re-encoded (see the module docstring).
        stretch.dts += sorted(int(p.dts) for p in gop.packets)[: len(order)]
        stretch.durations.update((int(p.pts), p.duration) for p in gop.packets)
        for p in order:
            frame, faces = frames[p], wanted[p]
            if len(faces):
                start = time.perf_counter()
                frame = box_blur_frame(frame, faces, self.wrap)
                self.timings["blur"] += time.perf_counter() - start
            start = time.perf_counter()
            frame.pts, frame.time_base = p, self._time_base
            frame.pict_type = av.video.frame.PictureType.NONE
            stretch.pts.append(p)
            self._mux_encoded(stretch.encoder.encode(frame))
            self.timings["encode"] += time.perf_counter() - start
        self.report.gops_reencoded += 1
        self.report.frames_reencoded += len(order)

    def _end_stretch(self) -> None:
        """Flushes the encoder of the re-encoded GOPs before a copied one (or the end)."""
        stretch = self._stretch
        if stretch is None:
            return
        start = time.perf_counter()
        self._mux_encoded(stretch.encoder.encode(None))
        self._stretch = None
        if stretch.muxed != len(stretch.pts):
            raise GopCopyError(f"x264 gave {stretch.muxed} packets for {len(stretch.pts)} frames")
        self.timings["encode"] += time.perf_counter() - start

    def _mux_encoded(self, packets: list[av.Packet]) -> None:
        """x264's packets (Annex B) as length-prefixed ones, with the time stamps of the stretch."""
        stretch = self._stretch
        assert stretch is not None
        size = self._avcc.length_size
        for encoded in packets:
            i = stretch.muxed
            if i >= len(stretch.pts) or (i == 0 and not encoded.is_keyframe):
                raise GopCopyError("x264 gave packets out of step with its frames")
            nals = _annexb_nals(bytes(encoded))
            if any(len(n) >= 1 << (8 * size) for n in nals):
                raise GopCopyError(f"a NAL unit too long for the source's {size}-byte lengths")
            packet = av.Packet(b"".join(len(n).to_bytes(size, "big") + n for n in nals))
            packet.pts, packet.dts = stretch.pts[i], stretch.dts[i]
            packet.duration = stretch.durations.get(stretch.pts[i]) or 0
            packet.time_base = self._time_base
            packet.is_keyframe = encoded.is_keyframe
            packet.stream = self.video
            self.container.mux(packet)
            stretch.muxed += 1

    def finish(self) -> bytes:
        self._pump(final=True)
        self._end_stretch()
        while not self._eof:  # audio after the last video packet
            self._read_one()
        self.container.close()
        self._input.close()
        return self._buffer.getvalue()

    def abort(self) -> None:
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            self.container.close()
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            self._input.close()
