"""Reading a video's frames and audio packets, and writing the blurred copy: same container, codec,
time stamps (so frame rate and frame count) and audio packets as the source where the build of
FFmpeg allows; otherwise H.264 (VP9 for WebM)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from services.common.media import MediaError, open_video_container, sniff_media_type

log = logging.getLogger(__name__)

# Refuse frames larger than 8K UHD before allocating anything for them.
MAX_FRAME_PIXELS = 7680 * 4320

# MIME type -> FFmpeg muxer, codec used when the source codec has no encoder here.
_FORMATS: dict[str, tuple[str, str]] = {
    "video/mp4": ("mp4", "h264"),
    "video/quicktime": ("mov", "h264"),
    "video/x-matroska": ("matroska", "h264"),
    "video/webm": ("webm", "vp9"),
    "video/x-msvideo": ("avi", "h264"),
    "video/ogg": ("ogg", "theora"),
}

# Quality-targeted settings: output close to the source's quality at a speed fit for a server.
# The per-frame baseline of bench/face_blur.py uses the very same settings.
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libx265": {"crf": "20", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    "libvpx": {"crf": "10", "b": "2M", "deadline": "realtime", "cpu-used": "8"},
}


@dataclass
class SourceVideo:
    container: av.container.InputContainer
    video: av.video.stream.VideoStream
    audio: av.audio.stream.AudioStream | None
    mime_type: str

    def close(self) -> None:
        self.container.close()


def open_source(data: bytes) -> SourceVideo:
    mime = sniff_media_type(data) if data else None
    if mime is not None and not mime.startswith("video/"):
        raise MediaError(f"expected a video, got {mime}")
    container = open_video_container(data)  # (empty, unreadable, no video stream: a MediaError)
    video = container.streams.video[0]
    width, height = video.codec_context.width, video.codec_context.height
    if width <= 0 or height <= 0 or width * height > MAX_FRAME_PIXELS:
        container.close()
        raise MediaError(f"the video's frames are {width}x{height}; at most {MAX_FRAME_PIXELS:,} pixels are accepted")
    video.thread_type = "AUTO"
    audio = container.streams.audio[0] if container.streams.audio else None
    return SourceVideo(container, video, audio, mime or "video/mp4")


def demux(source: SourceVideo) -> Iterator[av.VideoFrame | av.Packet]:
    """Decoded video frames and audio packets in file order. A corrupt tail ends the stream with
    the frames decoded so far; nothing decodable at all is a MediaError."""
    streams = [source.video] + ([source.audio] if source.audio is not None else [])
    frames = 0
    try:
        for packet in source.container.demux(streams):
            if packet.stream.type == "video":
                for frame in packet.decode():
                    frames += 1
                    yield frame
            elif packet.dts is not None and packet.size:
                yield packet
    except (av.error.FFmpegError, ValueError) as exc:
        if frames == 0:
            raise MediaError(f"the video could not be decoded: {exc}") from exc
        log.warning("video truncated after %d frames: %s", frames, exc)
    if frames == 0:
        raise MediaError("the video has no decodable frames")


class BlurredOutput:
    """The output container in memory: re-encoded video, audio packets copied as they are."""

    def __init__(self, source: SourceVideo) -> None:
        fmt, fallback_codec = _FORMATS.get(source.mime_type, ("mp4", "h264"))
        self.mime_type = source.mime_type if source.mime_type in _FORMATS else "video/mp4"
        src = source.video
        rate = src.average_rate or src.guessed_rate or Fraction(25)
        self._rate = Fraction(rate)
        try:
            self._open(source, fmt, src.codec_context.name)
        except (av.error.FFmpegError, ValueError) as exc:
            # No encoder for the source's codec here, or it refuses these frames: use the
            # container's usual codec instead.
            log.info("cannot encode %s (%s); writing %s", src.codec_context.name, exc, fallback_codec)
            self._open(source, fmt, fallback_codec)
        self.audio = None
        if source.audio is not None:
            try:
                self.audio = self.container.add_stream_from_template(source.audio)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("the audio stream cannot be copied into %s: %s", fmt, exc)

    def _open(self, source: SourceVideo, fmt: str, codec: str) -> None:
        self._buffer = io.BytesIO()
        self.container = av.open(self._buffer, mode="w", format=fmt)
        try:
            src = source.video.codec_context
            self.video = self.container.add_stream(codec, rate=self._rate)
            ctx = self.video.codec_context
            ctx.width, ctx.height = src.width, src.height
            supported = {f.name for f in (ctx.codec.video_formats or ())}
            ctx.pix_fmt = src.pix_fmt if src.pix_fmt in supported else "yuv420p"
            # Keep the source's time base, so every frame keeps its own time stamp (VFR stays VFR).
            ctx.time_base = source.video.time_base or Fraction(1, int(self._rate * 1000))
            self.video.time_base = ctx.time_base
            options = ENCODER_OPTIONS.get(ctx.codec.name)
            if options:
                ctx.options = dict(options)
            elif src.bit_rate:
                ctx.bit_rate = src.bit_rate
            if src.color_range is not None:
                ctx.color_range = src.color_range
            self.video.thread_type = "AUTO"
            ctx.open()  # now, not on the first frame, so a refusal can still fall back
        except BaseException:
            self.container.close()
            raise

    @property
    def codec(self) -> str:
        return self.video.codec_context.name

    def encode(self, frame: av.VideoFrame, index: int) -> None:
        if frame.pts is None:  # some raw streams carry no time stamps: use the frame rate
            time_base = self.video.codec_context.time_base
            frame.pts = round(index / (self._rate * time_base))
            frame.time_base = time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose frame types
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def copy_audio(self, packet: av.Packet) -> None:
        if self.audio is None:
            return
        packet.stream = self.audio
        self.container.mux(packet)

    def finish(self) -> bytes:
        for packet in self.video.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self._buffer.getvalue()

    def abort(self) -> None:
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            self.container.close()
