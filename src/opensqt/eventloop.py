"""Which event loop a process runs on: uvloop (libuv) by default, the standard one on request."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

from opensqt import heap

__all__ = ["EventLoopKind", "run_event_loop"]

EventLoopKind = Literal["uvloop", "asyncio"]


def run_event_loop(main: Coroutine[Any, Any, None], loop: EventLoopKind = "uvloop") -> None:
    """Run a process's ``main`` to completion on a new loop of the chosen kind. uvloop cuts the
    loop's own cost per socket event (every hop of an order crosses three of them); ``asyncio``
    is there for debugging and for platforms uvloop does not build on. The caller owns the
    process, so its heap is the service's to settle (opensqt.heap)."""
    heap.claim_process()
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
