"""The pulled public models served end to end through the gRPC API, on ONNX Runtime and on a real
Triton: the CLIP zero-shot heads answer the disturbing-content and meme RPCs (images and videos),
the Kinetics-400 R(2+1)D-18 the action RPCs (an image as a still clip). Full-size architectures with
random weights; the answers are compared with the torch modules the models were exported from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
import pytest_asyncio

torch = pytest.importorskip("torch", reason="building the models needs torch from the [export] extra")

from skimage import data as skdata  # noqa: E402

from protos import media_annotation_pb2 as pb  # noqa: E402
from services.annotation.models.preprocess import model_input  # noqa: E402
from services.annotation.models.video_clip import clip_tensor  # noqa: E402
from services.common.model_repository import ModelRepository  # noqa: E402
from tests.annotation.conftest import Running, service_settings, shots_video  # noqa: E402
from tests.models.test_zeroshot import torch_text_means  # noqa: E402
from tests.support.media import encode_image  # noqa: E402
from tests.support.zeroshot_repository import CLIP, KINETICS, ZeroShotRepository  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", params=["onnx", "triton"], loop_scope="session")
async def zeroshot(request: pytest.FixtureRequest, zeroshot_repository: ZeroShotRepository) -> AsyncIterator[
    Running
]:
    import grpc

    from protos import media_annotation_pb2_grpc as pb_grpc
    from services.annotation.server import build_annotation_server, wait_backend
    from services.common.inference import create_backend

    url = request.getfixturevalue("zeroshot_triton_url") if request.param == "triton" else ""
    settings = service_settings(zeroshot_repository.root, request.param, url)
    backend = create_backend(settings, ModelRepository(zeroshot_repository.root))
    server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await wait_backend(backend, timeout_s=240)
        yield Running(pb_grpc.MediaAnnotationServerStub(channel), controller, request.param)
    finally:
        await channel.close()
        await server.stop(None)
        await backend.close()


def photo(name: str) -> np.ndarray:
    return cv2.resize(getattr(skdata, name)(), (256, 192))


def req(rgb: np.ndarray) -> pb.AnnotationRequest:
    return pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"))  # lossless: the service sees these pixels


def head_scores(repo: ZeroShotRepository, head: str, rgb: np.ndarray) -> np.ndarray:
    specs = ModelRepository(repo.root)
    image_params = specs.get_installed(f"{CLIP}_image").meta.params
    params = specs.get_installed(head).meta.params
    with torch.no_grad():
        embedding = repo.clip.encode_image(torch.from_numpy(model_input(rgb, image_params)[None]), normalize=True)
    logits = params["logit_scale"] * (embedding.double().numpy() @ torch_text_means(repo.clip, params["prompts"]).T)[0]
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.mark.parametrize(("rpc", "head", "flag"), [
    ("ImageDisturbingContentDetection", "clip_zeroshot_disturbing", "is_disturbing"),
    ("ImageMemeDetection", "clip_zeroshot_meme", "is_meme"),
])
async def test_zero_shot_heads_answer_the_classifier_rpcs(
    zeroshot: Running, zeroshot_repository: ZeroShotRepository, rpc: str, head: str, flag: str
) -> None:
    for name in ("astronaut", "coffee"):
        reply = await getattr(zeroshot.stub, rpc)(req(photo(name)))
        want = head_scores(zeroshot_repository, head, photo(name))[0]  # the positive class comes first
        assert reply.model == head and reply.threshold == pytest.approx(0.5)
        assert abs(reply.score - want) < 1e-4, (zeroshot.backend, name, reply.score, want)
        assert getattr(reply, flag) == (reply.score >= reply.threshold)


async def test_video_disturbing_scores_each_keyframe(zeroshot: Running, zeroshot_repository) -> None:
    video = shots_video([photo("astronaut"), photo("chelsea")], side=128)
    reply = await zeroshot.stub.VideoDisturbingContentDetection(pb.AnnotationRequest(asset_data=video))
    assert reply.model == "clip_zeroshot_disturbing" and len(reply.frames) == 2
    assert reply.max_score == max(f.score for f in reply.frames)
    assert reply.is_disturbing == bool(reply.triggering_timestamps)


async def test_image_actions_are_the_kinetics_model_on_a_still_clip(
    zeroshot: Running, zeroshot_repository: ZeroShotRepository
) -> None:
    repo = zeroshot_repository
    params = ModelRepository(repo.root).get_installed(KINETICS).meta.params
    rgb = photo("astronaut")
    reply = await zeroshot.stub.ImageActionRecognition(req(rgb))
    with torch.no_grad():
        logits = repo.kinetics(torch.from_numpy(clip_tensor([rgb] * 16, params)[None]))[0]
    probs = torch.softmax(logits, 0).numpy()
    top = np.argsort(-probs)[:5]
    assert reply.model == KINETICS and len(reply.actions) == 5
    categories = repo.kinetics_weights.meta["categories"]
    assert [a.label for a in reply.actions] == [categories[i] for i in top]
    assert np.allclose([a.score for a in reply.actions], probs[top], atol=1e-5)


async def test_video_actions_per_clip(zeroshot: Running, zeroshot_repository: ZeroShotRepository) -> None:
    video = shots_video([photo("astronaut"), photo("coffee")], seconds_each=1.0, side=128)
    reply = await zeroshot.stub.VideoActionRecognition(
        pb.AnnotationRequest(asset_data=video, video_options=pb.VideoOptions(clip_seconds=1.0))
    )
    categories = set(zeroshot_repository.kinetics_weights.meta["categories"])
    assert reply.model == KINETICS and len(reply.clips) == 2
    assert all(len(c.actions) == 5 and {a.label for a in c.actions} <= categories for c in reply.clips)
    assert [c.start_time for c in reply.clips] == [0.0, 1.0]
    assert reply.actions and {a.label for a in reply.actions} <= categories


async def test_the_fanout_runs_the_pulled_models(zeroshot: Running) -> None:
    reply = await zeroshot.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=encode_image(photo("chelsea"))))
    assert not reply.model_errors, reply.model_errors
    assert {"clip_zeroshot_disturbing", "clip_zeroshot_meme", KINETICS, f"{CLIP}_image"} <= set(reply.valid_models)
    assert reply.image_disturbing_content_detection_result.model == "clip_zeroshot_disturbing"
    assert reply.image_action_recognition_result.model == KINETICS


async def test_image_tags_are_the_tags_head_above_its_threshold(
    zeroshot: Running, zeroshot_repository: ZeroShotRepository
) -> None:
    spec = ModelRepository(zeroshot_repository.root).get_installed("clip_zeroshot_tags")
    rgb = photo("chelsea")
    reply = await zeroshot.stub.ImageTagging(req(rgb))
    probs = head_scores(zeroshot_repository, "clip_zeroshot_tags", rgb)
    top = [i for i in np.argsort(-probs)[: spec.meta.params["top_k"]] if probs[i] >= spec.meta.params["threshold"]]
    assert reply.model == "clip_zeroshot_tags" and reply.threshold == pytest.approx(0.1)
    assert [t.label for t in reply.tags] == [spec.meta.labels[i] for i in top]
    assert np.allclose([t.score for t in reply.tags], probs[top], atol=1e-4)
