"""gRPC client of the annotation service (protos/media_annotation.proto)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc

# Codes that say "this request will never succeed"; anything else is retried with backoff.
# RESOURCE_EXHAUSTED is what gRPC answers for a message over the size cap: the same bytes are as large
# on every retry (the annotation service signals overload with UNAVAILABLE, which is retried).
PERMANENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED,
}


class AnnotationServiceError(RuntimeError):
    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def rpc_error(exc: grpc.aio.AioRpcError) -> AnnotationServiceError:
    code = exc.code()
    return AnnotationServiceError(f"annotation service: {code.name}: {exc.details()}", code in PERMANENT_CODES)


class AnnotationClient:
    def __init__(self, target: str, max_message_mb: int = 256, timeout_s: float = 600.0,
                 models: list[str] | None = None) -> None:
        max_bytes = max_message_mb * 1024 * 1024
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[("grpc.max_send_message_length", max_bytes), ("grpc.max_receive_message_length", max_bytes)],
        )
        self._stub = pb_grpc.MediaAnnotationServerStub(self._channel)
        self._timeout = timeout_s
        self._models = list(models or [])
        self.target = target

    async def close(self) -> None:
        await self._channel.close()

    async def stream(self, kind: str, data: bytes = b"", url: str = "", models: list[str] | None = None
                     ) -> AsyncIterator[pb.ImageAnnotationStreamResponse]:
        """Each model's result as the service sends it, for the asset's bytes or a URL the service fetches
        it from (exactly one of them); `models`: only these, None: the configured set.
        Raises AnnotationServiceError."""
        wanted = self._models if models is None else models
        if kind == "image":
            request = pb.ImageAnnotationRequest(image_data=data, image_url=url, models=wanted)
            call = self._stub.ImageAnnotationStream(request, timeout=self._timeout)
        elif kind == "video":
            video = pb.VideoAnnotationRequest(video_data=data, video_url=url, models=wanted)
            call = self._stub.VideoAnnotationStream(video, timeout=self._timeout)
        else:
            raise AnnotationServiceError(f"no streaming annotation for {kind} assets", permanent=True)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc

    async def stream_batch(self, items: list[tuple[bytes, list[str] | None]]
                           ) -> AsyncIterator[tuple[int, pb.ImageAnnotationStreamResponse | AnnotationServiceError]]:
        """One ImageAnnotationStreamBatch call for several images ((bytes, models) each; models None: the
        configured set): (index, each model's result as it arrives), or (index, error) when that image failed
        as a whole. A failure of the call itself raises AnnotationServiceError."""
        request = pb.ImageAnnotationRequestBatch(requests=[
            pb.ImageAnnotationRequest(image_data=data, models=self._models if models is None else models)
            for data, models in items])
        try:
            async for message in self._stub.ImageAnnotationStreamBatch(request, timeout=self._timeout):
                if message.status:
                    code = next((c for c in grpc.StatusCode if c.value[0] == message.status), grpc.StatusCode.UNKNOWN)
                    yield message.index, AnnotationServiceError(
                        f"annotation service: {code.name}: {message.error_msg}", code in PERMANENT_CODES)
                else:
                    yield message.index, message.response
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc

    async def image_embedding(self, data: bytes, model: str = "") -> tuple[str, list[float]]:
        """(space, vector) of a whole image through ImageCrossModalEmbedding (`model`: which image_embedding
        model; empty: the service's default)."""
        try:
            reply = await self._stub.ImageCrossModalEmbedding(pb.AnnotationRequest(asset_data=data, model=model),
                                                              timeout=60)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc
        return reply.embedding.model or reply.model, list(reply.embedding.values)

    async def region_embedding(self, data: bytes, box: tuple[float, float, float, float], model: str = ""
                               ) -> tuple[str, list[float], list[float]]:
        """(space, region vector, whole-image vector) through ImageRegionFeatureExtraction, computed on the fly
        (`model`: a region_embedding or image_embedding model; empty: the service's default)."""
        request = pb.AnnotationRequest(asset_data=data, model=model, boxes=[pb.BoundingBox(
            x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3])])
        try:
            reply = await self._stub.ImageRegionFeatureExtraction(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc
        regions = [r for r in reply.regions if r.from_request] or list(reply.regions)
        if not regions or not regions[0].embedding.values:
            raise AnnotationServiceError("the annotation service returned no region embedding", permanent=True)
        return (regions[0].embedding.model or reply.model, list(regions[0].embedding.values),
                list(reply.whole_image.values))

    async def text_embedding(self, text: str, model: str) -> tuple[str, list[float]]:
        """(text model, vector) of a text through TextCrossModalEmbedding with the named text encoder."""
        try:
            reply = await self._stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text=text, model=model),
                                                             timeout=60)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc
        return reply.embedding.model or reply.model, list(reply.embedding.values)

    async def capabilities(self, timeout: float = 5.0) -> pb.CapabilitiesResponse:
        """Which rows of the task table the service can run now (ListCapabilities)."""
        try:
            return await self._stub.ListCapabilities(pb.CapabilitiesRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from exc
