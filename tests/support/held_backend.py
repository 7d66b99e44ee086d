"""A real inference backend that tests can hold: models in `held` wait on an event inside `infer`
(no sleeps-and-hope), models in `broken` fail as a crashing model would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from services.common.inference import InferenceBackend, InferenceError
from services.common.inference.onnx_backend import OnnxBackend


class HeldBackend(InferenceBackend):
    """Wraps the real ONNX backend. `release` is set while nothing is held; `entered` is set once a
    held model's call is waiting."""

    name = "onnx"

    def __init__(self, inner: OnnxBackend, held: Iterable[str] = (), broken: Iterable[str] = ()) -> None:
        self.inner = inner
        self.held = set(held)
        self.broken = set(broken)
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        if not self.held:
            self.release.set()

    def hold(self, *models: str) -> None:
        self.held = set(models)
        self.release.clear()

    def let_go(self) -> None:
        self.release.set()
        self.held = set()

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        if model in self.broken:
            raise InferenceError(f"model {model!r} crashed (injected)")
        if model in self.held:
            self.entered.set()
            await self.release.wait()
        return await self.inner.infer(model, inputs, outputs)

    async def ready_models(self) -> list[str]:
        return await self.inner.ready_models()

    async def load(self) -> None:
        await self.inner.load()

    async def close(self) -> None:
        self.release.set()
        await self.inner.close()
