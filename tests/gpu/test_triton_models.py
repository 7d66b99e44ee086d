"""Every installed model, through the `triton` inference backend against the suite's Triton, gives
what ONNX Runtime on the CPU gives (within the model precision's tolerance); throughput printed."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import onnxruntime as ort
import pytest

from services.common.inference.onnx_backend import OnnxBackend
from services.common.inference.triton_backend import TritonBackend
from services.common.model_repository import ModelSpec
from tests.gpu import support
from tests.gpu.conftest import TritonTarget

# In the ordinary run these use the PyTriton CPU server (`triton_url`); on a GPU runner, MAAM_INFERENCE__TRITON_URL.
pytestmark = pytest.mark.triton


def _reference(spec: ModelSpec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(spec.weights_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


async def test_model_on_triton_matches_onnx_runtime_on_cpu(model_spec: ModelSpec, triton_target: TritonTarget) -> None:
    tol = support.tolerance(model_spec)
    async with TritonBackend(triton_target.url, triton_target.repository, timeout_s=120) as backend:
        ready = await backend.ready_models()
        assert model_spec.name in ready, (
            f"{model_spec.name} is installed in {triton_target.repository.root} but not ready on "
            f"{triton_target.description}; ready: {ready}"
        )
        inputs = support.example_inputs(model_spec, batch=2)
        got = await backend.infer(model_spec.name, inputs)
        problems = support.compare(model_spec.name, got, _reference(model_spec, inputs), tol)
        if model_spec.max_batch_size > 0:
            # Concurrent single-row requests: the server's dynamic batcher may stack them, and each
            # caller must still get its own row back.
            singles = [support.example_inputs(model_spec, batch=1, seed=seed) for seed in range(1, 5)]
            results = await asyncio.gather(*(backend.infer(model_spec.name, x) for x in singles))
            for x, result in zip(singles, results, strict=True):
                problems += support.compare(model_spec.name, result, _reference(model_spec, x), tol)
    assert not problems, "\n".join(problems)


async def _throughput(infer, inputs: dict[str, np.ndarray], requests: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await infer(inputs)

    await infer(inputs)  # warm-up: sessions load, CUDA kernels compile
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.perf_counter() - start)


async def test_model_throughput_on_triton_and_onnx_runtime(model_spec: ModelSpec, triton_target: TritonTarget) -> None:
    requests = int(os.environ.get("MAAM_GPU_SUITE_REQUESTS", 64 if triton_target.external else 8))
    batch = min(8, model_spec.max_batch_size) if model_spec.max_batch_size > 0 else 1
    inputs = support.example_inputs(model_spec, batch=batch)
    async with TritonBackend(triton_target.url, triton_target.repository, timeout_s=120) as triton:
        triton_rps = await _throughput(lambda x: triton.infer(model_spec.name, x), inputs, requests, 8)
    async with OnnxBackend(triton_target.repository, workers=2) as onnx:
        onnx_rps = await _throughput(lambda x: onnx.infer(model_spec.name, x), inputs, requests, 8)
    assert triton_rps > 0 and onnx_rps > 0
    support.TARGETS.add(triton_target.description)
    support.REPORT.append(
        f"{model_spec.name:<24} batch {batch:>2}: triton {triton_rps * batch:9.1f} items/s, "
        f"onnx runtime in-process (CPU) {onnx_rps * batch:9.1f} items/s, ratio {triton_rps / onnx_rps:5.2f}x"
    )
