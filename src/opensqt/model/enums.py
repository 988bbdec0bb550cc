"""Domain enums. Values mirror the v1 protobuf enums; ``UNSPECIFIED`` never appears here."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Order side."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    """GTC, IOC, FOK; post-only is a separate flag on the order (Binance's GTX)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_final(self) -> bool:
        """True when the order can change no more."""
        return self in _FINAL_STATUSES

    @property
    def is_working(self) -> bool:
        return not self.is_final


_FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class MarketType(StrEnum):
    SPOT = "SPOT"
    MARGIN = "MARGIN"
    PERPETUAL = "PERPETUAL"


class TradingStateKind(StrEnum):
    """The constellation's trading state, set by risk and obeyed by every executor."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class PositionStatus(StrEnum):
    """A grid slot's inventory: EMPTY or FILLED."""

    EMPTY = "EMPTY"
    FILLED = "FILLED"


class LockStatus(StrEnum):
    """A grid slot's lock: FREE -> PENDING (order being sent) -> LOCKED (order working)."""

    FREE = "FREE"
    PENDING = "PENDING"
    LOCKED = "LOCKED"


class AlertSeverity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class AlertKind(StrEnum):
    CRASH = "CRASH"
    RECOVERY = "RECOVERY"
    LIQUIDATION = "LIQUIDATION"
    POSITION_DRIFT = "POSITION_DRIFT"
    OPERATOR = "OPERATOR"
    FEED_STALE = "FEED_STALE"
    AGENT_REDUCING = "AGENT_REDUCING"
