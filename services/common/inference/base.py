"""One async inference interface, two backends (ONNX Runtime in-process, Triton over gRPC)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np


class InferenceError(Exception):
    """Inference failed for a reason other than the input (server error, crash)."""


class InvalidInputError(InferenceError):
    """The tensors do not match what the model takes (names, dtypes, shapes)."""


class ModelUnavailableError(InferenceError):
    """The model exists but cannot serve now (not loaded, server down)."""


class InferenceTimeoutError(InferenceError):
    """The call did not finish within the configured time."""


class InferenceBackend(ABC):
    """`infer(model, {input: ndarray}) -> {output: ndarray}` for any model in the repository."""

    name: str

    @abstractmethod
    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs `model` on `inputs`; returns the requested outputs (all when None)."""

    @abstractmethod
    async def ready_models(self) -> list[str]:
        """Names of the models that can serve requests now."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Releases sessions and connections."""

    async def __aenter__(self) -> InferenceBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
