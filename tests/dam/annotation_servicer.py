"""A small real MediaAnnotationServer for the DAM tests: runs the `test_*` ONNX models through the onnx
backend and streams each model's result as soon as it is ready. Served by the project's own gRPC server
builder in a background thread so tests can stop and restart it on the same port."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.server import build_server
from services.common.inference.onnx_backend import OnnxBackend
from services.common.media import MediaError, decode_image, iter_video_frames
from services.common.model_repository import ModelRepository
from services.common.settings import Settings

INPUT = 32
MAX_DETECTIONS = 5
DETECTION_THRESHOLD = 0.55


def _tensor(image: np.ndarray) -> np.ndarray:
    resized = np.asarray(Image.fromarray(image).resize((INPUT, INPUT), Image.BILINEAR), np.float32) / 255.0
    return resized.transpose(2, 0, 1)[None]


class TestAnnotationServicer(pb_grpc.MediaAnnotationServerServicer):
    def __init__(self, repository: Path) -> None:
        self.backend = OnnxBackend(ModelRepository(repository), workers=2)
        self.completed: Counter[str] = Counter()  # sha256 of the request bytes -> finished streams
        self.gate: asyncio.Event | None = None  # when set by a test, the embedding waits for it

    async def _detect(self, image: np.ndarray) -> list[pb.Detection]:
        out = (await self.backend.infer("test_detector", {"images": _tensor(image)}))["output0"][0]
        detections = []
        for j in range(out.shape[1]):
            cx, cy, w, h = (float(v) / INPUT for v in out[:4, j])
            cls = int(np.argmax(out[4:, j]))
            score = float(out[4 + cls, j])
            if score < DETECTION_THRESHOLD:
                continue
            box = pb.BoundingBox(x_min=max(0.0, cx - w / 2), y_min=max(0.0, cy - h / 2),
                                 x_max=min(1.0, cx + w / 2), y_max=min(1.0, cy + h / 2))
            if box.x_max - box.x_min < 0.05 or box.y_max - box.y_min < 0.05:
                continue
            detections.append(pb.Detection(label=f"class_{cls}", score=score, box=box, class_id=cls))
        return sorted(detections, key=lambda d: -d.score)[:MAX_DETECTIONS]

    async def _embed(self, image: np.ndarray) -> pb.Embedding:
        vec = (await self.backend.infer("test_image_embedder", {"images": _tensor(image)}))["embedding"][0]
        return pb.Embedding(values=vec.tolist(), dimension=len(vec), model="test_image_embedder", normalized=True)

    async def _crop_embed(self, image: np.ndarray, box: pb.BoundingBox) -> pb.Embedding:
        h, w = image.shape[:2]
        x0, y0 = int(box.x_min * w), int(box.y_min * h)
        x1, y1 = max(x0 + 1, round(box.x_max * w)), max(y0 + 1, round(box.y_max * h))
        return await self._embed(np.ascontiguousarray(image[y0:y1, x0:x1]))

    @staticmethod
    async def _decode(data: bytes, context: grpc.aio.ServicerContext) -> np.ndarray:
        try:
            return await asyncio.to_thread(decode_image, data)
        except MediaError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

    async def ImageAnnotationStream(self, request, context):
        image = await self._decode(request.image_data, context)
        size = pb.ImageSize(width=image.shape[1], height=image.shape[0])
        detections = await self._detect(image)
        yield pb.ImageAnnotationStreamResponse(image_object_detection_result=pb.ImageObjectDetectionResponse(
            model="test_detector", detections=detections, image_size=size))
        if self.gate is not None:
            await self.gate.wait()
        whole = await self._embed(image)
        yield pb.ImageAnnotationStreamResponse(image_cross_modal_embedding_result=pb.ImageCrossModalEmbeddingResponse(
            model="test_image_embedder", embedding=whole))
        regions = [pb.RegionFeature(box=d.box, label=d.label, score=d.score,
                                    embedding=await self._crop_embed(image, d.box)) for d in detections]
        yield pb.ImageAnnotationStreamResponse(
            image_region_feature_extraction_result=pb.ImageRegionFeatureExtractionResponse(
                model="test_region_features", regions=regions, whole_image=whole, image_size=size,
                proposal_model="test_detector"))
        self.completed[hashlib.sha256(request.image_data).hexdigest()] += 1

    async def VideoAnnotationStream(self, request, context):
        try:
            frames = await asyncio.to_thread(lambda: list(iter_video_frames(request.video_data, every_seconds=1.0)))
        except MediaError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        result = pb.VideoObjectDetectionResponse(model="test_detector")
        for index, timestamp, frame in frames[:4]:
            result.frames.append(pb.FrameDetections(frame_index=index, timestamp=timestamp,
                                                    detections=await self._detect(frame)))
        yield pb.VideoAnnotationStreamResponse(video_object_detection_result=result)
        self.completed[hashlib.sha256(request.video_data).hexdigest()] += 1

    async def ImageCrossModalEmbedding(self, request, context):
        image = await self._decode(request.asset_data, context)
        return pb.ImageCrossModalEmbeddingResponse(model="test_image_embedder", embedding=await self._embed(image))

    async def ImageRegionFeatureExtraction(self, request, context):
        image = await self._decode(request.asset_data, context)
        regions = [pb.RegionFeature(box=b, embedding=await self._crop_embed(image, b), from_request=True)
                   for b in request.boxes]
        return pb.ImageRegionFeatureExtractionResponse(model="test_region_features", regions=regions,
                                                       whole_image=await self._embed(image))


class AnnotationServerThread:
    """The servicer on a real gRPC server in its own event loop; stop() and start() keep the port."""

    def __init__(self, repository: Path, port: int) -> None:
        self.port = port
        self.servicer = TestAnnotationServicer(repository)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: grpc.aio.Server | None = None

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> None:
        async def start() -> None:
            self._server, _, _ = await build_server(Settings(), self.servicer, f"127.0.0.1:{self.port}")
            await self._server.start()

        self._call(start())

    def stop(self) -> None:
        if self._server is not None:
            self._call(self._server.stop(grace=None))
            self._server = None

    def close_gate(self) -> None:
        async def close() -> None:
            self.servicer.gate = asyncio.Event()

        self._call(close())

    def open_gate(self) -> None:
        async def release() -> None:
            if self.servicer.gate is not None:
                self.servicer.gate.set()
                self.servicer.gate = None

        self._call(release())

    def close(self) -> None:
        self.stop()
        self._call(self.servicer.backend.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
