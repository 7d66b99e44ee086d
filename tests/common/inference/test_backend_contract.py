"""One contract, two backends: ONNX Runtime in-process and a real tritonserver (PyTriton, CPU).

Every test runs against both; results must equal a plain ONNX Runtime session's within 1e-5.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from services.common.inference import (
    InferenceBackend,
    InvalidInputError,
    ModelNotFoundError,
    ModelUnavailableError,
)
from services.common.inference.onnx_backend import OnnxBackend
from services.common.inference.triton_backend import TritonBackend
from services.common.model_repository import ModelRepository
from tests.support.test_models import IMAGE_SIZE, TEST_MODELS, example_inputs

pytestmark = pytest.mark.triton


@pytest.fixture(params=["onnx", "triton"])
async def backend(request: pytest.FixtureRequest, test_repository: Path) -> AsyncIterator[InferenceBackend]:
    repository = ModelRepository(test_repository)
    if request.param == "onnx":
        instance: InferenceBackend = OnnxBackend(repository, workers=2)
    else:
        instance = TritonBackend(request.getfixturevalue("triton_url"), repository, timeout_s=30)
    yield instance
    await instance.close()


def reference(test_repository: Path, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(test_repository / model / "1" / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


@pytest.mark.parametrize("model", TEST_MODELS)
async def test_outputs_equal_onnx_runtime(backend: InferenceBackend, test_repository: Path, model: str) -> None:
    inputs = example_inputs(model, batch=3)
    got = await backend.infer(model, inputs)
    want = reference(test_repository, model, inputs)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape
        assert got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)


async def test_ready_models_lists_every_installed_model(backend: InferenceBackend) -> None:
    assert sorted(await backend.ready_models()) == sorted(TEST_MODELS)


async def test_requested_outputs_only(backend: InferenceBackend) -> None:
    got = await backend.infer("test_classifier", example_inputs("test_classifier"), outputs=["probs"])
    assert list(got) == ["probs"]
    np.testing.assert_allclose(got["probs"].sum(axis=1), 1.0, atol=1e-5)


async def test_unknown_model_is_not_found(backend: InferenceBackend) -> None:
    with pytest.raises(ModelNotFoundError, match="no_such_model"):
        await backend.infer("no_such_model", example_inputs("test_classifier"))


async def test_wrong_input_name_is_invalid(backend: InferenceBackend) -> None:
    with pytest.raises(InvalidInputError, match="images"):
        await backend.infer("test_classifier", {"pixels": np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)})


async def test_wrong_dtype_is_invalid(backend: InferenceBackend) -> None:
    with pytest.raises(InvalidInputError):
        await backend.infer("test_classifier", {"images": np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), np.float64)})


async def test_wrong_shape_is_invalid(backend: InferenceBackend) -> None:
    with pytest.raises(InvalidInputError):
        await backend.infer("test_detector", {"images": np.zeros((1, 3, 8, 8), np.float32)})


async def test_concurrent_calls_each_get_their_own_result(backend: InferenceBackend, test_repository: Path) -> None:
    inputs = [example_inputs("test_image_embedder", batch=1, seed=s) for s in range(24)]
    results = await asyncio.gather(*(backend.infer("test_image_embedder", x) for x in inputs))
    for x, got in zip(inputs, results, strict=True):
        want = reference(test_repository, "test_image_embedder", x)["embedding"]
        np.testing.assert_allclose(got["embedding"], want, atol=1e-5)
    # Different inputs give different vectors: a backend that mixed up rows would fail above.
    assert len({r["embedding"].tobytes() for r in results}) == len(inputs)


async def test_triton_backend_reports_an_unreachable_server(test_repository: Path) -> None:
    from tests.support.processes import free_port

    backend = TritonBackend(f"127.0.0.1:{free_port()}", ModelRepository(test_repository), timeout_s=5)
    try:
        assert await backend.ready_models() == []
        with pytest.raises(ModelUnavailableError, match="unreachable"):
            await backend.infer("test_classifier", example_inputs("test_classifier"))
    finally:
        await backend.close()
