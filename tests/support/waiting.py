"""Waiting for a condition in integration tests: poll, with a deadline and a message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["until"]


async def until(
    check: Callable[[], Awaitable[Any]], what: str, within: float = 30.0, interval: float = 0.1
) -> Any:
    """Await ``check()`` every ``interval`` seconds until it returns something truthy (which is
    returned); after ``within`` seconds fail with ``what`` in the message."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


async def agents_listed(stub: Any, *names: str) -> dict[str, Any]:
    """The strategy service's GetStatus entries by agent name, once every one of ``names`` is
    listed (``stub``: a StrategyServiceStub)."""
    from opensqt.v1 import strategy_pb2

    async def listed() -> dict[str, Any] | None:
        status = await stub.GetStatus(strategy_pb2.GetStrategyStatusRequest())
        agents = {a.agent: a for a in status.agents}
        return agents if set(names) <= set(agents) else None

    agents: dict[str, Any] = await until(listed, f"agents {', '.join(names)} in GetStatus")
    return agents
