"""Every installed model through the annotation service: `maam serve annotation` on the `triton`
backend (the suite's Triton) against the same service on the in-process `onnx` backend, over the
proto's ImageAnnotation and TextCrossModalEmbedding RPCs; throughput printed.

Written against protos/media_annotation.proto. Until the annotation service (branch `annot`)
implements these RPCs, the tests skip with that reason: they start working, unchanged, the moment
it does.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from tests.gpu import support
from tests.gpu.conftest import TritonTarget
from tests.support.processes import ServiceProcess, child_env, free_port, maam

# In the ordinary run these use the PyTriton CPU server (`triton_url`); on a GPU runner, MAAM_INFERENCE__TRITON_URL.
pytestmark = pytest.mark.triton

BACKENDS = ("triton", "onnx")


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def services(triton_target: TritonTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """backend name -> address of an annotation service using it (same repository for both)."""
    started: dict[str, tuple[ServiceProcess, str]] = {}
    try:
        for backend in BACKENDS:
            port = free_port()
            env = child_env(
                MAAM_INFERENCE__BACKEND=backend,
                MAAM_INFERENCE__TRITON_URL=triton_target.url,
                MAAM_MODEL_REPOSITORY=str(triton_target.repository.root),
                MAAM_DATA_DIR=str(tmp_path_factory.mktemp(f"annotation-{backend}")),
            )
            process = ServiceProcess(maam("serve", "annotation", "--host", "127.0.0.1", "--port", str(port)), env=env)
            started[backend] = (process, f"127.0.0.1:{port}")
        for backend, (process, address) in started.items():
            process.wait_ready(lambda a=address: _serving(a), timeout=120, what=f"annotation service ({backend})")
        yield {backend: address for backend, (_, address) in started.items()}
    finally:
        for process, _ in started.values():
            process.stop()


def _image(seed: int = 0) -> bytes:
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((256, 256))
    if seed:
        photo = photo.rotate(seed * 7)
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


def _loosest_tolerance(target: TritonTarget) -> float:
    tolerances = [support.tolerance(m) for m in target.repository.installed() if m.triton]
    return max(tolerances, default=support.TOLERANCE["fp32"])


def _diff(got: Any, want: Any, tol: float, path: str = "") -> list[str]:
    """Differences between two MessageToDict trees: numbers within tol (relative to magnitude)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: only on one side" for k in sorted(set(got) ^ set(want))]
        for key in sorted(set(got) & set(want)):
            out += _diff(got[key], want[key], tol, f"{path}.{key}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items on triton, {len(want)} on onnx"]
        pairs = enumerate(zip(got, want, strict=True))
        return [line for i, (g, w) in pairs for line in _diff(g, w, tol, f"{path}[{i}]")]
    if isinstance(want, float | int) and isinstance(got, float | int) and not isinstance(want, bool):
        if math.isclose(got, want, rel_tol=tol, abs_tol=tol * max(1.0, abs(want))):
            return []
        return [f"{path}: {got} on triton, {want} on onnx"]
    return [] if got == want else [f"{path}: {got!r} on triton, {want!r} on onnx"]


def _model_names(tree: Any) -> set[str]:
    """Every `model` / `models` value in a MessageToDict tree (results name the model that made them)."""
    if isinstance(tree, list):
        return set().union(*(_model_names(item) for item in tree)) if tree else set()
    if not isinstance(tree, dict):
        return set()
    names = {v for k, v in tree.items() if k == "model" and isinstance(v, str)}
    names |= {v for k, vs in tree.items() if k == "models" and isinstance(vs, list) for v in vs if isinstance(v, str)}
    return names.union(*(_model_names(v) for v in tree.values()))


async def _call_both(services: dict[str, str], rpc: str, request: Any) -> dict[str, Any]:
    replies = {}
    for backend, address in services.items():
        async with grpc.aio.insecure_channel(address) as channel:
            replies[backend] = await getattr(pb_grpc.MediaAnnotationServerStub(channel), rpc)(request, timeout=300)
    return replies


async def test_image_annotation_on_triton_matches_onnx(services: dict[str, str], triton_target: TritonTarget) -> None:
    replies = await _call_both(services, "ImageAnnotation", pb.ImageAnnotationRequest(image_data=_image()))
    triton, onnx = replies["triton"], replies["onnx"]
    assert triton.status == 0 and onnx.status == 0, (triton.error_msg, onnx.error_msg)
    assert not triton.model_errors, [MessageToDict(e) for e in triton.model_errors]
    assert list(triton.valid_models) and sorted(triton.valid_models) == sorted(onnx.valid_models)
    # valid_models lists models in the order they finished: compared as sets above.
    got, want = MessageToDict(triton), MessageToDict(onnx)
    got.pop("validModels"), want.pop("validModels")
    problems = _diff(got, want, _loosest_tolerance(triton_target))
    assert not problems, "\n".join(problems[:50])
    support.TARGETS.add(triton_target.description)
    named = set(triton.valid_models) | _model_names(MessageToDict(triton, preserving_proto_field_name=True))
    unseen = sorted(
        m.name
        for m in triton_target.repository.installed()
        if m.triton and m.task != "text_embedding" and m.name not in named
    )
    support.REPORT.append(f"ImageAnnotation ran {sorted(triton.valid_models)}; installed but not named: {unseen}")


async def test_text_embedding_on_triton_matches_onnx(services: dict[str, str], triton_target: TritonTarget) -> None:
    encoders = [m for m in triton_target.repository.installed() if m.task == "text_embedding" and m.triton]
    if not encoders:
        pytest.skip(f"no text_embedding model is installed in {triton_target.repository.root}")
    problems = []
    for spec in encoders:
        request = pb.TextEmbeddingRequest(text="an astronaut in a white suit", model=spec.name)
        replies = await _call_both(services, "TextCrossModalEmbedding", request)
        got = np.array(replies["triton"].embedding.values, np.float32)
        want = np.array(replies["onnx"].embedding.values, np.float32)
        assert got.size, f"{spec.name}: empty embedding"
        problems += support.compare(spec.name, {"embedding": got}, {"embedding": want}, support.tolerance(spec))
    assert not problems, "\n".join(problems)


async def test_image_annotation_throughput(services: dict[str, str], triton_target: TritonTarget) -> None:
    count = int(os.environ.get("MAAM_GPU_SUITE_IMAGES", 32 if triton_target.external else 4))
    images = [_image(seed) for seed in range(count)]
    rates = {}
    semaphore = asyncio.Semaphore(4)
    for backend, address in services.items():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.MediaAnnotationServerStub(channel)

            async def one(data: bytes, stub: pb_grpc.MediaAnnotationServerStub = stub) -> pb.ImageAnnotationResponse:
                async with semaphore:
                    return await stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=data), timeout=300)

            await one(images[0])  # warm-up
            start = time.perf_counter()
            replies = await asyncio.gather(*(one(data) for data in images))
            rates[backend] = count / (time.perf_counter() - start)
        assert all(r.status == 0 for r in replies)
    support.TARGETS.add(triton_target.description)
    support.REPORT.append(
        f"annotation service ImageAnnotation: triton backend {rates['triton']:.2f} images/s, "
        f"onnx backend {rates['onnx']:.2f} images/s ({count} images, 4 at a time)"
    )
