"""The batch worker's reading of its stream (services/dam/annotation/worker.py `arrivals`): what arrived
while the previous results were being written comes as one list (one transaction), nothing is lost or
reordered, and the stream's error reaches the worker after the items before it."""

from __future__ import annotations

import asyncio

import pytest

from services.dam.annotation.client import AnnotationServiceError
from services.dam.annotation.worker import arrivals


async def _stream(count: int, error: bool = False):
    for i in range(count):
        yield i
        if i % 5 == 4:
            await asyncio.sleep(0)  # a burst of five, then the reader lets others run
    if error:
        raise AnnotationServiceError("annotation service: UNAVAILABLE: gone", permanent=False)


def test_items_that_arrive_while_the_consumer_writes_come_together() -> None:
    async def scenario() -> list[list[int]]:
        lists = []
        async for batch in arrivals(_stream(20)):
            lists.append(batch)
            await asyncio.sleep(0.01)  # a transaction: the reader fills the queue meanwhile
        return lists

    lists = asyncio.run(scenario())
    assert [i for batch in lists for i in batch] == list(range(20))
    assert len(lists) < 20 and max(len(b) for b in lists) > 1


def test_the_stream_error_comes_after_the_items_before_it() -> None:
    async def scenario() -> list[int]:
        seen: list[int] = []
        with pytest.raises(AnnotationServiceError, match="UNAVAILABLE"):
            async for batch in arrivals(_stream(7, error=True)):
                seen.extend(batch)
        return seen

    assert asyncio.run(scenario()) == list(range(7))
