"""Every research model, as exported, served by a real Triton (PyTriton, CPU) gives torch's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.research_repository import ALBEF, MEMEFIER_HATEFUL, MVSD, STUDENT, ResearchRepository

pytestmark = pytest.mark.triton


def _infer(url: str, model: str, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    import tritonclient.grpc as triton_grpc

    client = triton_grpc.InferenceServerClient(url)
    inputs = []
    for name, value in feeds.items():
        tensor = triton_grpc.InferInput(name, list(value.shape), "INT64" if value.dtype == np.int64 else "FP32")
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    result = client.infer(model, inputs, outputs=[triton_grpc.InferRequestedOutput(o) for o in outputs])
    return [result.as_numpy(o) for o in outputs]


def test_triton_serves_the_research_models_as_torch_computes_them(
    research_repository: ResearchRepository, research_triton_url: str
) -> None:
    from services.models.research.indistill.export import Probabilities
    from services.models.research.memefier.export import ServingMemeFier

    rng = np.random.default_rng(7)
    modules = research_repository.modules
    checks = []

    ids = np.zeros((2, 77), np.int64)
    ids[:, :4] = [49406, 2221, 1237, 49407]
    meme = {"images": rng.standard_normal((2, 3, 32, 32)).astype(np.float32), "input_ids": ids}
    checks.append((MEMEFIER_HATEFUL, meme, ["hateful"], ServingMemeFier(modules[MEMEFIER_HATEFUL])))
    clip = {"frames": rng.standard_normal((1, 3, 3, 32, 32)).astype(np.float32)}
    checks.append((MVSD, clip, ["saliency"], modules[MVSD]))
    pixels = {"images": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)}
    checks.append((f"{ALBEF}_image", pixels, ["embedding"], modules[ALBEF].image))
    tokens = np.zeros((2, 12), np.int64)  # padded to the context length, as the sidecar's tokenizer does
    tokens[0, :5], tokens[1, :3] = [3, 6, 7, 8, 4], [3, 9, 4]
    text = {"input_ids": tokens, "attention_mask": (tokens != 0).astype(np.int64)}
    checks.append((f"{ALBEF}_text", text, ["embedding"], modules[ALBEF].text))
    photos = {"images": rng.random((2, 3, 64, 64), dtype=np.float32)}
    checks.append((STUDENT, photos, ["probabilities"], Probabilities(modules[STUDENT]).eval()))

    for name, feeds, outputs, module in checks:
        got = _infer(research_triton_url, name, feeds, outputs)[0]
        with torch.no_grad():
            want = module(*(torch.from_numpy(v) for v in feeds.values()))
        want = (want[0] if isinstance(want, tuple) else want).numpy()
        assert got.shape == want.shape, name
        assert np.abs(got - want).max() < 1e-4, name
