"""The order feed's wait for the next batch: a timeout gives None, and a cancel always stops it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from opensqt.cancellation import raise_if_cancelled
from opensqt.monitors.feeds import next_batch


async def test_a_cancel_that_comes_with_a_batch_stops_the_wait() -> None:
    # The batch and the cancel arrive in the same turn of the loop: asyncio.wait_for (Python
    # 3.11) answered with the batch and the cancel was lost, so the feed's publisher went on.
    batches: asyncio.Queue[list[str]] = asyncio.Queue()
    waiting = asyncio.ensure_future(next_batch(batches, 5.0))
    await asyncio.sleep(0)  # it waits on the queue
    batches.put_nowait(["order"])
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert batches.get_nowait() == ["order"]  # the batch stays for whoever reads next


async def test_a_quiet_queue_times_out_and_a_batch_comes_through() -> None:
    batches: asyncio.Queue[list[str]] = asyncio.Queue()
    assert await next_batch(batches, 0.01) is None
    batches.put_nowait(["a"])
    assert await next_batch(batches, 0.01) == ["a"]
    batches.put_nowait(["b"])
    assert await next_batch(batches, 0) == ["b"]  # no wait: until one comes


async def test_a_cancel_a_library_swallowed_still_stops_a_feed_loop() -> None:
    # Python 3.11's wait_for returns its result when it and a cancel arrive together: the task
    # goes on, its cancel pending, nothing raised; the loop's next turn must stop it
    turns: list[int] = []

    async def feed_loop() -> None:
        while True:
            raise_if_cancelled()
            turns.append(len(turns))
            with contextlib.suppress(asyncio.CancelledError):  # swallowed, as such a wait_for does
                await asyncio.sleep(10)

    task = asyncio.create_task(feed_loop())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert turns == [0]
