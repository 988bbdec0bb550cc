"""Validation of order requests against the instrument's rules. Pure: no I/O.

Every refusal is an :class:`~opensqt.errors.InvalidArgument` naming the field, raised before
anything reaches the exchange.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from opensqt.errors import InvalidArgument
from opensqt.model import Instrument, MarketType, Order, OrderType, Side, TimeInForce
from opensqt.model.money import ZERO, DecimalParseError, parse_decimal

__all__ = ["CLIENT_ORDER_ID_RE", "OrderDraft", "validate_order"]

#: Binance's rule for client order ids (the strictest venue we speak to); use ``fullmatch``
#: (``$`` alone would accept a trailing newline).
CLIENT_ORDER_ID_RE = re.compile(r"[.A-Za-z0-9:/_-]+")
#: Prices and quantities from 10**18 up are refused: no instrument trades them, and checking
#: them against a tick or step would overflow Decimal's 28 digits.
MAX_MAGNITUDE = Decimal(10) ** 18


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """An order request as it arrived (strings for money, names for enums; unset is ``None``)."""

    symbol: str
    client_order_id: str
    side: Side | None
    order_type: OrderType | None
    quantity: str
    price: str = ""
    time_in_force: TimeInForce | None = None
    post_only: bool = False
    reduce_only: bool = False
    market_type: MarketType | None = None


def _decimal(raw: str, field: str) -> Decimal:
    if raw == "":
        raise InvalidArgument(field, "is required")
    try:
        value = parse_decimal(raw, field=field)
    except DecimalParseError as exc:
        raise InvalidArgument(field, f"{raw!r} is not a finite decimal number") from exc
    if abs(value) >= MAX_MAGNITUDE:
        raise InvalidArgument(field, f"{raw} is too large (at most {MAX_MAGNITUDE - 1:f})")
    return value


def _on_grid(check: Callable[[Decimal], bool], value: Decimal, field: str, size: Decimal) -> bool:
    """``check`` (a tick or step test), or InvalidArgument when counting ``size`` steps up to
    ``value`` needs more than Decimal's 28 digits."""
    try:
        return check(value)
    except InvalidOperation as exc:
        raise InvalidArgument(field, f"{value} has too many digits for its grid of {size}") from exc


def validate_order(
    draft: OrderDraft,
    instruments: Mapping[str, Instrument],
    *,
    venue: str,
    account: str,
    field_prefix: str = "order",
) -> Order:
    """The :class:`Order` to send, or :class:`InvalidArgument` naming the first bad field."""

    def f(name: str) -> str:
        return f"{field_prefix}.{name}"

    instrument = instruments.get(draft.symbol)
    if not draft.symbol:
        raise InvalidArgument(f("symbol"), "is required")
    if instrument is None:
        raise InvalidArgument(f("symbol"), f"unknown symbol {draft.symbol!r} on {venue}")
    cid = draft.client_order_id
    if not cid:
        raise InvalidArgument(f("client_order_id"), "is required (it is the idempotency key)")
    if len(cid) > instrument.max_client_order_id_length:
        raise InvalidArgument(
            f("client_order_id"),
            f"is {len(cid)} characters; {venue} allows at most {instrument.max_client_order_id_length}",
        )
    if not CLIENT_ORDER_ID_RE.fullmatch(cid):
        raise InvalidArgument(f("client_order_id"), f"{cid!r} may only contain [.A-Za-z0-9:/_-]")
    if draft.side is None:
        raise InvalidArgument(f("side"), "is required (SIDE_BUY or SIDE_SELL)")
    if draft.order_type is None:
        raise InvalidArgument(f("type"), "is required (ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET)")
    quantity = _decimal(draft.quantity, f("quantity"))
    if quantity <= 0:
        raise InvalidArgument(f("quantity"), f"must be greater than zero, got {draft.quantity}")
    if not _on_grid(instrument.is_on_step, quantity, f("quantity"), instrument.step_size):
        raise InvalidArgument(
            f("quantity"), f"{quantity} is not a multiple of step size {instrument.step_size}"
        )
    if quantity < instrument.min_qty:
        raise InvalidArgument(f("quantity"), f"{quantity} is below the minimum quantity {instrument.min_qty}")
    price = ZERO
    if draft.order_type is OrderType.LIMIT:
        price = _decimal(draft.price, f("price"))
        if price <= 0:
            raise InvalidArgument(f("price"), f"must be greater than zero, got {draft.price}")
        if not _on_grid(instrument.is_on_tick, price, f("price"), instrument.tick_size):
            raise InvalidArgument(
                f("price"), f"{price} is not a multiple of tick size {instrument.tick_size}"
            )
        if price * quantity < instrument.min_notional:
            raise InvalidArgument(
                f("quantity"),
                f"notional {price * quantity} is below the minimum notional {instrument.min_notional}",
            )
    else:
        if draft.price:
            raise InvalidArgument(f("price"), "must be empty for a market order")
        if draft.post_only:
            raise InvalidArgument(f("post_only"), "a market order cannot be post-only")
    market_type = draft.market_type or instrument.market_type
    if market_type is not instrument.market_type and not (
        market_type is MarketType.MARGIN and instrument.market_type is MarketType.SPOT
    ):
        raise InvalidArgument(
            f("market_type"), f"{draft.symbol} is a {instrument.market_type.value} instrument"
        )
    return Order(
        symbol=draft.symbol,
        side=draft.side,
        order_type=draft.order_type,
        quantity=quantity,
        price=price,
        client_order_id=cid,
        venue=venue,
        account=account,
        market_type=market_type,
        time_in_force=draft.time_in_force or TimeInForce.GTC,
        post_only=draft.post_only,
        reduce_only=draft.reduce_only,
    )
