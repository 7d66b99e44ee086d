"""Triton Inference Server over gRPC (`tritonclient.grpc.aio`): readiness checks, tensor names and
datatypes from the model metadata, a client-side timeout on every call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc import aio as triton_aio
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from services.common.inference.base import (
    InferenceBackend,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
)
from services.common.model_repository import ModelNotFoundError, ModelRepository


def _status(exc: InferenceServerException) -> str:
    return str(exc.status() or "")


class TritonBackend(InferenceBackend):
    name = "triton"

    def __init__(self, url: str, repository: ModelRepository | None = None, *, timeout_s: float = 60.0) -> None:
        self.url = url
        self.repository = repository
        self.timeout_s = timeout_s
        self._client = triton_aio.InferenceServerClient(
            url, channel_args=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        )
        self._metadata: dict[str, dict] = {}
        self._metadata_lock = asyncio.Lock()

    async def server_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    async def _model_metadata(self, model: str) -> dict:
        cached = self._metadata.get(model)
        if cached is not None:
            return cached
        async with self._metadata_lock:
            if model in self._metadata:
                return self._metadata[model]
            try:
                if not await self._client.is_model_ready(model, client_timeout=self.timeout_s):
                    raise self._not_ready(model)
                metadata = await self._client.get_model_metadata(
                    model, as_json=True, client_timeout=self.timeout_s
                )
            except InferenceServerException as exc:
                raise self._translate(model, exc) from exc
            self._metadata[model] = metadata
            return metadata

    def _not_ready(self, model: str) -> Exception:
        if self.repository is not None:
            self.repository.get_installed(model)  # raises ModelNotFoundError with the install hint
        return ModelUnavailableError(f"model {model!r} is not ready on Triton at {self.url}")

    def _translate(self, model: str, exc: InferenceServerException) -> Exception:
        status = _status(exc)
        message = exc.message() or str(exc)
        if "UNAVAILABLE" in status:
            return ModelUnavailableError(f"Triton at {self.url} is unreachable: {message}")
        if "DEADLINE_EXCEEDED" in status or "Deadline" in message:
            return InferenceTimeoutError(f"model {model!r} took longer than {self.timeout_s:g} s on Triton")
        if "NOT_FOUND" in status or "unknown model" in message or "is not found" in message:
            self._metadata.pop(model, None)
            return ModelNotFoundError(model, f"model {model!r} is not loaded on Triton at {self.url}")
        if "INVALID_ARG" in status:
            return InvalidInputError(f"model {model!r}: {message}")
        return InferenceError(f"model {model!r} failed on Triton: {message}")

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        metadata = await self._model_metadata(model)
        expected = {item["name"]: item for item in metadata.get("inputs", [])}
        missing = sorted(set(expected) - set(inputs))
        unknown = sorted(set(inputs) - set(expected))
        if missing or unknown:
            raise InvalidInputError(
                f"model {model!r} takes inputs {sorted(expected)}; missing {missing}, unknown {unknown}"
            )
        request_inputs = []
        for name, spec in expected.items():
            array = np.asarray(inputs[name])
            datatype = np_to_triton_dtype(array.dtype) if array.dtype != object else "BYTES"
            if datatype != spec["datatype"]:
                raise InvalidInputError(
                    f"model {model!r} input {name!r} must be {spec['datatype']}, got {datatype}"
                )
            tensor = InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            request_inputs.append(tensor)
        names = list(outputs) if outputs is not None else [o["name"] for o in metadata.get("outputs", [])]
        try:
            result = await self._client.infer(
                model,
                request_inputs,
                outputs=[InferRequestedOutput(name) for name in names],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise self._translate(model, exc) from exc
        return {name: result.as_numpy(name) for name in names}

    async def ready_models(self) -> list[str]:
        if self.repository is not None:
            # Ask per model: servers that restrict the repository protocol (PyTriton does) still
            # answer readiness.
            names = [m.name for m in self.repository.installed()]
            ready = await asyncio.gather(*(self._is_ready(name) for name in names))
            return [name for name, ok in zip(names, ready, strict=True) if ok]
        try:
            index = await self._client.get_model_repository_index(as_json=True, client_timeout=self.timeout_s)
        except InferenceServerException:
            return []
        return sorted(m["name"] for m in index.get("models", []) if m.get("state") == "READY")

    async def _is_ready(self, model: str) -> bool:
        try:
            return bool(await self._client.is_model_ready(model, client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    async def close(self) -> None:
        await self._client.close()
