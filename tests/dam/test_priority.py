"""Interactive requests before annotation (services/dam/core/priority.py): a worker's `yield_to` waits while
a request is in flight, goes on the moment the last one ends, and never waits longer than its bound."""

from __future__ import annotations

import asyncio
import time

from services.dam.core.priority import Foreground


def test_yield_waits_for_the_request_in_flight_and_goes_on_when_it_ends() -> None:
    async def scenario() -> tuple[bool, bool]:
        foreground = Foreground(max_wait_s=30)
        await asyncio.wait_for(foreground.yield_to(), 1)  # idle: returns at once
        foreground.enter()
        foreground.enter()
        waiting = asyncio.create_task(foreground.yield_to())
        await asyncio.sleep(0.05)
        still_waiting_with_one_left = not waiting.done()
        foreground.leave()
        await asyncio.sleep(0.05)
        one_left = not waiting.done()
        foreground.leave()
        await asyncio.wait_for(waiting, 1)
        return still_waiting_with_one_left, one_left

    assert asyncio.run(scenario()) == (True, True)


def test_yield_is_bounded_and_off_at_zero() -> None:
    async def scenario() -> tuple[float, float]:
        bounded, off = Foreground(max_wait_s=0.1), Foreground(max_wait_s=0)
        bounded.enter()
        off.enter()
        started = time.perf_counter()
        await asyncio.wait_for(bounded.yield_to(), 5)
        waited = time.perf_counter() - started
        started = time.perf_counter()
        await off.yield_to()
        return waited, time.perf_counter() - started

    waited, unwaited = asyncio.run(scenario())
    assert 0.09 <= waited < 2  # a request that never ends does not stop annotation
    assert unwaited < 0.05
