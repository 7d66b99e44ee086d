"""The task table against the proto and the DAM: every single-model RPC and every result field has
exactly one row, a row's run function returns its RPC's message, the DAM stores what the table
names; and a row added to the table (here in the test only) is served by the fan-out and its RPC."""

from __future__ import annotations

import inspect
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.catalog import ModelCatalog
from services.annotation.controller import Controller
from services.annotation.models.classification import ImageClassifier
from services.annotation.models.formats import FORMATS, Format
from services.annotation.server import build_server, wait_backend
from services.annotation.servicer import AnnotationServicer
from services.annotation.tasks import TASKS, Image, Media, TaskSpec, Unit
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from services.dam.annotation import results
from tests.annotation.conftest import service_settings
from tests.support.test_models import write_nsfw_detector

SERVICE = pb.DESCRIPTOR.services_by_name["MediaAnnotationServer"]
SINGLE_INPUTS = {"AnnotationRequest", "TextEmbeddingRequest"}
SINGLE_RPCS = {m.name: m for m in SERVICE.methods if m.input_type.name in SINGLE_INPUTS}

# What the DAM has stored so far (annotations.task, the `annotation type` facet): renaming a task in
# the table changes stored data and needs an Alembic migration of these rows.
STORED_TASKS = {
    "image_action_recognition_result": "action_recognition",
    "image_captioning_result": "captioning",
    "image_cross_modal_embedding_result": "cross_modal_embedding",
    "image_disturbing_content_detection_result": "disturbing",
    "image_face_recognition_result": "face_recognition",
    "image_meme_detection_result": "meme",
    "image_object_detection_result": "object_detection",
    "image_nsfw_detection_result": "nsfw",
    "image_saliency_detection_result": "saliency",
    "image_text_recognition_result": "ocr",
    "image_region_feature_extraction_result": "region_features",
    "image_tagging_result": "tagging",
    "video_action_recognition_result": "action_recognition",
    "video_disturbing_content_detection_result": "disturbing",
    "video_face_recognition_result": "face_recognition",
    "video_nsfw_detection_result": "nsfw",
    "video_object_detection_result": "object_detection",
    "video_saliency_detection_result": "saliency",
    "video_text_recognition_result": "ocr",
}


def test_every_single_model_rpc_has_exactly_one_row() -> None:
    served = Counter(spec.rpc for spec in TASKS)
    assert set(served) == set(SINGLE_RPCS), "an RPC without a row, or a row naming no RPC of the proto"
    assert all(count == 1 for count in served.values()), served


def test_a_rows_run_function_returns_its_rpcs_message() -> None:
    for spec in TASKS:
        returned = inspect.signature(spec.run).return_annotation
        assert str(returned).rsplit(".", 1)[-1] == SINGLE_RPCS[spec.rpc].output_type.name, spec.rpc


@pytest.mark.parametrize(("stream", "unary", "media"), [
    (pb.ImageAnnotationStreamResponse, pb.ImageAnnotationResponse, Media.IMAGE),
    (pb.VideoAnnotationStreamResponse, pb.VideoAnnotationResponse, Media.VIDEO),
])
def test_every_result_field_has_exactly_one_row(stream, unary, media: Media) -> None:
    oneof = {f.name: f for f in stream.DESCRIPTOR.oneofs_by_name["response"].fields if f.name != "model_error"}
    rows = [spec for spec in TASKS if spec.field in oneof]
    assert sorted(spec.field for spec in rows) == sorted(oneof)
    for spec in rows:
        assert spec.media is media
        # The stream's field, the unary response's field and the RPC's reply are one message type.
        assert oneof[spec.field].message_type.name == SINGLE_RPCS[spec.rpc].output_type.name
        assert unary.DESCRIPTOR.fields_by_name[spec.field].message_type is oneof[spec.field].message_type
    assert not [s for s in TASKS if s.media is media and not s.field]


def test_every_repository_task_of_a_row_has_a_format() -> None:
    built = {f.task for f in FORMATS} | {"spectral_residual"}
    for spec in TASKS:
        assert set(spec.models + spec.fallback + tuple(spec.helpers.values())) <= built, spec.rpc


def test_the_dam_stores_the_tables_names() -> None:
    table = {spec.field: spec.name for spec in TASKS if spec.field}
    assert table == results.TASKS
    assert table == STORED_TASKS


