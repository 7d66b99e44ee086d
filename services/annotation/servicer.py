"""MediaAnnotationServer over gRPC: a thin layer that turns requests into controller calls and
failures into gRPC statuses (bad input INVALID_ARGUMENT, missing model NOT_FOUND /
FAILED_PRECONDITION naming the install command, model failures by their kind)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
import numpy as np

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation import image_tasks, messages, video_tasks
from services.annotation.assets import AssetError, invalid
from services.annotation.catalog import MissingModelError
from services.annotation.controller import Controller
from services.annotation.fanout import model_error
from services.annotation.models.base import TaskModel
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import YoloDetector
from services.annotation.models.embedding import ImageEmbedder, TextEmbedder
from services.annotation.models.saliency import SPECTRAL_RESIDUAL, SaliencyModel
from services.annotation.video import DecodedVideo

log = logging.getLogger(__name__)

R = TypeVar("R")
Ctx = grpc.aio.ServicerContext


class AnnotationServicer(pb_grpc.MediaAnnotationServerServicer):
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.catalog = controller.catalog

    # ---- error handling ------------------------------------------------------------------
    async def _guard(self, context: Ctx, call: Callable[[], Awaitable[R]], model: str = "") -> R:
        try:
            return await call()
        except AssetError as exc:
            await context.abort(exc.code, exc.message)
        except MissingModelError as exc:
            code = grpc.StatusCode.NOT_FOUND if model else grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(exc))
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:  # one model's failure, as a status
            error = model_error(model or "model", "", exc)
            await context.abort(_code(error.status), error.error_msg)
        raise AssertionError("unreachable")

    def _pick(self, task: str, name: str, kind: type[TaskModel], *alternatives: str) -> TaskModel:
        if not name:
            for candidate in (task, *alternatives):
                if self.catalog.default(candidate) is not None:
                    return self.catalog.pick(candidate, "", kind)
            return self.catalog.pick(task, name, kind)
        adapter = self.catalog.adapters.get(name)
        if adapter is not None and adapter.task in (task, *alternatives):
            return adapter
        return self.catalog.pick(task, name, kind)  # raises with the reason

    async def _image(
        self, request: pb.AnnotationRequest, context: Ctx, run: Callable[[np.ndarray], Awaitable[R]]
    ) -> R:
        async def call() -> R:
            async with self.controller.admission:
                rgb = await self.controller.single_image(request)
                return await run(rgb)

        return await self._guard(context, call, request.model)

    async def _video(
        self,
        request: pb.AnnotationRequest,
        context: Ctx,
        run: Callable[[DecodedVideo], Awaitable[R]],
        clip_frames: int = 0,
    ) -> R:
        async def call() -> R:
            async with self.controller.admission:
                video = await self.controller.single_video(request, clip_frames)
                return await run(video)

        return await self._guard(context, call, request.model)

    # ---- multi-model endpoints -----------------------------------------------------------
    async def ImageAnnotationStream(
        self, request: pb.ImageAnnotationRequest, context: Ctx
    ) -> AsyncIterator[pb.ImageAnnotationStreamResponse]:
        try:
            async for item in self.controller.image_stream(request):
                yield item
        except AssetError as exc:
            await context.abort(exc.code, exc.message)

    async def ImageAnnotationStreamBatch(
        self, request: pb.ImageAnnotationRequestBatch, context: Ctx
    ) -> AsyncIterator[pb.ImageAnnotationStreamResponseBatch]:
        if not request.requests:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the batch holds no requests")
        async for item in self.controller.batch_stream(request):
            yield item

    async def VideoAnnotationStream(
        self, request: pb.VideoAnnotationRequest, context: Ctx
    ) -> AsyncIterator[pb.VideoAnnotationStreamResponse]:
        try:
            async for item in self.controller.video_stream(request):
                yield item
        except AssetError as exc:
            await context.abort(exc.code, exc.message)

    async def ImageAnnotation(self, request: pb.ImageAnnotationRequest, context: Ctx) -> pb.ImageAnnotationResponse:
        return await self.controller.image_unary(request)

    async def VideoAnnotation(self, request: pb.VideoAnnotationRequest, context: Ctx) -> pb.VideoAnnotationResponse:
        return await self.controller.video_unary(request)

    async def ThreeDAnnotation(self, request: pb.ThreeDAnnotationRequest, context: Ctx) -> pb.Annotation3dResponse:
        return await self.controller.three_d(request)

    # ---- single image models -------------------------------------------------------------
    async def ImageObjectDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.object_detection(
            self._pick("object_detection", request.model, YoloDetector), rgb))  # type: ignore[arg-type]

    async def ImageNSFWDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.nsfw(
            self._pick("nsfw_classification", request.model, ImageClassifier, "nsfw_detection"), rgb))  # type: ignore

    async def ImageDisturbingContentDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.disturbing(
            self._pick("disturbing_classification", request.model, ImageClassifier), rgb))  # type: ignore[arg-type]

    async def ImageMemeDetection(self, request: pb.AnnotationRequest, context: Ctx):
        hateful = self.catalog.default("hateful_meme_classification")
        return await self._image(request, context, lambda rgb: image_tasks.meme(
            self._pick("meme_classification", request.model, ImageClassifier), hateful, rgb))  # type: ignore

    async def ImageActionRecognition(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.action(
            self._pick("action_recognition", request.model, ImageClassifier), rgb))  # type: ignore[arg-type]

    async def ImageCaptioning(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.caption(
            self._pick("image_captioning", request.model, Captioner), rgb))  # type: ignore[arg-type]

    async def ImageCrossModalEmbedding(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.cross_modal(
            self._pick("image_embedding", request.model, ImageEmbedder), rgb))  # type: ignore[arg-type]

    async def ImageFaceRecognition(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.faces(
            self.catalog.face_pipeline(request.model), rgb))

    async def ImageTextRecognition(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.text(
            self.catalog.ocr_pipeline(request.model), rgb))

    async def ImageSaliencyDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._image(request, context, lambda rgb: image_tasks.saliency(self._saliency(request.model), rgb))

    async def ImageRegionFeatureExtraction(self, request: pb.AnnotationRequest, context: Ctx):
        boxes = [(b.x_min, b.y_min, b.x_max, b.y_max) for b in request.boxes]
        for box in boxes:
            if not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"box {box} is not a normalised box (0 <= x_min < x_max <= 1, same for y)",
                )

        def run(rgb: np.ndarray):
            model = self._pick("region_embedding", request.model, ImageEmbedder, "image_embedding")
            detector = None if boxes else self.catalog.default("object_detection")
            return image_tasks.regions(model, detector, rgb, boxes)  # type: ignore[arg-type]

        return await self._image(request, context, run)

    def _saliency(self, name: str) -> SaliencyModel | None:
        if name == SPECTRAL_RESIDUAL:
            return None
        if name or self.catalog.default("saliency") is not None:
            return self.catalog.pick("saliency", name, SaliencyModel)  # type: ignore[return-value]
        return None

    async def TextCrossModalEmbedding(
        self, request: pb.TextEmbeddingRequest, context: Ctx
    ) -> pb.TextCrossModalEmbeddingResponse:
        if not request.text.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "text is empty")

        async def call() -> pb.TextCrossModalEmbeddingResponse:
            name = request.model
            if not name:
                image_model = self.catalog.default("image_embedding")
                name = str(image_model.params.get("text_model", "")) if image_model is not None else ""
                if image_model is not None and not name and image_model.params.get("cross_modal") is False:
                    raise MissingModelError(
                        f"the installed image embedding {image_model.name!r} is visual only (not cross-modal); "
                        "text-to-image search needs CLIP: `maam models pull clip_vit_b32`"
                    )
            model = self.catalog.pick("text_embedding", name, TextEmbedder)
            vector = await model.embed_text(request.text)  # type: ignore[attr-defined]
            return pb.TextCrossModalEmbeddingResponse(model=model.name, embedding=messages.embedding_pb(vector))

        return await self._guard(context, call, request.model)

    # ---- single video models -------------------------------------------------------------
    async def VideoNSFWDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._video(request, context, lambda v: video_tasks.nsfw(
            self._pick("nsfw_classification", request.model, ImageClassifier, "nsfw_detection"), v))  # type: ignore

    async def VideoDisturbingContentDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._video(request, context, lambda v: video_tasks.disturbing(
            self._pick("disturbing_classification", request.model, ImageClassifier), v))  # type: ignore[arg-type]

    async def VideoObjectDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._video(request, context, lambda v: video_tasks.objects(
            self._pick("object_detection", request.model, YoloDetector), v))  # type: ignore[arg-type]

    async def VideoFaceRecognition(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._video(request, context, lambda v: video_tasks.faces(
            self.catalog.face_pipeline(request.model), v))

    async def VideoSaliencyDetection(self, request: pb.AnnotationRequest, context: Ctx):
        return await self._video(request, context, lambda v: video_tasks.saliency(self._saliency(request.model), v))

    async def VideoActionRecognition(self, request: pb.AnnotationRequest, context: Ctx):
        try:
            model = self._pick("video_action_recognition", request.model, ClipClassifier, "action_recognition")
        except MissingModelError as exc:
            code = grpc.StatusCode.NOT_FOUND if request.model else grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(exc))
        frames = model.clip_len if isinstance(model, ClipClassifier) else 4
        return await self._video(request, context, lambda v: video_tasks.actions(model, v), clip_frames=frames)  # type: ignore

    async def VideoFaceBlurring(self, request: pb.AnnotationRequest, context: Ctx) -> pb.VideoFaceBlurringResponse:
        from services.annotation.face_blurring import blur

        async def call() -> pb.VideoFaceBlurringResponse:
            async with self.controller.admission:
                return await blur(self.controller, request)

        return await self._guard(context, call, request.model)


def _code(status: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == status:
            return code
    return grpc.StatusCode.UNKNOWN


__all__ = ["AnnotationServicer", "invalid"]
