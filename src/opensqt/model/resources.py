"""Resources: orders, positions, trades, funding rates and candles.

All times are integer epoch milliseconds (``*_ms``); all money is ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from opensqt.model.enums import MarketType, OrderStatus, OrderType, Side, TimeInForce
from opensqt.model.money import ZERO

__all__ = ["Candle", "FundingRate", "Order", "Position", "Trade", "fields_state", "restore_fields_state"]


def fields_state(self: Any) -> list[object]:
    """A slotted dataclass's pickle state: its field values in order (``__getstate__``)."""
    return [getattr(self, f.name) for f in fields(self)]


def restore_fields_state(self: Any, state: list[object]) -> None:
    """``__setstate__`` for :func:`fields_state`: a value pickled before a field was added (DBOS
    keeps step results pickled across an upgrade) has fewer values, and the later fields take
    their defaults."""
    for index, item in enumerate(fields(self)):
        object.__setattr__(self, item.name, state[index] if index < len(state) else item.default)


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the exchange knows it (or as it is about to be sent).

    ``price`` is ``0`` for market orders. ``filled_qty`` is cumulative. ``base_commission`` is
    the part of the commission taken from the base asset (a spot buy on Binance without BNB
    fees: the buyer received ``filled_qty - base_commission``), cumulative; ``None`` when the
    venue did not report the order's fees.
    """

    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal = ZERO
    client_order_id: str = ""
    exchange_order_id: str = ""
    venue: str = ""
    account: str = ""
    market_type: MarketType = MarketType.PERPETUAL
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    average_price: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0
    base_commission: Decimal | None = None

    @property
    def remaining_qty(self) -> Decimal:
        return self.quantity - self.filled_qty

    # an order pickled before a field was added reads back with that field's default
    __getstate__ = fields_state
    __setstate__ = restore_fields_state


@dataclass(frozen=True, slots=True)
class Position:
    """A position on one symbol. ``size`` is signed: positive long, negative short."""

    symbol: str
    size: Decimal
    entry_price: Decimal = ZERO
    mark_price: Decimal = ZERO
    liquidation_price: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    leverage: Decimal = ZERO
    venue: str = ""
    account: str = ""
    market_type: MarketType = MarketType.PERPETUAL
    updated_ms: int = 0


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of one order."""

    symbol: str
    trade_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal = ZERO
    fee_asset: str = ""
    is_maker: bool = False
    client_order_id: str = ""
    exchange_order_id: str = ""
    venue: str = ""
    account: str = ""
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class FundingRate:
    """A perpetual's funding rate per interval (``0.0001`` = 0.01% per interval)."""

    symbol: str
    rate: Decimal
    interval_hours: int
    next_funding_ms: int
    mark_price: Decimal = ZERO
    index_price: Decimal = ZERO
    venue: str = ""
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class Candle:
    """An OHLCV candle keyed by its open time. ``closed`` is False while it is still forming."""

    symbol: str
    interval: str
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool = True
    venue: str = ""