# ---- a toy task, added to the table in this test only -------------------------------------------
async def toy_labels(unit: Unit, image: Image) -> pb.ImageActionRecognitionResponse:
    """The generic classifier's labels, reported where image actions go."""
    labels = await unit.model.classify(image.rgb)
    return pb.ImageActionRecognitionResponse(model=unit.name, actions=[
        pb.Label(label=f"toy:{x.label}", score=x.score, class_id=x.class_id) for x in labels])


TOY = TaskSpec("toy_labels", Media.IMAGE, "ImageActionRecognition", "image_action_recognition_result",
               ("classification",), (ImageClassifier,), toy_labels)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_new_row_is_served_by_the_fanout_and_its_rpc(test_repository: Path, jpeg: bytes) -> None:
    # The toy row takes over the image action RPC and field, for the repository's `classification`
    # model (test_classifier), which no row of the shipped table runs.
    tasks = [TOY if spec.rpc == TOY.rpc else spec for spec in TASKS]
    formats = (*FORMATS, Format("classification", None, ImageClassifier))
    settings = service_settings(test_repository)
    backend = OnnxBackend(ModelRepository(test_repository), workers=2)
    catalog = ModelCatalog(ModelRepository(test_repository), backend, tasks=tasks, formats=formats)
    server, port, _ = await build_server(settings, AnnotationServicer(Controller(settings, catalog)), "127.0.0.1:0")
    await server.start()
    try:
        await wait_backend(backend, timeout_s=60)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MediaAnnotationServerStub(channel)
            single = await stub.ImageActionRecognition(pb.AnnotationRequest(asset_data=jpeg))
            assert single.model == "test_classifier" and single.actions[0].label.startswith("toy:label_")
            reply = await stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=jpeg))
            assert "test_classifier" in reply.valid_models and "test_action_classifier" not in reply.valid_models
            assert reply.image_action_recognition_result == single
            streamed = [m async for m in stub.ImageAnnotationStream(
                pb.ImageAnnotationRequest(image_data=jpeg, models=["toy_labels"]))]
            assert [m.image_action_recognition_result for m in streamed] == [single]
    finally:
        await server.stop(None)
        await backend.close()


def test_a_named_model_of_another_task_is_refused_with_the_reason(test_repository: Path) -> None:
    from services.annotation.catalog import MissingModelError

    backend = OnnxBackend(ModelRepository(test_repository), workers=1)
    catalog = ModelCatalog(ModelRepository(test_repository), backend)
    objects = next(spec for spec in TASKS if spec.rpc == "ImageObjectDetection")
    with pytest.raises(MissingModelError, match="'test_captioner' serves image_captioning"):
        catalog.unit(objects, "test_captioner")
    assert catalog.unit(objects).name == "test_detector"
    # The fallback stands in for an RPC only where the row says so (region features: not fanned out).
    regions = next(spec for spec in TASKS if spec.rpc == "ImageRegionFeatureExtraction")
    no_region_model = replace(regions, models=("no_such_task",))
    assert catalog.unit(no_region_model).name == "test_image_embedder"
    fanned = ModelCatalog(ModelRepository(test_repository), backend, tasks=[no_region_model]).units(Media.IMAGE)
    assert fanned == []


@pytest.mark.asyncio(loop_scope="session")
async def test_nsfw_classifier_decides_and_the_detector_gives_the_regions(
    start_service, test_repository: Path, tmp_path: Path, jpeg: bytes, video: bytes
) -> None:
    """A composite unit: with an image classifier (nsfw_classification) beside the body-part
    detector (nsfw_detection), the classifier's verdict carries the detector's regions."""
    shutil.copytree(test_repository / "test_nsfw_classifier", tmp_path / "test_nsfw_classifier")
    write_nsfw_detector(tmp_path)
    running = await start_service(service_settings(tmp_path))
    stub = running.stub
    alone = await stub.ImageNSFWDetection(pb.AnnotationRequest(asset_data=jpeg, model="test_nsfw_detector"))
    assert alone.regions, "the random detector fires on the photo"
    both = await stub.ImageNSFWDetection(pb.AnnotationRequest(asset_data=jpeg))
    assert both.model == "test_nsfw_classifier" and {x.label for x in both.labels} == {"neutral", "nsfw"}
    assert both.is_nsfw == (both.score >= both.threshold)
    assert list(both.regions) == list(alone.regions)
    reply = await stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=jpeg))
    assert sorted(reply.valid_models) == ["spectral-residual", "test_nsfw_classifier"]  # the detector: evidence
    assert reply.image_nsfw_detection_result == both
    frames = await stub.VideoNSFWDetection(pb.AnnotationRequest(asset_data=video))
    assert frames.model == "test_nsfw_classifier" and len(frames.frames) == 3
