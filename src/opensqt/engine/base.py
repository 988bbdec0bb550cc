"""The engine interface, and the ports an in-process engine uses.

An engine drives one agent: it feeds market and account events to the agent's pure strategy,
applies the resulting state transitions and sends the orders. :class:`Engine` is what a
service or the backtester talks to. The handlers are coroutines because the durable engine does
I/O in them; :class:`~opensqt.engine.simple.SimpleEngine` does its work synchronously inside
them (and offers the same handlers as plain methods for the backtester's hot loop).
"""

from __future__ import annotations

from typing import Any, Protocol

from opensqt.model.events import FundingUpdate, OrderUpdate, PositionUpdate, PriceChange
from opensqt.model.resources import Order

__all__ = ["Engine", "OrderRefused", "Snapshottable", "Venue"]


class Engine(Protocol):
    """Drives one agent from market and account events (behaviour.md §6)."""

    async def start(self) -> None:
        """Restore state (e.g. from a checkpoint) and get ready for events."""
        ...

    async def stop(self) -> None:
        """Persist what must survive and release resources."""
        ...

    async def on_price_update(self, update: PriceChange) -> None: ...

    async def on_order_update(self, update: OrderUpdate) -> None: ...

    async def on_funding_update(self, update: FundingUpdate) -> None: ...

    async def on_position_update(self, update: PositionUpdate) -> None: ...


class OrderRefused(Exception):
    """The venue refused an order outright (it never existed).

    Attributes:
        insufficient_funds: the refusal was for missing balance or margin, which the grid
            answers with its margin lock.
    """

    def __init__(self, message: str, *, insufficient_funds: bool = False) -> None:
        self.insufficient_funds = insufficient_funds
        super().__init__(message)


class Venue(Protocol):
    """Where an in-process engine sends orders; answers synchronously with the order's updates."""

    def place(self, order: Order, now_ms: int) -> list[OrderUpdate]:
        """Send ``order``; return its updates so far (acknowledgement, fills, expiry).

        Raises:
            OrderRefused: the venue refused the order.
        """
        ...

    def cancel(self, symbol: str, client_order_id: str, now_ms: int) -> list[OrderUpdate]:
        """Cancel an open order; ``[]`` when the venue has no such open order (final, not an error)."""
        ...


class Snapshottable(Protocol):
    """Something whose state goes into the engine's checkpoint next to the agent's."""

    def to_state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...
