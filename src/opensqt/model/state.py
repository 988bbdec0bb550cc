"""Shared working state: grid inventory slots and arbitrage legs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.enums import LockStatus, MarketType, OrderStatus, PositionStatus, Side
from opensqt.model.money import ZERO

__all__ = ["InventorySlot", "Leg"]


@dataclass(frozen=True, slots=True)
class InventorySlot:
    """One grid level, keyed by its BUY price.

    The slot holds its inventory (``position_status``, signed ``position_qty``: negative for a
    short in neutral mode) and at most one working order. ``cycle`` counts finished orders and
    makes every client order id unique.
    """

    agent: str
    symbol: str
    slot_price: Decimal
    position_status: PositionStatus = PositionStatus.EMPTY
    position_qty: Decimal = ZERO
    order_side: Side | None = None
    order_price: Decimal = ZERO
    order_qty: Decimal = ZERO
    client_order_id: str = ""
    exchange_order_id: str = ""
    order_filled_qty: Decimal = ZERO
    order_status: OrderStatus | None = None
    lock_status: LockStatus = LockStatus.FREE
    cycle: int = 0
    post_only_rejects: int = 0
    version: int = 0
    # When the strategy decided the working order (its clock, ms); 0 when unknown. An answer
    # that is a finished order made well before it belongs to an earlier use of the client id.
    order_requested_ms: int = 0
    # The working order's flags as the strategy sent it, so a re-send after a restart sends the
    # same order; ``None`` when not recorded (a slot stored before they existed).
    order_reduce_only: bool | None = None
    order_post_only: bool | None = None

    @property
    def has_order(self) -> bool:
        return self.order_side is not None


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of an arbitrage position, keyed ``venue:symbol``. ``size`` is signed."""

    agent: str
    venue: str
    symbol: str
    market_type: MarketType
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    updated_ms: int = 0
    version: int = 0

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"
