"""Every size a request controls is bounded up front (issue 20): views, boxes, models named, batch length, text
and URL length, video sampling options, and the per-request render budgets. A request past a bound is
INVALID_ARGUMENT (a status on single-model and streaming calls, the Annex II status field on unary calls) with
a message naming the field, and no work starts: `views=100000` once grew the service to 24 GB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import trimesh

from protos import media_annotation_pb2 as pb
from services.annotation.options import AnnotationOptions
from tests.annotation.conftest import Running, service_settings
from tests.annotation.test_bad_input import rpc_error

pytestmark = pytest.mark.asyncio(loop_scope="session")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
BOX_OBJ = trimesh.creation.box(extents=(2.0, 1.0, 0.5)).export(file_type="obj").encode()
# A 300-character host name: the idna codec refuses it, which once surfaced as INTERNAL.
LONG_HOST_URL = f"http://{'a' * 300}.example/x.jpg"


@pytest_asyncio.fixture(loop_scope="session")
async def svc(start_service, test_repository: Path) -> Running:
    return await start_service(service_settings(test_repository))


async def three_d(svc: Running, **fields) -> pb.Annotation3dResponse:
    fields.setdefault("asset_data", BOX_OBJ)
    fields.setdefault("asset_type", "obj")
    # A refusal is immediate; the deadline keeps an unbounded render from hanging the test.
    return await svc.stub.ThreeDAnnotation(pb.ThreeDAnnotationRequest(**fields), timeout=20)


async def test_views_out_of_range_are_refused_before_rendering(svc: Running) -> None:
    for views in (33, 100_000, -1):
        reply = await three_d(svc, views=views)
        assert reply.status == INVALID.value[0] and not reply.views, views
        assert f"views is {views}" in reply.error_msg and "to 32" in reply.error_msg
    fine = await three_d(svc, views=2)
    assert fine.status == 0 and len(fine.views) == 2


async def test_the_render_budgets_count_views_times_pixels_and_faces(start_service, test_repository: Path) -> None:
    options = AnnotationOptions(render_size=1000, max_rendered_faces=30)  # 4 Mpx = 4 views of 1000x1000
    svc = await start_service(service_settings(test_repository), options=options)
    pixels = await three_d(svc, views=5)
    assert pixels.status == INVALID.value[0] and "render budget of 4,000,000" in pixels.error_msg
    faces = await three_d(svc, views=3)  # 3 x 12 faces > 30
    assert faces.status == INVALID.value[0] and "draw 36 faces" in faces.error_msg
    fine = await three_d(svc, views=2)
    assert fine.status == 0 and len(fine.views) == 2


async def test_asset_type_is_checked_before_the_asset_is_fetched(svc: Running) -> None:
    reply = await three_d(svc, asset_url="http://127.0.0.1:9/never-fetched.obj", asset_data=b"", asset_type="x" * 5000)
    assert reply.status == INVALID.value[0] and "unknown 3D format" in reply.error_msg
    assert len(reply.error_msg) < 300


async def test_too_many_boxes(svc: Running, jpeg: bytes) -> None:
    box = pb.BoundingBox(x_min=0.1, y_min=0.1, x_max=0.5, y_max=0.5)
    err = await rpc_error(lambda: svc.stub.ImageRegionFeatureExtraction(
        pb.AnnotationRequest(asset_data=jpeg, boxes=[box] * 257)))
    assert err.code() == INVALID and "257 boxes, over the limit of 256" in err.details()


async def test_too_many_or_too_long_model_names(svc: Running, jpeg: bytes) -> None:
    names = [f"m{i}" for i in range(65)]
    request = pb.ImageAnnotationRequest(image_data=jpeg, models=names)
    err = await rpc_error(lambda: svc.stub.ImageAnnotationStream(request))
    assert err.code() == INVALID and "65 models, over the limit of 64" in err.details()
    unary = await svc.stub.ImageAnnotation(request)
    assert unary.status == INVALID.value[0] and "over the limit of 64" in unary.error_msg and not unary.valid_models
    long_name = pb.AnnotationRequest(asset_data=jpeg, model="m" * 201)
    err = await rpc_error(lambda: svc.stub.ImageObjectDetection(long_name))
    assert err.code() == INVALID and "201 characters" in err.details()


async def test_batch_length_is_bounded(svc: Running) -> None:
    item = pb.ImageAnnotationRequest(image_url="http://127.0.0.1:9/x.jpg")
    batch = pb.ImageAnnotationRequestBatch(requests=[item] * 257)
    err = await rpc_error(lambda: svc.stub.ImageAnnotationStreamBatch(batch))
    assert err.code() == INVALID and "257 requests, over the limit of 256" in err.details()
    long_url = pb.ImageAnnotationRequest(image_url="https://example.com/" + "a" * 5000)
    batch = pb.ImageAnnotationRequestBatch(requests=[long_url])
    err = await rpc_error(lambda: svc.stub.ImageAnnotationStreamBatch(batch))
    assert err.code() == INVALID and err.details().startswith("requests[0]: image_url has 5,020 characters")


async def test_text_length_is_bounded(svc: Running) -> None:
    err = await rpc_error(lambda: svc.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="word " * 2001)))
    assert err.code() == INVALID and "10,005 characters, over the 10,000-character limit" in err.details()


async def test_a_300_character_host_name_is_invalid_argument(svc: Running) -> None:
    err = await rpc_error(lambda: svc.stub.ImageObjectDetection(pb.AnnotationRequest(asset_url=LONG_HOST_URL)))
    assert err.code() == INVALID and "not a valid host name" in err.details()
    unary = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_url=LONG_HOST_URL))
    assert unary.status == INVALID.value[0] and "not a valid host name" in unary.error_msg
    port = await rpc_error(lambda: svc.stub.ImageCaptioning(pb.AnnotationRequest(asset_url="http://example.com:99999/a")))
    assert port.code() == INVALID and "malformed" in port.details()


@pytest.mark.parametrize("options, field", [
    (pb.VideoOptions(max_keyframes_per_minute=float("inf")), "max_keyframes_per_minute"),
    (pb.VideoOptions(max_keyframes_per_minute=float("nan")), "max_keyframes_per_minute"),
    (pb.VideoOptions(max_keyframes_per_minute=-2), "max_keyframes_per_minute"),
    (pb.VideoOptions(clip_seconds=-1), "clip_seconds"),
    (pb.VideoOptions(clip_seconds=1e30), "clip_seconds"),
    (pb.VideoOptions(face_check_every=-5), "face_check_every"),
])
async def test_video_options_out_of_range(svc: Running, video: bytes, options: pb.VideoOptions, field: str) -> None:
    err = await rpc_error(lambda: svc.stub.VideoObjectDetection(pb.AnnotationRequest(asset_data=video,
                                                                                       video_options=options)))
    assert err.code() == INVALID and f"video_options.{field}" in err.details()
    unary = await svc.stub.VideoAnnotation(pb.VideoAnnotationRequest(video_data=video, video_options=options))
    assert unary.status == INVALID.value[0] and f"video_options.{field}" in unary.error_msg


async def test_the_service_still_answers_after_the_refusals(svc: Running, jpeg: bytes) -> None:
    replies = await asyncio.gather(*(three_d(svc, views=100_000) for _ in range(8)))
    assert all(r.status == INVALID.value[0] for r in replies)
    ok = await svc.stub.ImageObjectDetection(pb.AnnotationRequest(asset_data=jpeg))
    assert ok.model
