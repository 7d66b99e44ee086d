"""MediaAnnotationServer over gRPC: a thin layer that turns requests into controller calls and
failures into gRPC statuses (bad input INVALID_ARGUMENT, missing model NOT_FOUND /
FAILED_PRECONDITION naming the install command, model failures by their kind). Each single-model
RPC is the handler of its row of the task table (services/annotation/tasks.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.assets import AssetError
from services.annotation.capabilities import capabilities
from services.annotation.catalog import MissingModelError
from services.annotation.controller import Controller, SingleRequest
from services.annotation.fanout import model_error
from services.annotation.limits import check_batch, check_image, check_single, check_video
from services.annotation.options import AnnotationOptions
from services.annotation.tasks import TaskSpec

Ctx: TypeAlias = grpc.aio.ServicerContext
# A request check of services/annotation/limits.py (raises AssetError) and a controller call.
Check: TypeAlias = Callable[[Any, AnnotationOptions], None]


def _code(status: int) -> grpc.StatusCode:
    return next((code for code in grpc.StatusCode if code.value[0] == status), grpc.StatusCode.UNKNOWN)


def _stream(rpc: str, check: Check, items: str) -> Callable[[Any, Any, Ctx], AsyncIterator[Message]]:
    """A multi-model stream: bad input aborts it. `items` names the controller's method."""

    async def handle(self: AnnotationServicer, request: Any, context: Ctx) -> AsyncIterator[Message]:
        try:
            check(request, self.controller.options)
            async for item in getattr(self.controller, items)(request):
                yield item
        except AssetError as exc:
            await context.abort(exc.code, exc.message)

    handle.__name__ = rpc
    return handle


def _unary(rpc: str, check: Check | None, answer: str,
           refusal: type[Message]) -> Callable[[Any, Any, Ctx], Awaitable[Message]]:
    """A unary multi-model call: bad input is answered in its Annex II status / error_msg fields."""

    async def handle(self: AnnotationServicer, request: Any, context: Ctx) -> Message:
        try:
            if check is not None:
                check(request, self.controller.options)
            return await getattr(self.controller, answer)(request)
        except AssetError as exc:
            return refusal(status=exc.code.value[0], error_msg=exc.message)

    handle.__name__ = rpc
    return handle


class AnnotationServicer(pb_grpc.MediaAnnotationServerServicer):
    # Methods of the class (not set per instance), so a subclass can wrap one and call super().
    ImageAnnotationStream = _stream("ImageAnnotationStream", check_image, "image_stream")
    ImageAnnotationStreamBatch = _stream("ImageAnnotationStreamBatch", check_batch, "batch_stream")
    VideoAnnotationStream = _stream("VideoAnnotationStream", check_video, "video_stream")
    ImageAnnotation = _unary("ImageAnnotation", check_image, "image_unary", pb.ImageAnnotationResponse)
    VideoAnnotation = _unary("VideoAnnotation", check_video, "video_unary", pb.VideoAnnotationResponse)
    # ThreeDAnnotation checks its request in the controller.
    ThreeDAnnotation = _unary("ThreeDAnnotation", None, "three_d", pb.Annotation3dResponse)

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

    async def ListCapabilities(self, request: pb.CapabilitiesRequest, context: Ctx) -> pb.CapabilitiesResponse:
        return capabilities(self.catalog)
