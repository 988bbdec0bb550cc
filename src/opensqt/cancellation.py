"""Cancellation that a library swallowed, raised again at the top of a service loop."""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelled"]


def raise_if_cancelled() -> None:
    """Raise the cancel a library swallowed. Python 3.11's ``asyncio.wait_for`` and timeouts
    (used inside nats-py, aiohttp and redis-py) return their result instead when a cancel and
    the result arrive in the same turn of the loop: the task goes on with its cancel pending
    and nothing raised, and a loop that only waits would never stop. Every long-running loop
    (the monitor's feeds, the executor's heartbeat) checks at the top of each turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
