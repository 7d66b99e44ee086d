"""The adapter base: one repository model, run through any inference backend (Immich-style:
preprocess -> backend infer -> postprocess, the backend hidden behind `_infer`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from services.common.inference import InferenceBackend
from services.common.model_repository import ModelSpec


class AdapterError(Exception):
    """The model's outputs do not fit what its task expects (a misconfigured repository entry)."""


class TaskModel:
    """Base of every adapter (models/formats.py FORMATS says which builds which model)."""

    def __init__(self, spec: ModelSpec, backend: InferenceBackend) -> None:
        self.spec = spec
        self.backend = backend

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.meta.params

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.meta.labels

    def param(self, key: str, default: Any) -> Any:
        value = self.params.get(key)
        return default if value is None else value

    @property
    def input_names(self) -> list[str]:
        return [tensor.name for tensor in self.spec.config.input]

    @property
    def output_names(self) -> list[str]:
        return [tensor.name for tensor in self.spec.config.output]

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class_{class_id}"

    async def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a batch (leading dimension) through the backend; batched or not, the caller always
        passes and receives a batch dimension."""
        if self.spec.max_batch_size > 0 or not self.spec.config.input:
            return await self.backend.infer(self.name, inputs)
        # max_batch_size 0: the config's dims are the full shape; send one item at a time when
        # the model has no batch axis of its own.
        first = self.spec.config.input[0]
        sample = next(iter(inputs.values()))
        if len(first.dims) == sample.ndim:
            return await self.backend.infer(self.name, inputs)
        batch = sample.shape[0]
        parts = [await self.backend.infer(self.name, {k: v[i] for k, v in inputs.items()}) for i in range(batch)]
        return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

    async def _infer_one(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One item: adds and strips the batch dimension."""
        out = await self._infer({k: v[None] for k, v in inputs.items()})
        return {k: v[0] for k, v in out.items()}
