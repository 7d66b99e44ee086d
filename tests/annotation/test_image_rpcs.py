"""Every image RPC through a real gRPC channel, on the ONNX and the Triton backend."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from protos import media_annotation_pb2 as pb
from tests.annotation.conftest import Running
from tests.support.media import encode_image

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMAGE_MODELS = {
    "test_detector", "test_nsfw_classifier", "test_disturbing_classifier", "test_meme_classifier",
    "test_action_classifier", "test_captioner", "test_image_embedder", "test_face_detector",
    "test_region_embedder", "test_saliency",
}


def req(data: bytes, **kw) -> pb.AnnotationRequest:
    return pb.AnnotationRequest(asset_data=data, **kw)


async def test_unary_annotation_runs_every_image_model(service: Running, jpeg: bytes) -> None:
    reply = await service.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=jpeg))
    assert reply.status == 0 and not reply.error_msg
    assert set(reply.valid_models) == IMAGE_MODELS, reply.model_errors
    assert not reply.model_errors
    assert (reply.image_size.width, reply.image_size.height) == (96, 64)
    assert reply.image_object_detection_result.model == "test_detector"
    assert reply.image_nsfw_detection_result.model == "test_nsfw_classifier"
    assert reply.image_meme_detection_result.hateful_model == "test_hateful_meme_classifier"
    assert reply.image_meme_detection_result.HasField("hateful_score")
    assert reply.image_saliency_detection_result.model == "test_saliency"
    assert reply.image_region_feature_extraction_result.proposal_model == "test_detector"
    assert reply.image_face_recognition_result.embedding_model == "test_face_embedder"
    embedding = reply.image_cross_modal_embedding_result.embedding
    assert embedding.dimension == len(embedding.values) == 16 and embedding.normalized
    assert abs(np.linalg.norm(embedding.values) - 1.0) < 1e-4


async def test_stream_sends_one_message_per_model_and_matches_unary(service: Running, jpeg: bytes) -> None:
    request = pb.ImageAnnotationRequest(image_data=jpeg)
    messages = [m async for m in service.stub.ImageAnnotationStream(request)]
    kinds = [m.WhichOneof("response") for m in messages]
    assert "model_error" not in kinds
    models = {getattr(m, k).model for m, k in zip(messages, kinds, strict=True)}
    assert models == IMAGE_MODELS
    unary = await service.stub.ImageAnnotation(request)
    streamed = next(m.image_object_detection_result for m in messages if m.HasField("image_object_detection_result"))
    assert streamed == unary.image_object_detection_result


async def test_models_filter_and_unknown_model(service: Running, jpeg: bytes) -> None:
    reply = await service.stub.ImageAnnotation(
        pb.ImageAnnotationRequest(image_data=jpeg, models=["test_detector", "object_detectr"])
    )
    assert list(reply.valid_models) == ["test_detector"]
    assert [(e.model, e.status) for e in reply.model_errors] == [("object_detectr", 5)]  # NOT_FOUND
    assert "maam models" in reply.model_errors[0].error_msg


async def test_batch_tags_results_with_their_index(service: Running, photos, jpeg: bytes) -> None:
    batch = pb.ImageAnnotationRequestBatch(
        requests=[
            pb.ImageAnnotationRequest(image_data=jpeg, models=["test_detector", "test_image_embedder"]),
            pb.ImageAnnotationRequest(image_data=b"not an image", models=["test_detector"]),
            pb.ImageAnnotationRequest(image_data=encode_image(photos["coffee"], "PNG"), models=["test_detector"]),
        ]
    )
    replies = [r async for r in service.stub.ImageAnnotationStreamBatch(batch)]
    by_index: dict[int, list] = {}
    for reply in replies:
        by_index.setdefault(reply.index, []).append(reply)
    assert sorted(by_index) == [0, 1, 2]
    assert len(by_index[0]) == 2 and len(by_index[2]) == 1
    assert by_index[1][0].status == 3 and "could not be decoded" in by_index[1][0].error_msg
    assert by_index[2][0].response.image_object_detection_result.image_size.width == 96


async def test_object_detection(service: Running, jpeg: bytes) -> None:
    reply = await service.stub.ImageObjectDetection(req(jpeg))
    assert reply.model == "test_detector"
    assert reply.detections, "the random test detector fires on every image"
    for d in reply.detections:
        assert 0 <= d.box.x_min < d.box.x_max <= 1 and 0 <= d.box.y_min < d.box.y_max <= 1
        assert d.label == f"class_{d.class_id}" and 0.25 <= d.score <= 1


async def test_classifier_endpoints(service: Running, jpeg: bytes) -> None:
    nsfw = await service.stub.ImageNSFWDetection(req(jpeg))
    assert nsfw.model == "test_nsfw_classifier" and nsfw.threshold == 0.5
    assert nsfw.is_nsfw == (nsfw.score >= 0.5)
    assert {label.label for label in nsfw.labels} == {"neutral", "nsfw"}
    assert abs(sum(label.score for label in nsfw.labels) - 1) < 1e-4
    assert abs(nsfw.score - next(x.score for x in nsfw.labels if x.label == "nsfw")) < 1e-6
    disturbing = await service.stub.ImageDisturbingContentDetection(req(jpeg))
    assert disturbing.model == "test_disturbing_classifier" and disturbing.is_disturbing == (disturbing.score >= 0.5)
    meme = await service.stub.ImageMemeDetection(req(jpeg))
    assert meme.model == "test_meme_classifier" and 0 <= meme.hateful_score <= 1
    action = await service.stub.ImageActionRecognition(req(jpeg))
    assert action.model == "test_action_classifier" and len(action.actions) == 5
    assert [a.score for a in action.actions] == sorted((a.score for a in action.actions), reverse=True)


async def test_captioning_decodes_vocabulary_words(service: Running, jpeg: bytes) -> None:
    reply = await service.stub.ImageCaptioning(req(jpeg))
    assert reply.model == "test_captioner"
    words = reply.caption.split()
    assert words and all(w.startswith("word") for w in words)
    assert 0 < reply.score <= 1 and len(reply.alternatives) == 1  # num_beams = 2


async def test_cross_modal_image_and_text_share_a_space(service: Running, jpeg: bytes) -> None:
    image = await service.stub.ImageCrossModalEmbedding(req(jpeg))
    text = await service.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="a cat on a sofa"))
    other = await service.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="a rocket launch"))
    assert text.model == "test_text_embedder"  # the image encoder's sidecar names its text encoder
    assert image.embedding.dimension == text.embedding.dimension == 16
    assert abs(np.linalg.norm(text.embedding.values) - 1) < 1e-4
    assert not np.allclose(text.embedding.values, other.embedding.values)


async def test_faces_use_the_dnn_detector_and_the_embedder(service: Running, photos) -> None:
    reply = await service.stub.ImageFaceRecognition(req(encode_image(photos["astronaut"]), model="test_face_detector"))
    assert reply.model == "test_face_detector" and reply.embedding_model == "test_face_embedder"
    assert (reply.image_size.width, reply.image_size.height) == (96, 96)
    for face in reply.faces:
        assert face.embedding.dimension == 16 and face.embedding.model == "test_face_embedder"


async def test_regions_from_the_detector_and_from_the_request(service: Running, jpeg: bytes) -> None:
    proposed = await service.stub.ImageRegionFeatureExtraction(req(jpeg))
    assert proposed.model == "test_region_embedder" and proposed.proposal_model == "test_detector"
    assert proposed.regions and all(not r.from_request and r.label for r in proposed.regions)
    box = pb.BoundingBox(x_min=0.1, y_min=0.2, x_max=0.5, y_max=0.9)
    asked = await service.stub.ImageRegionFeatureExtraction(req(jpeg, boxes=[box]))
    assert len(asked.regions) == 1 and asked.regions[0].from_request and asked.regions[0].box == box
    assert asked.whole_image.values == proposed.whole_image.values
    assert not np.allclose(asked.regions[0].embedding.values, asked.whole_image.values)


async def test_saliency_model_and_spectral_residual(service: Running, jpeg: bytes) -> None:
    model = await service.stub.ImageSaliencyDetection(req(jpeg))
    classic = await service.stub.ImageSaliencyDetection(req(jpeg, model="spectral-residual"))
    assert model.model == "test_saliency" and classic.model == "spectral-residual"
    for reply in (model, classic):
        image = Image.open(io.BytesIO(reply.map.png))
        assert image.mode == "L" and image.size == (reply.map.width, reply.map.height) == (96, 64)
        assert np.asarray(image).max() == 255
    assert classic.salient_regions


async def test_saliency_maps_of_big_images_are_capped(service: Running) -> None:
    """A 2048x1024 photo gets a 512x256 map (its aspect, MAP_MAX_SIDE long), not a full-size one,
    and the same regions (normalised) as when the map is computed at full size."""
    from skimage import data as skdata

    from services.annotation.models import saliency as sal

    rgb = np.asarray(Image.fromarray(skdata.astronaut()).resize((2048, 1024)))
    for name in ("test_saliency", "spectral-residual"):
        reply = await service.stub.ImageSaliencyDetection(req(encode_image(rgb), model=name))
        image = Image.open(io.BytesIO(reply.map.png))
        assert (reply.map.width, reply.map.height) == image.size == (512, 256), name
    full = sal.salient_regions(sal.spectral_residual(rgb, 64, max_side=2048))
    capped = sal.spectral_residual_saliency(rgb).regions
    assert len(capped) == len(full)
    assert np.abs(np.array(capped) - np.array(full)).max() < 0.02


async def test_ocr_without_models_names_the_install_command(service: Running, jpeg: bytes) -> None:
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await service.stub.ImageTextRecognition(req(jpeg))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "maam models install-shipped" in err.value.details()


async def test_text_vector_matches_the_shared_tokenizer_and_onnx_runtime(service: Running, test_repository) -> None:
    """The same text gets the same vector here as in CMRR (shared tokenizer, same encoder)."""
    import onnxruntime as ort

    from services.common.model_repository import ModelRepository
    from services.common.text_tokenizers import tokenizer_from_params

    spec = ModelRepository(test_repository).get_installed("test_text_embedder")
    ids = tokenizer_from_params(spec.path, spec.meta.params, spec.meta.source)(["a cat on a sofa"])
    session = ort.InferenceSession(str(spec.weights_path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input_ids": ids})[0][0]
    reply = await service.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="a cat on a sofa"))
    assert np.allclose(reply.embedding.values, want / np.linalg.norm(want), atol=1e-5)
