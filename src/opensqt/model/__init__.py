"""Pure domain types: Decimal money, enums, instruments, orders, events and state.

Nothing here performs I/O or imports a transport library; the codec in
:mod:`opensqt.transport.codec` converts these to and from protobuf at the edges.
"""

from opensqt.model.enums import (
    AlertKind,
    AlertSeverity,
    LockStatus,
    MarketType,
    OrderStatus,
    OrderType,
    PositionStatus,
    Side,
    TimeInForce,
    TradingStateKind,
)
from opensqt.model.events import (
    FundingUpdate,
    OrderUpdate,
    PositionUpdate,
    PriceChange,
    RiskAlert,
    TradingState,
)
from opensqt.model.instrument import Instrument
from opensqt.model.money import (
    DecimalParseError,
    parse_decimal,
    round_half_up,
    round_to_step,
)
from opensqt.model.resources import Candle, FundingRate, Order, Position, Trade
from opensqt.model.state import InventorySlot, Leg

__all__ = [
    "AlertKind",
    "AlertSeverity",
    "Candle",
    "DecimalParseError",
    "FundingRate",
    "FundingUpdate",
    "Instrument",
    "InventorySlot",
    "Leg",
    "LockStatus",
    "MarketType",
    "Order",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Position",
    "PositionStatus",
    "PositionUpdate",
    "PriceChange",
    "RiskAlert",
    "Side",
    "TimeInForce",
    "Trade",
    "TradingState",
    "TradingStateKind",
    "parse_decimal",
    "round_half_up",
    "round_to_step",
]
