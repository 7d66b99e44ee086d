"""The deep descriptor: an image embedding from the annotation service's ImageCrossModalEmbedding
RPC (CLIP, the offline visual embedding or any installed embedding model), compared by cosine similarity.
Each vector carries its embedding space (the model that made it): vectors of two spaces are never compared."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np

from protos import media_annotation_pb2, media_annotation_pb2_grpc

NAME = "deep"


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray  # unit norm
    space: str


class DescriptorUnavailableError(RuntimeError):
    """The descriptor cannot be computed now (not configured, service down, model missing)."""


class DeepInputError(ValueError):
    """The annotation service refused the image itself."""


class AnnotationEmbedder:
    def __init__(self, url: str, model: str = "", timeout_s: float = 30.0, max_message_mb: int = 256) -> None:
        if not url:
            raise DescriptorUnavailableError(
                "the deep descriptor is not configured: set MAAM_NDD_ANNOTATION_URL to the annotation service's "
                "host:port (and install an image embedding model there: `maam models install-shipped` for the offline "
                "visual embedding, `maam models pull clip_vit_b32` for CLIP)"
            )
        self.url = url
        self.model = model
        self.timeout_s = timeout_s
        size = max_message_mb * 1024 * 1024
        self._options = [("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)]
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> media_annotation_pb2_grpc.MediaAnnotationServerStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.url, options=self._options)
        return media_annotation_pb2_grpc.MediaAnnotationServerStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def embed(self, image: bytes) -> Embedding:
        """Unit-norm embedding of the image bytes, with the space it is in."""
        request = media_annotation_pb2.AnnotationRequest(asset_data=image, model=self.model)
        try:
            response = await self._stub().ImageCrossModalEmbedding(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise DeepInputError(f"the annotation service refused the image: {exc.details()}") from exc
            raise DescriptorUnavailableError(
                f"the deep descriptor is unavailable: annotation service at {self.url} answered "
                f"{code.name}: {exc.details()}"
            ) from exc
        values = np.asarray(response.embedding.values, np.float32)
        if values.size == 0:
            raise DescriptorUnavailableError(f"the annotation service at {self.url} returned an empty embedding")
        space = response.embedding.model or response.model or self.model or "unnamed"
        return Embedding(values / max(float(np.linalg.norm(values)), 1e-12), space)
