"""Dynamic batching of the in-process backend: concurrent requests share one session run."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from tests.support.test_models import example_inputs


async def test_concurrent_requests_are_batched_and_split_back(test_repository: Path) -> None:
    backend = OnnxBackend(ModelRepository(test_repository), workers=2)
    try:
        single = [example_inputs("test_image_embedder", batch=1, seed=s) for s in range(16)]
        alone = [await backend.infer("test_image_embedder", x) for x in single]

        session = (await backend._session("test_image_embedder")).session
        batch_sizes: list[int] = []
        lock = threading.Lock()
        original_run = session.run

        def counting_run(names, feeds, *args):
            with lock:
                batch_sizes.append(int(feeds["images"].shape[0]))
            return original_run(names, feeds, *args)

        session.run = counting_run  # type: ignore[method-assign]
        together = await asyncio.gather(*(backend.infer("test_image_embedder", x) for x in single))
        assert sum(batch_sizes) == len(single)
        assert max(batch_sizes) > 1, f"no request was batched: {batch_sizes}"
        assert max(batch_sizes) <= 8  # the model's max_batch_size
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)
    finally:
        await backend.close()


async def test_a_bad_request_does_not_fail_its_batch_mates(test_repository: Path) -> None:
    backend = OnnxBackend(ModelRepository(test_repository), workers=1)
    try:
        good = example_inputs("test_classifier", batch=1)
        # The wrong spatial size: rejected for this request alone, its batch mate still runs.
        bad = {"images": np.zeros((1, 3, 16, 16), np.float32)}
        results = await asyncio.gather(
            backend.infer("test_classifier", good),
            backend.infer("test_classifier", bad),
            return_exceptions=True,
        )
        assert isinstance(results[0], dict) and results[0]["probs"].shape == (1, 5)
        assert isinstance(results[1], Exception)
    finally:
        await backend.close()
