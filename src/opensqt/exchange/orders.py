"""What goes into the matching core (order requests) and what comes out (events, refusals)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from opensqt.model.enums import MarketType, OrderType, Side, TimeInForce
from opensqt.model.events import OrderUpdate
from opensqt.model.money import ZERO
from opensqt.model.resources import Order, Trade

__all__ = [
    "FillRule",
    "FundingPayment",
    "OrderEvent",
    "OrderRejected",
    "OrderRequest",
    "RejectReason",
    "UnknownOrder",
]


class FillRule(StrEnum):
    """When a resting limit order fills against the market price.

    ``THROUGH`` (the default, conservative): only when the price trades strictly beyond the
    limit (a BUY at 100 fills once the price is below 100). ``TOUCH``: as soon as the price
    reaches the limit.
    """

    THROUGH = "through"
    TOUCH = "touch"


class RejectReason(StrEnum):
    """Why an order was refused without ever existing on the book."""

    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    INVALID_ORDER = "INVALID_ORDER"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    REDUCE_ONLY_REJECTED = "REDUCE_ONLY_REJECTED"
    NO_PRICE = "NO_PRICE"


class UnknownOrder(LookupError):
    """A cancel or query named an order the core does not have open (final for a cancel)."""


class OrderRejected(Exception):
    """The core refused an order; no order was created and nothing changed.

    Attributes:
        reason: a :class:`RejectReason` (a paper exchange maps it to its API's error codes).
        client_order_id: the refused order's client id.
    """

    def __init__(self, reason: RejectReason, message: str, client_order_id: str = "") -> None:
        self.reason = reason
        self.client_order_id = client_order_id
        super().__init__(f"{reason.value}: {message}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order for the matching core.

    ``price`` is ignored for MARKET orders. ``market_type`` defaults to the instrument's; a
    MARGIN order on a spot instrument may borrow (balances may go negative).
    """

    account: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal = ZERO
    client_order_id: str = ""
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    market_type: MarketType | None = None

    @classmethod
    def from_order(cls, order: Order, *, account: str = "", venue: str = "") -> OrderRequest:
        """The request for a domain :class:`~opensqt.model.Order` (its account and venue by default)."""
        return cls(
            account=account or order.account,
            venue=venue or order.venue,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price,
            client_order_id=order.client_order_id,
            time_in_force=order.time_in_force,
            post_only=order.post_only,
            reduce_only=order.reduce_only,
            market_type=order.market_type,
        )


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change of one order: the update to publish and, for a fill, the trade with its fee.

    ``realized_pnl`` is the perpetual PnL this fill realized (0 for spot and for opening fills);
    ``liquidation`` marks the venue's own closing order of a liquidated position.
    """

    update: OrderUpdate
    trade: Trade | None = None
    realized_pnl: Decimal = ZERO
    liquidation: bool = False

    @property
    def order(self) -> Order:
        return self.update.order


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """Funding settled on one perpetual position. ``amount`` > 0 was received, < 0 paid."""

    account: str
    venue: str
    symbol: str
    rate: Decimal
    mark_price: Decimal
    position_size: Decimal
    amount: Decimal
    time_ms: int
