"""The shipped models (`maam models install-shipped`: NudeNet, PP-OCR, Haar) through the service on
real photos from skimage.data and a video made from them: real outputs, nothing faked."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.server import build_annotation_server, wait_backend
from services.common.inference import create_backend
from services.common.model_repository import ModelRepository
from services.models.shipped import install_haar, install_nudenet, install_ppocr
from tests.annotation.conftest import Running, service_settings, shots_video, small
from tests.support.media import encode_image, text_frame

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def shipped_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `maam models install-shipped` writes, without the MiniLM export (torch, slow, unused here)."""
    root = tmp_path_factory.mktemp("shipped")
    install_nudenet(root)
    install_ppocr(root)
    install_haar(root)
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shipped(shipped_repo: Path) -> AsyncIterator[Running]:
    settings = service_settings(shipped_repo)
    backend = create_backend(settings, ModelRepository(shipped_repo))
    server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await wait_backend(backend)
        yield Running(pb_grpc.MediaAnnotationServerStub(channel), controller, "onnx")
    finally:
        await channel.close()
        await server.stop(None)
        await backend.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return small(skdata.astronaut(), 320)


def text_image(text: str) -> bytes:
    image = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(image).text((30, 40), text, fill="black", font=ImageFont.load_default(size=64))
    return encode_image(np.asarray(image), "PNG")


def req(data: bytes, **kw) -> pb.AnnotationRequest:
    return pb.AnnotationRequest(asset_data=data, **kw)


async def test_nsfw_detector_scores_real_photos(shipped: Running, astronaut: np.ndarray) -> None:
    for name in ("astronaut", "chelsea", "coffee"):
        rgb = astronaut if name == "astronaut" else small(getattr(skdata, name)(), 320)
        reply = await shipped.stub.ImageNSFWDetection(req(encode_image(rgb)))
        assert reply.model == "nudenet" and reply.threshold == 0.5
        assert not reply.is_nsfw and reply.score < 0.5, (name, reply)
    # The detector does see the astronaut: her face is a (safe) NudeNet class.
    nudenet = shipped.controller.catalog.adapters["nudenet"]
    labels = {d.label for d in await nudenet.detect(astronaut)}
    assert "FACE_FEMALE" in labels


async def test_ocr_reads_drawn_text(shipped: Running) -> None:
    reply = await shipped.stub.ImageTextRecognition(req(text_image("HELLO MAAM 2026")))
    assert reply.model == "ppocr_det" and reply.lines
    assert "HELLO" in reply.full_text.upper() and "2026" in reply.full_text
    line = reply.lines[0]
    assert line.score > 0.8 and len(line.polygon) == 4
    assert 0 <= line.box.x_min < line.box.x_max <= 1 and 0.1 < line.box.y_min < line.box.y_max < 0.9


async def test_video_text_is_read_on_its_keyframes(shipped: Running, astronaut: np.ndarray) -> None:
    """A shot of the astronaut, then one of print: the text is read on the second shot's keyframe, by time,
    through the single RPC and the video stream alike."""
    video = shots_video([astronaut, text_frame(["HELLO", "MAAM 2026"])], seconds_each=1.0, fps=8, side=256)
    reply = await shipped.stub.VideoTextRecognition(req(video))
    assert reply.model == "ppocr_det"
    assert [round(f.timestamp, 2) for f in reply.frames] == [0.0, 1.0]
    read = reply.frames[1]
    assert "HELLO" in read.full_text.upper() and "2026" in read.full_text, read.full_text
    assert read.lines and all(0 <= line.box.x_min < line.box.x_max <= 1 for line in read.lines)
    assert not reply.frames[0].lines  # nothing read on the astronaut
    assert reply.full_text == read.full_text
    streamed = [m async for m in shipped.stub.VideoAnnotationStream(pb.VideoAnnotationRequest(video_data=video))]
    field = "video_text_recognition_result"
    texts = [getattr(m, field) for m in streamed if m.WhichOneof("response") == field]
    assert len(texts) == 1 and texts[0].frames[1].full_text == read.full_text


async def test_haar_finds_the_astronaut_face(shipped: Running, astronaut: np.ndarray) -> None:
    reply = await shipped.stub.ImageFaceRecognition(req(encode_image(astronaut)))
    assert reply.model == "haar_face" and reply.faces
    best = max(reply.faces, key=lambda f: f.box.x_max - f.box.x_min)
    cx, cy = (best.box.x_min + best.box.x_max) / 2, (best.box.y_min + best.box.y_max) / 2
    assert 0.3 < cx < 0.7 and 0.05 < cy < 0.45  # her face, upper middle of the photo


async def test_all_shipped_models_in_one_annotation(shipped: Running, astronaut: np.ndarray) -> None:
    reply = await shipped.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=encode_image(astronaut)))
    assert reply.status == 0 and not reply.model_errors, reply.model_errors
    assert set(reply.valid_models) == {"nudenet", "haar_face", "spectral-residual", "ppocr_det"}
    assert reply.image_saliency_detection_result.model == "spectral-residual"


@pytest.fixture(scope="module")
def photo_video(astronaut: np.ndarray) -> bytes:
    return shots_video([astronaut, small(skdata.coffee(), 320)], seconds_each=1.0, fps=8, side=256)


async def test_video_nsfw_faces_and_blurring(shipped: Running, photo_video: bytes) -> None:
    nsfw = await shipped.stub.VideoNSFWDetection(req(photo_video))
    assert nsfw.model == "nudenet" and not nsfw.is_nsfw and not nsfw.triggering_timestamps
    assert [round(f.timestamp, 2) for f in nsfw.frames] == [0.0, 1.0]
    faces = await shipped.stub.VideoFaceRecognition(req(photo_video))
    assert faces.frames[0].faces, "the astronaut shot has a face"
    assert faces.frames[0].timestamp == 0.0

    blurred = await shipped.stub.VideoFaceBlurring(req(photo_video, video_options=pb.VideoOptions(face_check_every=4)))
    assert blurred.model == "haar_face" and blurred.mime_type.startswith("video/")
    assert blurred.tracks and blurred.tracks[0].start_time < 1.0
    assert blurred.frames_checked >= 4 and blurred.video_size == len(blurred.video_data)
    with av.open(io.BytesIO(blurred.video_data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == blurred.video.frame_count == 16
