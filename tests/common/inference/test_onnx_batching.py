"""Dynamic batching of the in-process backend: concurrent requests share one session run."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from services.common.inference.base import InvalidInputError
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from tests.support.test_models import VOCAB, example_inputs


async def test_concurrent_requests_are_batched_and_split_back(test_repository: Path) -> None:
    backend = OnnxBackend(ModelRepository(test_repository), workers=2)
    try:
        single = [example_inputs("test_image_embedder", batch=1, seed=s) for s in range(16)]
        alone = [await backend.infer("test_image_embedder", x) for x in single]

        batch_sizes = _count_runs((await backend._session("test_image_embedder")).session)
        together = await asyncio.gather(*(backend.infer("test_image_embedder", x) for x in single))
        assert sum(batch_sizes) == len(single)
        assert max(batch_sizes) > 1, f"no request was batched: {batch_sizes}"
        assert max(batch_sizes) <= 8  # the model's max_batch_size
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)
    finally:
        await backend.close()


def _count_runs(session) -> list[int]:
    """Wraps the ONNX Runtime session's run to record the rows of every call (the batch sizes)."""
    sizes: list[int] = []
    lock = threading.Lock()
    original_run = session.run

    def counting_run(names, feeds, *args):
        with lock:
            sizes.append(int(next(iter(feeds.values())).shape[0]))
        return original_run(names, feeds, *args)

    session.run = counting_run  # type: ignore[method-assign]
    return sizes


async def test_a_bad_request_does_not_fail_its_batch_mates(test_repository: Path) -> None:
    """A request that passes validation but fails in the model (a token id outside the vocabulary: ONNX Runtime's
    Gather refuses it) shares a batch with a good one; the batch run fails, and each request then runs alone: the
    good one gets its own result, the bad one alone gets the error."""
    backend = OnnxBackend(ModelRepository(test_repository), workers=1)
    try:
        good = example_inputs("test_text_embedder", batch=1)
        expected = await backend.infer("test_text_embedder", good)  # also loads the session
        bad = {"input_ids": np.full_like(good["input_ids"], VOCAB + 1000)}
        sizes = _count_runs((await backend._session("test_text_embedder")).session)
        results = await asyncio.gather(
            backend.infer("test_text_embedder", good),
            backend.infer("test_text_embedder", bad),
            return_exceptions=True,
        )
        assert sizes[0] == 2, f"the two requests did not share a batch: {sizes}"
        assert sorted(sizes[1:]) == [1, 1]  # then each alone
        assert isinstance(results[0], dict), results[0]
        np.testing.assert_allclose(results[0]["embedding"], expected["embedding"], atol=1e-6)
        assert isinstance(results[1], InvalidInputError) and "test_text_embedder" in str(results[1])
    finally:
        await backend.close()


async def test_a_malformed_request_is_refused_before_it_reaches_a_batch(test_repository: Path) -> None:
    backend = OnnxBackend(ModelRepository(test_repository), workers=1)
    try:
        good = example_inputs("test_classifier", batch=1)
        await backend.infer("test_classifier", good)
        sizes = _count_runs((await backend._session("test_classifier")).session)
        bad = {"images": np.zeros((1, 3, 16, 16), np.float32)}  # the wrong spatial size
        results = await asyncio.gather(
            backend.infer("test_classifier", good),
            backend.infer("test_classifier", bad),
            return_exceptions=True,
        )
        assert isinstance(results[0], dict) and results[0]["probs"].shape == (1, 5)
        assert isinstance(results[1], InvalidInputError) and "must have shape" in str(results[1])
        assert sizes == [1]  # only the good request ran
    finally:
        await backend.close()
