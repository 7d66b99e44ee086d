"""Bad input gets INVALID_ARGUMENT (a gRPC status on single-model and streaming calls, Annex II
status/error_msg fields on the unary multi-model calls) with a message a person understands."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from protos import media_annotation_pb2 as pb
from tests.annotation.conftest import Running, service_settings
from tests.support.media import png_bomb_header

pytestmark = pytest.mark.asyncio(loop_scope="session")
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest_asyncio.fixture(loop_scope="session")
async def svc(start_service, test_repository: Path) -> Running:
    return await start_service(service_settings(test_repository))


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        result = call()
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    return err.value


async def test_both_or_neither_url_and_bytes(svc: Running, jpeg: bytes) -> None:
    both = await rpc_error(lambda: svc.stub.ImageObjectDetection(
        pb.AnnotationRequest(asset_url="https://example.com/a.jpg", asset_data=jpeg)))
    assert both.code() == INVALID and "not both" in both.details()
    neither = await rpc_error(lambda: svc.stub.ImageAnnotationStream(pb.ImageAnnotationRequest()))
    assert neither.code() == INVALID and "image_url or image_data" in neither.details()
    unary = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_url="https://x.org/a", image_data=jpeg))
    assert unary.status == INVALID.value[0] and "not both" in unary.error_msg and not unary.valid_models
    video = await svc.stub.VideoAnnotation(pb.VideoAnnotationRequest())
    assert video.status == INVALID.value[0] and "video_url or video_data" in video.error_msg


async def test_private_url_is_refused(svc: Running) -> None:
    err = await rpc_error(lambda: svc.stub.ImageNSFWDetection(
        pb.AnnotationRequest(asset_url="http://127.0.0.1:9/secret.png")))
    assert err.code() == INVALID and "loopback, private or link-local" in err.details()
    meta = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_url="http://169.254.169.254/latest"))
    assert meta.status == INVALID.value[0] and "not allowed" in meta.error_msg


async def test_truncated_jpeg(svc: Running, jpeg: bytes) -> None:
    err = await rpc_error(lambda: svc.stub.ImageObjectDetection(pb.AnnotationRequest(asset_data=jpeg[: len(jpeg) // 2])))
    assert err.code() == INVALID and "corrupt or truncated image/jpeg" in err.details()


async def test_png_decompression_bomb(svc: Running) -> None:
    bomb = png_bomb_header(20000, 20000)
    err = await rpc_error(lambda: svc.stub.ImageAnnotationStream(pb.ImageAnnotationRequest(image_data=bomb)))
    assert err.code() == INVALID and "decompression bomb" in err.details()
    unary = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=bomb))
    assert unary.status == INVALID.value[0] and "decompression bomb" in unary.error_msg


async def test_zero_byte_and_corrupt_video(svc: Running, video: bytes) -> None:
    empty = await rpc_error(lambda: svc.stub.VideoObjectDetection(pb.AnnotationRequest(asset_data=b"\x00" * 0)))
    assert empty.code() == INVALID  # an empty asset_data is "no asset" on the wire
    stream = await rpc_error(lambda: svc.stub.VideoAnnotationStream(pb.VideoAnnotationRequest(video_data=b"")))
    assert stream.code() == INVALID
    garbage = await rpc_error(lambda: svc.stub.VideoNSFWDetection(pb.AnnotationRequest(asset_data=b"\x00" * 4096)))
    assert garbage.code() == INVALID and "could not be opened" in garbage.details()
    cut = await rpc_error(lambda: svc.stub.VideoNSFWDetection(pb.AnnotationRequest(asset_data=video[:200])))
    assert cut.code() == INVALID


async def test_wrong_media_type(svc: Running, video: bytes, jpeg: bytes) -> None:
    err = await rpc_error(lambda: svc.stub.ImageCaptioning(pb.AnnotationRequest(asset_data=video)))
    assert err.code() == INVALID and "expected an image, but the data is a video" in err.details()
    err = await rpc_error(lambda: svc.stub.VideoSaliencyDetection(pb.AnnotationRequest(asset_data=jpeg)))
    assert err.code() == INVALID and "expected a video, but the data is an image" in err.details()


async def test_unknown_3d_format(svc: Running) -> None:
    reply = await svc.stub.ThreeDAnnotation(
        pb.ThreeDAnnotationRequest(asset_data=b"FBX binary", asset_type="fbx")
    )
    assert reply.status == INVALID.value[0] and "unknown 3D format 'fbx'" in reply.error_msg
    corrupt = await svc.stub.ThreeDAnnotation(pb.ThreeDAnnotationRequest(asset_data=b"ply\nnonsense", asset_type="ply"))
    assert corrupt.status == INVALID.value[0] and corrupt.error_msg


async def test_missing_model_is_named(svc: Running, jpeg: bytes) -> None:
    err = await rpc_error(lambda: svc.stub.ImageObjectDetection(pb.AnnotationRequest(asset_data=jpeg, model="yolo_x")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "'yolo_x' is not installed" in err.details()
    bad_box = pb.BoundingBox(x_min=0.5, y_min=0.2, x_max=0.1, y_max=0.9)
    err = await rpc_error(lambda: svc.stub.ImageRegionFeatureExtraction(pb.AnnotationRequest(asset_data=jpeg, boxes=[bad_box])))
    assert err.code() == INVALID
    err = await rpc_error(lambda: svc.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text="  ")))
    assert err.code() == INVALID and "empty" in err.details()
