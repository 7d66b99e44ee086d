"""MediaAnnotationServer over gRPC: a thin layer that turns requests into controller calls and
failures into gRPC statuses (bad input INVALID_ARGUMENT, missing model NOT_FOUND /
FAILED_PRECONDITION naming the install command, model failures by their kind). Each single-model
RPC is the handler of its row of the task table (services/annotation/tasks.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.assets import AssetError
from services.annotation.catalog import MissingModelError
from services.annotation.controller import Controller, SingleRequest
from services.annotation.fanout import model_error
from services.annotation.limits import check_batch, check_image, check_single, check_video
from services.annotation.tasks import TaskSpec

Ctx = grpc.aio.ServicerContext


def _code(status: int) -> grpc.StatusCode:
    return next((code for code in grpc.StatusCode if code.value[0] == status), grpc.StatusCode.UNKNOWN)


class AnnotationServicer(pb_grpc.MediaAnnotationServerServicer):
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.catalog = controller.catalog
        for spec in self.catalog.tasks:
            setattr(self, spec.rpc, self._single(spec))

    def _single(self, spec: TaskSpec) -> Callable[[SingleRequest, Ctx], Awaitable[Message]]:
        async def handle(request: SingleRequest, context: Ctx) -> Message:
            try:
                check_single(request, self.controller.options)
                return await self.controller.one(spec, request)
            except AssetError as exc:
                await context.abort(exc.code, exc.message)
            except MissingModelError as exc:
                code = grpc.StatusCode.NOT_FOUND if request.model else grpc.StatusCode.FAILED_PRECONDITION
                await context.abort(code, str(exc))
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception as exc:  # the model's failure, as a status
                error = model_error(request.model or "model", spec.name, exc)
                await context.abort(_code(error.status), error.error_msg)
            raise AssertionError("unreachable: context.abort raises")

        handle.__name__ = spec.rpc
        return handle

    # ---- multi-model endpoints -----------------------------------------------------------
    async def ImageAnnotationStream(
        self, request: pb.ImageAnnotationRequest, context: Ctx
    ) -> AsyncIterator[pb.ImageAnnotationStreamResponse]:
        try:
            check_image(request, self.controller.options)
            async for item in self.controller.image_stream(request):
                yield item
        except AssetError as exc:
            await context.abort(exc.code, exc.message)

    async def ImageAnnotationStreamBatch(
        self, request: pb.ImageAnnotationRequestBatch, context: Ctx
    ) -> AsyncIterator[pb.ImageAnnotationStreamResponseBatch]:
        try:
            check_batch(request, self.controller.options)
        except AssetError as exc:
            await context.abort(exc.code, exc.message)
        async for item in self.controller.batch_stream(request):
            yield item

    async def VideoAnnotationStream(
        self, request: pb.VideoAnnotationRequest, context: Ctx
    ) -> AsyncIterator[pb.VideoAnnotationStreamResponse]:
        try:
            check_video(request, self.controller.options)
            async for item in self.controller.video_stream(request):
                yield item
        except AssetError as exc:
            await context.abort(exc.code, exc.message)

    # The unary calls answer bad input in their Annex II status / error_msg fields.
    async def ImageAnnotation(self, request: pb.ImageAnnotationRequest, context: Ctx) -> pb.ImageAnnotationResponse:
        try:
            check_image(request, self.controller.options)
        except AssetError as exc:
            return pb.ImageAnnotationResponse(status=exc.code.value[0], error_msg=exc.message)
        return await self.controller.image_unary(request)

    async def VideoAnnotation(self, request: pb.VideoAnnotationRequest, context: Ctx) -> pb.VideoAnnotationResponse:
        try:
            check_video(request, self.controller.options)
        except AssetError as exc:
            return pb.VideoAnnotationResponse(status=exc.code.value[0], error_msg=exc.message)
        return await self.controller.video_unary(request)

    async def ThreeDAnnotation(self, request: pb.ThreeDAnnotationRequest, context: Ctx) -> pb.Annotation3dResponse:
        return await self.controller.three_d(request)

