"""Inference backends behind one async interface; `create_backend` picks one from the settings."""

from __future__ import annotations

from services.common.inference.base import (
    InferenceBackend,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
)
from services.common.model_repository import ModelNotFoundError, ModelRepository
from services.common.settings import Settings

__all__ = [
    "InferenceBackend",
    "InferenceError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "create_backend",
]


def create_backend(settings: Settings, repository: ModelRepository | None = None) -> InferenceBackend:
    repository = repository or ModelRepository(settings.model_repository)
    inference = settings.inference
    if inference.backend == "triton":
        from services.common.inference.triton_backend import TritonBackend

        return TritonBackend(inference.triton_url, repository, timeout_s=inference.timeout_s)
    from services.common.inference.onnx_backend import OnnxBackend

    return OnnxBackend(
        repository,
        workers=inference.onnx_workers,
        intra_op_threads=inference.onnx_intra_op_threads,
        spin_wait=inference.onnx_spin_wait,
        timeout_s=inference.timeout_s,
    )
