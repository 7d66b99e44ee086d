"""ONNX Runtime in-process: one session per model, loaded on first use, shared by all callers
(`InferenceSession.run` is thread-safe), run on a bounded thread pool, dynamically batched when
the model's Triton config enables `dynamic_batching`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

from services.common.inference.base import (
    InferenceBackend,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
)
from services.common.inference.batching import DynamicBatcher
from services.common.model_repository import ModelRepository, ModelSpec

log = logging.getLogger(__name__)

ORT_TO_NUMPY = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
    "tensor(string)": np.dtype(object),
}


class _ModelSession:
    def __init__(self, spec: ModelSpec, session: ort.InferenceSession) -> None:
        self.spec = spec
        self.session = session
        self.inputs = {arg.name: arg for arg in session.get_inputs()}
        self.output_names = [arg.name for arg in session.get_outputs()]

    def validate(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = sorted(set(self.inputs) - set(inputs))
        unknown = sorted(set(inputs) - set(self.inputs))
        if missing or unknown:
            raise InvalidInputError(
                f"model {self.spec.name!r} takes inputs {sorted(self.inputs)}; "
                f"missing {missing}, unknown {unknown}"
            )
        checked: dict[str, np.ndarray] = {}
        for name, arg in self.inputs.items():
            array = np.asarray(inputs[name])
            expected = ORT_TO_NUMPY.get(arg.type)
            if expected is not None and array.dtype != expected and not (
                expected == np.dtype(object) and array.dtype.kind in "OSU"
            ):
                raise InvalidInputError(
                    f"model {self.spec.name!r} input {name!r} must be {expected}, got {array.dtype}"
                )
            if len(arg.shape) != array.ndim:
                raise InvalidInputError(
                    f"model {self.spec.name!r} input {name!r} must have {len(arg.shape)} dimensions "
                    f"{list(arg.shape)}, got shape {list(array.shape)}"
                )
            for want, got in zip(arg.shape, array.shape, strict=True):
                if isinstance(want, int) and want > 0 and want != got:
                    raise InvalidInputError(
                        f"model {self.spec.name!r} input {name!r} must have shape {list(arg.shape)}, "
                        f"got {list(array.shape)}"
                    )
            checked[name] = array
        return checked

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self.session.run(self.output_names, dict(inputs))
        except ort.capi.onnxruntime_pybind11_state.InvalidArgument as exc:
            raise InvalidInputError(f"model {self.spec.name!r}: {exc}") from exc
        except Exception as exc:
            raise InferenceError(f"model {self.spec.name!r} failed: {exc}") from exc
        return dict(zip(self.output_names, values, strict=True))


class OnnxBackend(InferenceBackend):
    name = "onnx"

    def __init__(
        self,
        repository: ModelRepository,
        *,
        workers: int = 4,
        intra_op_threads: int = 0,
        spin_wait: bool = False,
        timeout_s: float = 60.0,
    ) -> None:
        self.repository = repository
        self.timeout_s = timeout_s
        self._intra_op_threads = intra_op_threads
        self._spin_wait = spin_wait
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="onnx")
        self._sessions: dict[str, _ModelSession] = {}
        self._batchers: dict[str, DynamicBatcher] = {}
        self._failed: dict[str, str] = {}
        self._loading: dict[str, asyncio.Future] = {}

    def _create_session(self, spec: ModelSpec) -> ort.InferenceSession:
        options = ort.SessionOptions()
        if self._intra_op_threads:
            options.intra_op_num_threads = self._intra_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self._spin_wait else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if self._spin_wait else "0")
        return ort.InferenceSession(
            str(spec.weights_path), sess_options=options, providers=ort.get_available_providers()
        )

    async def _session(self, model: str) -> _ModelSession:
        session = self._sessions.get(model)
        if session is not None:
            return session
        spec = self.repository.get_installed(model)
        if not spec.triton:
            raise ModelUnavailableError(f"model {model!r} runs on {spec.runtime}, not on an inference backend")
        pending = self._loading.get(model)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(self._executor, self._create_session, spec)
            self._loading[model] = pending
        try:
            raw = await pending
        except Exception as exc:
            self._failed[model] = str(exc)
            raise ModelUnavailableError(f"model {model!r} could not be loaded: {exc}") from exc
        finally:
            self._loading.pop(model, None)
        if model not in self._sessions:
            session = _ModelSession(spec, raw)
            self._sessions[model] = session
            self._failed.pop(model, None)
            if spec.max_batch_size > 0 and spec.dynamic_batching:
                delay_us = spec.config.dynamic_batching.max_queue_delay_microseconds
                self._batchers[model] = DynamicBatcher(
                    session.run, self._executor, spec.max_batch_size, delay_us / 1e6
                )
        return self._sessions[model]

    async def load(self, models: Sequence[str] | None = None) -> None:
        """Loads sessions ahead of the first request (startup warm-up)."""
        names = models if models is not None else [m.name for m in self.repository.installed()]
        await asyncio.gather(*(self._session(name) for name in names))

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        session = await self._session(model)
        checked = session.validate(inputs)
        if outputs is not None:
            unknown = sorted(set(outputs) - set(session.output_names))
            if unknown:
                raise InvalidInputError(
                    f"model {model!r} has outputs {session.output_names}, not {unknown}"
                )
        batcher = self._batchers.get(model)
        if batcher is not None:
            call = batcher.submit(checked)
        else:
            call = asyncio.get_running_loop().run_in_executor(self._executor, session.run, checked)
        try:
            result = await asyncio.wait_for(call, self.timeout_s)
        except TimeoutError as exc:
            raise InferenceTimeoutError(f"model {model!r} took longer than {self.timeout_s:g} s") from exc
        if outputs is None:
            return result
        return {name: result[name] for name in outputs}

    async def ready_models(self) -> list[str]:
        return [m.name for m in self.repository.installed() if m.name not in self._failed]

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._batchers.clear()
        self._sessions.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
