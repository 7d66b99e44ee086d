"""Dynamic batching for in-process inference, as Triton's `dynamic_batching` does on the server:
requests that arrive within the queue delay are stacked along the batch axis and run as one call.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

import numpy as np

Tensors = Mapping[str, np.ndarray]
RunFn = Callable[[Tensors], dict[str, np.ndarray]]


def _signature(inputs: Tensors) -> tuple:
    """Requests can share a batch only when every non-batch dimension and dtype agree."""
    return tuple(sorted((name, arr.shape[1:], arr.dtype.str) for name, arr in inputs.items()))


def _rows(inputs: Tensors) -> int:
    return int(next(iter(inputs.values())).shape[0])


class DynamicBatcher:
    def __init__(self, run: RunFn, executor: Executor, max_batch_size: int, max_delay_s: float) -> None:
        self._run = run
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_delay_s = max_delay_s
        self._queue: asyncio.Queue[tuple[Tensors, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, inputs: Tensors) -> dict[str, np.ndarray]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._serve(self._queue))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((inputs, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def _collect(self, queue: asyncio.Queue) -> list[tuple[Tensors, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        batch = [await queue.get()]
        rows = _rows(batch[0][0])
        deadline = loop.time() + self._max_delay_s
        while rows < self._max_batch_size:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(item)
            rows += _rows(item[0])
        return batch

    async def _serve(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            groups: dict[tuple, list[tuple[Tensors, asyncio.Future]]] = defaultdict(list)
            for item in batch:
                groups[_signature(item[0])].append(item)
            # Groups run concurrently on the executor; the next collection starts meanwhile.
            for group in groups.values():
                for chunk in self._chunks(group):
                    loop.run_in_executor(self._executor, self._run_chunk, chunk, loop)

    def _chunks(self, group: list[tuple[Tensors, asyncio.Future]]):
        chunk: list[tuple[Tensors, asyncio.Future]] = []
        rows = 0
        for item in group:
            n = _rows(item[0])
            if chunk and rows + n > self._max_batch_size:
                yield chunk
                chunk, rows = [], 0
            chunk.append(item)
            rows += n
        if chunk:
            yield chunk

    def _run_chunk(self, chunk: list[tuple[Tensors, asyncio.Future]], loop: asyncio.AbstractEventLoop) -> None:
        if len(chunk) > 1:
            names = list(chunk[0][0])
            stacked = {name: np.concatenate([inputs[name] for inputs, _ in chunk]) for name in names}
            counts = [_rows(inputs) for inputs, _ in chunk]
            try:
                result = self._run(stacked)
            except Exception:
                result = None
            total = sum(counts)
            if result is not None and all(out.shape[:1] == (total,) for out in result.values()):
                offsets = np.cumsum([0, *counts])
                for (_, future), start, stop in zip(chunk, offsets[:-1], offsets[1:], strict=True):
                    part = {name: out[start:stop] for name, out in result.items()}
                    loop.call_soon_threadsafe(_resolve, future, part, None)
                return
        for inputs, future in chunk:
            try:
                loop.call_soon_threadsafe(_resolve, future, self._run(inputs), None)
            except Exception as exc:
                loop.call_soon_threadsafe(_resolve, future, None, exc)


def _resolve(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():  # the caller timed out or was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
