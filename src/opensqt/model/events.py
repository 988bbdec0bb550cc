"""Events that travel between services (as protobuf on NATS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from opensqt.model.enums import AlertKind, AlertSeverity, TradingStateKind
from opensqt.model.money import ZERO
from opensqt.model.resources import FundingRate, Order, Position

__all__ = [
    "FundingUpdate",
    "OrderUpdate",
    "PositionUpdate",
    "PriceChange",
    "RiskAlert",
    "TradingState",
]


@dataclass(frozen=True, slots=True)
class PriceChange:
    """Latest price of a symbol (last trade or mid), with the best bid and ask when known."""

    venue: str
    symbol: str
    price: Decimal
    bid: Decimal = ZERO
    ask: Decimal = ZERO
    exchange_ms: int = 0
    received_ms: int = 0
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change to one order. ``event_id`` is unique per change and is the de-duplication key."""

    event_id: str
    order: Order
    last_fill_price: Decimal = ZERO
    last_fill_qty: Decimal = ZERO
    reason: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class FundingUpdate:
    funding: FundingRate


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    event_id: str
    position: Position


@dataclass(frozen=True, slots=True)
class TradingState:
    """The trading state with who set it and why. ``version`` increases with every change."""

    state: TradingStateKind
    reason: str = ""
    set_by: str = ""
    updated_ms: int = 0
    version: int = 0


@dataclass(frozen=True, slots=True)
class RiskAlert:
    alert_id: str
    kind: AlertKind
    severity: AlertSeverity
    message: str
    symbols: tuple[str, ...] = field(default_factory=tuple)
    created_ms: int = 0
    resulting_state: TradingStateKind | None = None
