"""The fan-out: run many model units on one input concurrently and hand each outcome over the
moment it is ready. A failing or slow unit becomes a ModelError for that unit only. Model runs
share a semaphore across all requests, so a flood waits for a slot instead of piling up work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from services.annotation.catalog import INSTALL_HINT, MissingModelError
from services.annotation.models.base import AdapterError
from services.annotation.tasks import Unit
from services.common.inference import (
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelNotFoundError,
    ModelUnavailableError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One unit's result message (or its ModelError), with the model, task and result field it is of."""

    model: str
    task: str
    field: str
    result: Message | None = None
    error: pb.ModelError | None = None


def model_error(model: str, task: str, exc: BaseException) -> pb.ModelError:
    """An exception of one model run as the ModelError clients get."""
    code = grpc.StatusCode.INTERNAL
    if isinstance(exc, (TimeoutError, InferenceTimeoutError)):
        code, message = grpc.StatusCode.DEADLINE_EXCEEDED, f"model {model!r} did not finish in time"
    elif isinstance(exc, (MissingModelError, ModelNotFoundError)):
        code, message = grpc.StatusCode.NOT_FOUND, str(exc)
    elif isinstance(exc, ModelUnavailableError):
        code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
    elif isinstance(exc, (InvalidInputError, AdapterError)):
        code, message = grpc.StatusCode.FAILED_PRECONDITION, f"model {model!r} is misconfigured: {exc}"
    elif isinstance(exc, InferenceError):
        code, message = grpc.StatusCode.INTERNAL, str(exc)
    else:
        message = f"model {model!r} failed: {type(exc).__name__}: {exc}"
    return pb.ModelError(model=model, task=task, status=code.value[0], error_msg=message)


def _names(unit: Unit) -> set[str]:
    return {unit.name, unit.task, unit.source, unit.field}


def select(units: Sequence[Unit], requested: Sequence[str]) -> tuple[list[Unit], list[Outcome]]:
    """Units named (by model, task, repository task or result field) in `requested`; all when it is
    empty. Names that match nothing are NOT_FOUND outcomes, so a typo is not silently ignored."""
    if not requested:
        return list(units), []
    chosen = [u for u in units if set(requested) & _names(u)]
    matched = set().union(*map(_names, chosen))
    message = "model {!r} is not installed (or not a model of this media type); " + INSTALL_HINT
    errors = [
        Outcome(name, "", "", error=pb.ModelError(
            model=name, status=grpc.StatusCode.NOT_FOUND.value[0], error_msg=message.format(name)))
        for name in requested
        if name not in matched
    ]
    return chosen, errors


class FanOut:
    def __init__(self, max_concurrent_runs: int, timeout_s: float) -> None:
        self._slots = asyncio.Semaphore(max(1, max_concurrent_runs))
        self.timeout_s = timeout_s

    async def run(self, unit: Unit, payload: object) -> Outcome:
        try:
            async with self._slots:
                # The time limit counts running only, not waiting for a slot.
                async with asyncio.timeout(self.timeout_s):
                    result = await unit.run(payload)
            return Outcome(unit.name, unit.task, unit.field, result=result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, (TimeoutError, MissingModelError, ModelNotFoundError, InferenceError)):
                log.exception("model %s (%s) failed", unit.name, unit.task)
            return Outcome(unit.name, unit.task, unit.field, error=model_error(unit.name, unit.task, exc))

    async def stream(self, units: Sequence[Unit], payload: object) -> AsyncIterator[Outcome]:
        """Outcomes in the order they finish; abandoning the iterator cancels what still runs."""
        tasks = [asyncio.create_task(self.run(unit, payload)) for unit in units]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def gather(self, units: Sequence[Unit], payload: object) -> list[Outcome]:
        return [outcome async for outcome in self.stream(units, payload)]
