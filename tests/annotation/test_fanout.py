"""The fan-out streams each result the moment it is ready: a model held on an event never delays
the others; a failing or timed-out model becomes a ModelError and the rest still arrive; model
runs are bounded by a semaphore so a flood queues."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from protos import media_annotation_pb2 as pb
from services.annotation.fanout import FanOut
from services.annotation.options import AnnotationOptions
from services.annotation.tasks import Media, TaskSpec, Unit
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from tests.annotation.conftest import service_settings
from tests.support.held_backend import HeldBackend

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass(frozen=True)
class Named:
    name: str


def gated(repository: Path, **kw) -> HeldBackend:
    return HeldBackend(OnnxBackend(ModelRepository(repository), workers=2), **kw)


async def test_fast_result_arrives_while_slow_model_is_blocked(start_service, test_repository: Path, jpeg) -> None:
    backend = gated(test_repository, held={"test_image_embedder"})
    running = await start_service(service_settings(test_repository), backend)
    request = pb.ImageAnnotationRequest(image_data=jpeg, models=["test_detector", "test_image_embedder"])
    call = running.stub.ImageAnnotationStream(request)
    first = await call.read()
    # The embedder is still blocked inside infer when the detector's result is already here.
    assert first.WhichOneof("response") == "image_object_detection_result"
    assert backend.entered.is_set() and not backend.release.is_set()
    backend.release.set()
    second = await call.read()
    assert second.WhichOneof("response") == "image_cross_modal_embedding_result"
    assert await call.read() == grpc.aio.EOF


async def test_failure_and_timeout_are_model_errors(start_service, test_repository: Path, jpeg) -> None:
    backend = gated(test_repository, held={"test_image_embedder"}, broken={"test_meme_classifier"})
    options = AnnotationOptions(model_timeout_s=0.3)
    running = await start_service(service_settings(test_repository), backend, options)
    request = pb.ImageAnnotationRequest(
        image_data=jpeg, models=["test_detector", "test_image_embedder", "test_meme_classifier"]
    )
    reply = await running.stub.ImageAnnotation(request)
    assert reply.status == 0 and list(reply.valid_models) == ["test_detector"]
    errors = {e.model: e for e in reply.model_errors}
    assert errors["test_image_embedder"].status == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert errors["test_image_embedder"].task == "cross_modal_embedding"  # the task table's name, as the DAM stores it
    assert errors["test_meme_classifier"].status == grpc.StatusCode.INTERNAL.value[0]
    assert "crashed" in errors["test_meme_classifier"].error_msg
    assert reply.image_object_detection_result.detections
    streamed = [m async for m in running.stub.ImageAnnotationStream(request)]
    kinds = sorted(m.WhichOneof("response") for m in streamed)
    assert kinds == ["image_object_detection_result", "model_error", "model_error"]


async def test_a_flood_waits_for_model_slots() -> None:
    """Never more than max_concurrent_runs units run at once, however many are submitted."""
    fanout = FanOut(max_concurrent_runs=3, timeout_s=10)
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def work(unit: Unit, payload: object) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return "done"

    spec = TaskSpec("t", Media.IMAGE, "", "k", (), (Named,), work)
    units = [Unit(spec, Named(f"m{i}"), "t") for i in range(40)]
    consumer = asyncio.create_task(fanout.gather(units, None))
    for _ in range(20):  # let every task reach the semaphore
        await asyncio.sleep(0)
    assert peak == 3
    gate.set()
    outcomes = await consumer
    assert len(outcomes) == 40 and all(o.result == "done" for o in outcomes) and peak == 3
