"""The annotation controller: admits a request, gets its asset, takes the units of the task table
(services/annotation/tasks.py) from the catalog and runs them. Streams hand over each model's
result as it finishes; unary calls gather the same results; a single-model RPC runs one unit.
Every call is admitted here, and only here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import numpy as np
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from services.annotation.assets import AssetError, asset_bytes, check_video, invalid, load_image
from services.annotation.catalog import ModelCatalog
from services.annotation.fanout import FanOut, Outcome, select
from services.annotation.limits import check_render_work, check_three_d
from services.annotation.messages import png_bytes, size_pb
from services.annotation.models.types import Box
from services.annotation.options import AnnotationOptions
from services.annotation.tasks import Image, Media, TaskSpec, Unit, VideoFile
from services.annotation.three_d import load_mesh, mesh_info, render_views
from services.annotation.video import DecodedVideo, Sampling, decode_video
from services.common.media import MediaError
from services.common.settings import Settings

SingleRequest = pb.AnnotationRequest | pb.TextEmbeddingRequest


def _stream_item(outcome: Outcome, message_type: type) -> Message:
    if outcome.error is not None:
        return message_type(model_error=outcome.error)
    return message_type(**{outcome.field: outcome.result})


def _boxes(boxes: Sequence[pb.BoundingBox]) -> list[Box]:
    found = [(b.x_min, b.y_min, b.x_max, b.y_max) for b in boxes]
    for box in found:
        if not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
            raise invalid(f"box {box} is not a normalised box (0 <= x_min < x_max <= 1, same for y)")
    return found


class Controller:
    def __init__(self, settings: Settings, catalog: ModelCatalog, options: AnnotationOptions | None = None) -> None:
        self.media = settings.media
        self.catalog = catalog
        self.options = options or catalog.options
        self.fanout = FanOut(self.options.max_concurrent_model_runs, self.options.model_timeout_s)
        # Requests being worked on (decoded assets in memory); more wait here, in order.
        self.admission = asyncio.Semaphore(max(1, settings.annotation.max_concurrent_requests))
        # The result queues of the batch streams now running, for the queue-depth metric.
        self._batch_queues: set[asyncio.Queue] = set()

    def batch_queue_depth(self) -> int:
        """Results waiting in batch streams for slow clients to read them."""
        return sum(queue.qsize() for queue in self._batch_queues)

    # ---- assets ------------------------------------------------------------------------------
    async def _image(self, url: str, data: bytes, field: str = "image") -> np.ndarray:
        return await load_image(await asset_bytes(url, data, self.media, field), self.media)

    async def _video(self, url: str, data: bytes, options: pb.VideoOptions, clip_frames: int,
                     field: str = "video") -> DecodedVideo:
        raw = await asset_bytes(url, data, self.media, field)
        check_video(raw)
        sampling = Sampling(
            keyframes_per_minute=options.max_keyframes_per_minute or self.options.keyframes_per_minute,
            max_keyframes=self.options.max_keyframes,
            shot_threshold=self.options.shot_threshold,
            max_side=self.options.frame_max_side,
            clip_seconds=options.clip_seconds or self.options.clip_seconds,
            frames_per_clip=clip_frames,
            max_clips=self.options.max_clips,
        )
        try:
            video = await asyncio.to_thread(decode_video, raw, sampling)
        except MediaError as exc:
            raise invalid(str(exc)) from exc
        video.equirectangular = options.equirectangular
        return video

    async def _payload(self, media: Media, request: SingleRequest, unit: Unit) -> object:
        """What a single-model RPC's unit runs on (see tasks.Media)."""
        if isinstance(request, pb.TextEmbeddingRequest):
            if not request.text.strip():
                raise invalid("text is empty")
            return request.text
        if media is Media.IMAGE:
            boxes = _boxes(request.boxes)
            rgb = await self._image(request.asset_url, request.asset_data, "asset")
            return Image(rgb, boxes, request.video_options.equirectangular)
        if media is Media.VIDEO:
            return await self._video(
                request.asset_url, request.asset_data, request.video_options, unit.clip_frames, "asset"
            )
        raw = await asset_bytes(request.asset_url, request.asset_data, self.media, "asset")
        check_video(raw)
        return VideoFile(raw, request.video_options, self.options.max_inline_video_mb * 1024 * 1024)

    # ---- single-model RPCs -------------------------------------------------------------------
    async def one(self, spec: TaskSpec, request: SingleRequest) -> Message:
        """The requested (or default) model of one row on the request's asset; its failure raises."""
        async with self.admission:
            unit = self.catalog.unit(spec, request.model)
            return await unit.run(await self._payload(spec.media, request, unit))

    # ---- fan-outs ----------------------------------------------------------------------------
    async def _outcomes(self, units: list[Unit], errors: list[Outcome], payload: object) -> AsyncIterator[Outcome]:
        for error in errors:
            yield error
        async for outcome in self.fanout.stream(units, payload):
            yield outcome

    def image_outcomes(self, rgb: np.ndarray, requested: Sequence[str]) -> AsyncIterator[Outcome]:
        return self._outcomes(*select(self.catalog.units(Media.IMAGE), requested), Image(rgb))

    async def video_outcomes(
        self, request: pb.VideoAnnotationRequest, info: pb.VideoInfo | None = None
    ) -> AsyncIterator[Outcome]:
        """Outcomes of every video unit; `info`, when given, is filled with the decoded video's facts."""
        units, errors = select(self.catalog.units(Media.VIDEO), request.models)
        clips = max((u.clip_frames for u in units), default=0)
        video = await self._video(request.video_url, request.video_data, request.video_options, clips)
        if info is not None:
            info.CopyFrom(video.info())
        async for outcome in self._outcomes(units, errors, video):
            yield outcome

    async def _fill(
        self, response: pb.ImageAnnotationResponse | pb.VideoAnnotationResponse, media: Media,
        outcomes: AsyncIterator[Outcome],
    ) -> None:
        """A unary response: one field per task, the task's default model winning when several ran."""
        defaults = {(u.field, u.name) for u in self.catalog.units(media) if u.default}
        filled: set[str] = set()
        async for outcome in outcomes:
            if outcome.error is not None:
                response.model_errors.append(outcome.error)
                continue
            response.valid_models.append(outcome.model)
            if outcome.field not in filled or (outcome.field, outcome.model) in defaults:
                getattr(response, outcome.field).CopyFrom(outcome.result)
                filled.add(outcome.field)

    # ---- images --------------------------------------------------------------------------------
    async def image_stream(self, request: pb.ImageAnnotationRequest) -> AsyncIterator[pb.ImageAnnotationStreamResponse]:
        async with self.admission:
            rgb = await self._image(request.image_url, request.image_data)
            async for outcome in self.image_outcomes(rgb, request.models):
                yield _stream_item(outcome, pb.ImageAnnotationStreamResponse)

    async def annotate_image(self, rgb: np.ndarray, requested: Sequence[str]) -> pb.ImageAnnotationResponse:
        response = pb.ImageAnnotationResponse(status=0, image_size=size_pb(rgb))
        await self._fill(response, Media.IMAGE, self.image_outcomes(rgb, requested))
        return response

    async def image_unary(self, request: pb.ImageAnnotationRequest) -> pb.ImageAnnotationResponse:
        async with self.admission:
            return await self.annotate_image(await self._image(request.image_url, request.image_data), request.models)

    async def batch_stream(
        self, request: pb.ImageAnnotationRequestBatch
    ) -> AsyncIterator[pb.ImageAnnotationStreamResponseBatch]:
        """Images annotated a few at a time; results go through a bounded queue, so when the client
        reads slowly the producers wait instead of buffering everything."""
        queue: asyncio.Queue[pb.ImageAnnotationStreamResponseBatch | None] = asyncio.Queue(
            max(1, self.options.batch_queue_size)
        )
        parallel = asyncio.Semaphore(max(1, self.options.batch_parallelism))

        async def one(index: int, item: pb.ImageAnnotationRequest) -> None:
            async with parallel:
                try:
                    rgb = await self._image(item.image_url, item.image_data)
                except AssetError as exc:
                    await queue.put(pb.ImageAnnotationStreamResponseBatch(
                        index=index, status=exc.code.value[0], error_msg=exc.message))
                    return
                async for outcome in self.image_outcomes(rgb, item.models):
                    await queue.put(pb.ImageAnnotationStreamResponseBatch(
                        index=index, response=_stream_item(outcome, pb.ImageAnnotationStreamResponse)))

        async def produce() -> None:
            try:
                await asyncio.gather(*(one(i, item) for i, item in enumerate(request.requests)))
            finally:
                await queue.put(None)

        async with self.admission:
            producer = asyncio.create_task(produce())
            self._batch_queues.add(queue)
            try:
                while (message := await queue.get()) is not None:
                    yield message
                await producer
            finally:
                self._batch_queues.discard(queue)
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer

    # ---- videos ------------------------------------------------------------------------------
    async def video_stream(self, request: pb.VideoAnnotationRequest) -> AsyncIterator[pb.VideoAnnotationStreamResponse]:
        async with self.admission:
            async for outcome in self.video_outcomes(request):
                yield _stream_item(outcome, pb.VideoAnnotationStreamResponse)

    async def video_unary(self, request: pb.VideoAnnotationRequest) -> pb.VideoAnnotationResponse:
        response = pb.VideoAnnotationResponse(status=0)
        async with self.admission:
            await self._fill(response, Media.VIDEO, self.video_outcomes(request, response.video))
        return response

    # ---- 3D ------------------------------------------------------------------------------------
    async def three_d(self, request: pb.ThreeDAnnotationRequest) -> pb.Annotation3dResponse:
        """Bad input raises AssetError (the servicer answers it in the status fields)."""
        count_views = check_three_d(request, self.options)  # before waiting for admission
        async with self.admission:
            raw = await asset_bytes(request.asset_url, request.asset_data, self.media)
            try:
                mesh, count = await asyncio.to_thread(load_mesh, raw, request.asset_type, self.options.max_mesh_faces)
                check_render_work(len(mesh.faces), count_views, self.options)
                views = await asyncio.to_thread(render_views, mesh, count_views, self.options.render_size)
            except MediaError as exc:
                raise invalid(str(exc)) from exc
            response = pb.Annotation3dResponse(status=0, geometry=mesh_info(mesh, count))
            annotated = await asyncio.gather(*(self.annotate_image(v.rgb, ()) for v in views))
        best: dict[str, pb.Label] = {}
        valid: list[str] = []
        for view, found in zip(views, annotated, strict=True):
            response.views.append(
                pb.RenderedView(
                    azimuth=view.azimuth, elevation=view.elevation, png=png_bytes(view.rgb), annotations=found
                )
            )
            valid.extend(name for name in found.valid_models if name not in valid)
            labels = [pb.Label(label=d.label, score=d.score, class_id=d.class_id)
                      for d in found.image_object_detection_result.detections]
            labels += list(found.image_action_recognition_result.actions)
            for label in labels:
                if label.label not in best or label.score > best[label.label].score:
                    best[label.label] = label
        response.valid_models.extend(valid)
        response.labels.extend(sorted(best.values(), key=lambda x: -x.score))
        return response
