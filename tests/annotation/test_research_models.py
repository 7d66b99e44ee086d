"""The source document's own models served end to end through the gRPC API, on ONNX Runtime and on a real
Triton: MemeFier's meme and hateful heads on the meme results (the text read by the service's PP-OCR), MV-SD
on the saliency RPCs (images, keyframe clips, 360° frames seam-aware) and a distilled student as the NSFW
classifier. The answers are compared with the torch modules the models were exported from."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
import pytest_asyncio
import torch
from PIL import Image

from protos import media_annotation_pb2 as pb
from services.annotation.models.memefier import MemeFierClassifier, clip_crop
from services.annotation.models.mvsd import MvsdSaliency
from services.annotation.models.panorama import combine
from services.annotation.models.preprocess import model_input, resize, to_tensor
from services.annotation.models.saliency import map_size
from services.common.text_encoding import clean_meme_text
from tests.annotation.conftest import Running, service_settings
from tests.support.media import encode_image, make_video
from tests.support.research_data import TINY_ALBEF
from tests.support.research_repository import ALBEF, MEMEFIER_HATEFUL, MEMEFIER_MEME, MVSD, STUDENT, ResearchRepository

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", params=["onnx", "triton"], loop_scope="session")
async def research(request: pytest.FixtureRequest, research_repository: ResearchRepository) -> AsyncIterator[
    Running
]:
    import grpc

    from protos import media_annotation_pb2_grpc as pb_grpc
    from services.annotation.server import build_annotation_server, wait_backend
    from services.common.inference import create_backend
    from services.common.model_repository import ModelRepository

    url = request.getfixturevalue("research_triton_url") if request.param == "triton" else ""
    settings = service_settings(research_repository.root, request.param, url)
    backend = create_backend(settings, ModelRepository(research_repository.root))
    server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await wait_backend(backend, timeout_s=120)
        yield Running(pb_grpc.MediaAnnotationServerStub(channel), controller, request.param)
    finally:
        await channel.close()
        await server.stop(None)
        await backend.close()


def meme(text: str = "HATE THEM NOW") -> np.ndarray:
    canvas = np.full((80, 360, 3), 255, np.uint8)
    canvas[60:, :] = (40, 90, 200)
    cv2.putText(canvas, text, (12, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 3, cv2.LINE_AA)
    return canvas


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), np.float32) / 255.0


def _unit_range(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


async def test_memefier_scores_memes_with_the_text_the_service_reads(
    research: Running, research_repository: ResearchRepository
) -> None:
    from services.models.research.memefier.export import ServingMemeFier

    rgb = meme()
    reply = await research.stub.ImageMemeDetection(pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG")))
    assert reply.model == MEMEFIER_MEME and reply.hateful_model == MEMEFIER_HATEFUL
    hateful = research.controller.catalog.adapters[MEMEFIER_HATEFUL]
    assert isinstance(hateful, MemeFierClassifier)
    text = await hateful.text(rgb)
    assert clean_meme_text(text).startswith("hate them")  # PP-OCR through the same backend
    for name, score in ((MEMEFIER_MEME, reply.score), (MEMEFIER_HATEFUL, reply.hateful_score)):
        adapter = research.controller.catalog.adapters[name]
        pixels = to_tensor(clip_crop(rgb, 32), adapter.params["mean"], adapter.params["std"])[None]
        ids = adapter.tokenizer([clean_meme_text(text)])
        with torch.no_grad():
            want = ServingMemeFier(research_repository.modules[name])(torch.from_numpy(pixels),
                                                                       torch.from_numpy(ids))[0]
        assert score == pytest.approx(float(want[0, 0]), abs=1e-4)
    blank = await research.stub.ImageMemeDetection(pb.AnnotationRequest(asset_data=encode_image(meme(""), "PNG")))
    assert blank.hateful_score != pytest.approx(reply.hateful_score, abs=1e-6)


async def test_mvsd_serves_image_saliency_and_360_frames_seam_aware(
    research: Running, research_repository: ResearchRepository
) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (48, 96, 3), dtype=np.uint8)
    rgb[:, :8] = 255  # a bright band at the left edge: it wraps around to the right edge in 360°
    model = research_repository.modules[MVSD]
    adapter = research.controller.catalog.adapters[MVSD]
    assert isinstance(adapter, MvsdSaliency)

    def torch_map(image: np.ndarray) -> np.ndarray:
        frames = to_tensor(resize(image, 32), adapter.params["mean"], adapter.params["std"])[None, None]
        with torch.no_grad():
            return model(torch.from_numpy(frames))[0, 0].numpy()

    def at_map_size(raw: np.ndarray) -> np.ndarray:
        return _unit_range(cv2.resize(raw, map_size(96, 48), interpolation=cv2.INTER_LINEAR))

    flat = await research.stub.ImageSaliencyDetection(pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG")))
    assert flat.model == MVSD and (flat.map.width, flat.map.height) == (96, 48)
    assert np.abs(_decode(flat.map.png) - at_map_size(torch_map(rgb))).max() <= 2 / 255

    options = pb.VideoOptions(equirectangular=True)
    wrapped = await research.stub.ImageSaliencyDetection(
        pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"), video_options=options))
    want = at_map_size(combine(torch_map(rgb), torch_map(np.roll(rgb, 48, axis=1)), 48, 96))
    assert np.abs(_decode(wrapped.map.png) - want).max() <= 2 / 255


async def test_mvsd_reads_video_keyframes_as_clips(research: Running) -> None:
    frames = [np.full((48, 64, 3), (30 * i, 200 - 30 * i, 90), np.uint8) for i in range(4) for _ in range(8)]
    reply = await research.stub.VideoSaliencyDetection(pb.AnnotationRequest(asset_data=make_video(frames, fps=8)))
    assert reply.model == MVSD and len(reply.frames) >= 1
    assert all((f.map.width, f.map.height) == (64, 48) for f in reply.frames)


async def test_a_distilled_student_serves_nsfw(research: Running, research_repository: ResearchRepository) -> None:
    from services.models.research.indistill.export import Probabilities

    rgb = np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    reply = await research.stub.ImageNSFWDetection(pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"),
                                                                        model=STUDENT))
    assert reply.model == STUDENT and {label.label for label in reply.labels} >= {"Neutral", "Porn"}
    with torch.no_grad():
        probs = Probabilities(research_repository.modules[STUDENT])(
            torch.from_numpy(to_tensor(resize(rgb, 64))[None]))[0].numpy()
    assert reply.score == pytest.approx(float(probs[[1, 3, 4]].sum()), abs=1e-4)


async def test_albef_towers_serve_the_cross_modal_embedding_rpcs(
    research: Running, research_repository: ResearchRepository
) -> None:
    """ALBEF's two exported towers through the annotation service's gRPC API (CMRR's ALBEF setting is tested in
    tests/cmrr/test_albef.py): the image and the text embedding equal the torch towers' on the same input."""
    from services.common.text_tokenizers import tokenizer_from_params

    repo = research.controller.catalog.repository
    image_spec, text_spec = repo.get_installed(f"{ALBEF}_image"), repo.get_installed(f"{ALBEF}_text")
    towers = research_repository.modules[ALBEF]
    rgb = np.random.default_rng(2).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    image = await research.stub.ImageCrossModalEmbedding(
        pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"), model=f"{ALBEF}_image"))
    assert image.model == f"{ALBEF}_image"
    adapter = research.controller.catalog.adapters[f"{ALBEF}_image"]
    with torch.no_grad():
        want = towers.image(torch.from_numpy(model_input(rgb, adapter.params)[None]))[0].numpy()
    want = want / np.linalg.norm(want)  # the service's vectors are unit length
    assert image.embedding.dimension == want.shape[0] == TINY_ALBEF["embed_dim"]
    assert np.allclose(np.asarray(image.embedding.values), want, atol=1e-4)

    query = "a photo of a cat"
    text = await research.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text=query, model=f"{ALBEF}_text"))
    assert text.model == f"{ALBEF}_text"
    ids = tokenizer_from_params(text_spec.path, text_spec.meta.params, text_spec.meta.source)([query])
    with torch.no_grad():
        words = towers.text(torch.from_numpy(ids), torch.from_numpy((ids != 0).astype(np.int64)))[0].numpy()
    words = words / np.linalg.norm(words)
    assert text.embedding.dimension == words.shape[0] == TINY_ALBEF["embed_dim"]
    assert np.allclose(np.asarray(text.embedding.values), words, atol=1e-4)
    assert image_spec.meta.params.get("embedding_space") == text_spec.meta.params.get("embedding_space")
