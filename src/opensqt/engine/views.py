"""Read-only views that every state manager offers for observability (the ``IPositionManager`` role).

:class:`~opensqt.grid.manager.SlotManager` and :class:`~opensqt.arbitrage.manager.LegManager`
implement :class:`PositionView` structurally; nothing here imports them, so services, the risk
monitor and the strategy gRPC API can depend on the view alone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from opensqt.model.resources import Order, Position

__all__ = ["PositionView"]


@runtime_checkable
class PositionView(Protocol):
    """What a state manager holds, as the exchange would describe it. Reads only, no I/O.

    Every method answers from the manager's in-process copy of its state, so it is cheap and may
    be called from any handler; after another process changed the shared store, the answers catch
    up on the manager's next refresh.
    """

    def positions(self) -> list[Position]:
        """Non-zero positions, one per venue and symbol, with signed size (negative = short)."""
        ...

    def working_orders(self) -> list[Order]:
        """Orders the manager believes are working on the exchange (sent, not yet final)."""
        ...

    def exposure(self) -> Decimal:
        """Net signed base-asset quantity over everything the manager holds (0 when hedged or flat)."""
        ...
