"""The one module that converts protobuf messages to domain types and back.

Decoding is strict: a malformed decimal string, a missing required field or an UNSPECIFIED enum
where a value is required raises :class:`CodecError` naming the field; nothing is coerced to 0.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from opensqt.errors import InvalidArgument
from opensqt.model import (
    AlertKind,
    AlertSeverity,
    Candle,
    FundingRate,
    FundingUpdate,
    Instrument,
    InventorySlot,
    Leg,
    LockStatus,
    MarketType,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionStatus,
    PositionUpdate,
    PriceChange,
    RiskAlert,
    Side,
    TimeInForce,
    Trade,
    TradingState,
    TradingStateKind,
)
from opensqt.model.money import ZERO, DecimalParseError, parse_decimal
from opensqt.v1 import events_pb2, resources_pb2, state_pb2

__all__ = [
    "CodecError",
    "decimal_to_wire",
    "decode_decimal",
    "ALERT_KIND",
    "ALERT_SEVERITY",
    "LOCK_STATUS",
    "MARKET_TYPE",
    "ORDER_STATUS",
    "ORDER_TYPE",
    "POSITION_STATUS",
    "SIDE",
    "TIME_IN_FORCE",
    "TRADING_STATE_KIND",
]


class CodecError(InvalidArgument):
    """A protobuf message cannot become a domain object. ``field`` is the dotted path."""


def decimal_to_wire(value: Decimal) -> str:
    """A Decimal as a plain decimal string (no exponent), the wire form of money."""
    if not value.is_finite():
        raise CodecError("decimal", f"{value} is not finite")
    if value.is_zero():
        value = value.copy_abs()
    return format(value, "f")


def decode_decimal(
    raw: str,
    field: str,
    *,
    required: bool = True,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """Parse a wire decimal. An empty string is an error when ``required``, else ``0``."""
    if raw == "" and not required:
        return ZERO
    try:
        return parse_decimal(raw, field=field, positive=positive, non_negative=non_negative)
    except DecimalParseError as exc:
        raise CodecError(field, str(exc).split(": ", 1)[1]) from exc


E = TypeVar("E", bound=Enum)


class EnumCodec(Generic[E]):
    """Maps a domain enum to a protobuf enum whose values are ``PREFIX_<NAME>``."""

    def __init__(self, domain: type[E], proto: Any, prefix: str) -> None:
        self._to_proto: dict[E, int] = {member: proto.Value(prefix + member.name) for member in domain}
        self._from_proto: dict[int, E] = {v: k for k, v in self._to_proto.items()}
        self._proto = proto
        self._name = domain.__name__

    def to_proto(self, value: E | None) -> Any:
        """The protobuf enum number (typed ``Any``: the generated stubs type each enum apart)."""
        return 0 if value is None else self._to_proto[value]

    def from_proto(self, value: int, field: str) -> E:
        """The domain value; UNSPECIFIED or an unknown number is an error naming ``field``."""
        try:
            return self._from_proto[value]
        except KeyError:
            raise CodecError(field, f"{self._name} is unspecified or unknown ({value})") from None

    def optional_from_proto(self, value: int, field: str) -> E | None:
        return None if value == 0 else self.from_proto(value, field)


SIDE = EnumCodec(Side, resources_pb2.Side, "SIDE_")
ORDER_TYPE = EnumCodec(OrderType, resources_pb2.OrderType, "ORDER_TYPE_")
TIME_IN_FORCE = EnumCodec(TimeInForce, resources_pb2.TimeInForce, "TIME_IN_FORCE_")
ORDER_STATUS = EnumCodec(OrderStatus, resources_pb2.OrderStatus, "ORDER_STATUS_")
MARKET_TYPE = EnumCodec(MarketType, resources_pb2.MarketType, "MARKET_TYPE_")
TRADING_STATE_KIND = EnumCodec(TradingStateKind, events_pb2.TradingStateKind, "TRADING_STATE_KIND_")
ALERT_KIND = EnumCodec(AlertKind, events_pb2.AlertKind, "ALERT_KIND_")
ALERT_SEVERITY = EnumCodec(AlertSeverity, events_pb2.AlertSeverity, "ALERT_SEVERITY_")
POSITION_STATUS = EnumCodec(PositionStatus, state_pb2.PositionStatus, "POSITION_STATUS_")
LOCK_STATUS = EnumCodec(LockStatus, state_pb2.LockStatus, "LOCK_STATUS_")


def _w(value: Decimal) -> str:
    return decimal_to_wire(value)


def _required_text(value: str, field: str) -> str:
    if not value:
        raise CodecError(field, "is required")
    return value


# --- resources -------------------------------------------------------------------------------


def instrument_to_proto(i: Instrument) -> resources_pb2.Instrument:
    return resources_pb2.Instrument(
        venue=i.venue,
        symbol=i.symbol,
        market_type=MARKET_TYPE.to_proto(i.market_type),
        base=i.base,
        quote=i.quote,
        tick_size=_w(i.tick_size),
        step_size=_w(i.step_size),
        min_qty=_w(i.min_qty),
        min_notional=_w(i.min_notional),
        funding_interval_hours=i.funding_interval_hours,
        max_client_order_id_length=i.max_client_order_id_length,
    )


def instrument_from_proto(m: resources_pb2.Instrument, path: str = "instrument") -> Instrument:
    return Instrument(
        venue=m.venue,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        market_type=MARKET_TYPE.from_proto(m.market_type, f"{path}.market_type"),
        base=m.base,
        quote=m.quote,
        tick_size=decode_decimal(m.tick_size, f"{path}.tick_size", positive=True),
        step_size=decode_decimal(m.step_size, f"{path}.step_size", positive=True),
        min_qty=decode_decimal(m.min_qty, f"{path}.min_qty", required=False, non_negative=True),
        min_notional=decode_decimal(
            m.min_notional, f"{path}.min_notional", required=False, non_negative=True
        ),
        funding_interval_hours=m.funding_interval_hours,
        max_client_order_id_length=m.max_client_order_id_length or 36,
    )


def order_to_proto(o: Order) -> resources_pb2.Order:
    return resources_pb2.Order(
        venue=o.venue,
        account=o.account,
        symbol=o.symbol,
        market_type=MARKET_TYPE.to_proto(o.market_type),
        client_order_id=o.client_order_id,
        exchange_order_id=o.exchange_order_id,
        side=SIDE.to_proto(o.side),
        type=ORDER_TYPE.to_proto(o.order_type),
        time_in_force=TIME_IN_FORCE.to_proto(o.time_in_force),
        post_only=o.post_only,
        reduce_only=o.reduce_only,
        price="" if o.order_type is OrderType.MARKET and o.price == 0 else _w(o.price),
        quantity=_w(o.quantity),
        filled_quantity=_w(o.filled_qty),
        average_price=_w(o.average_price),
        status=ORDER_STATUS.to_proto(o.status),
        created_ms=o.created_ms,
        updated_ms=o.updated_ms,
        base_commission="" if o.base_commission is None else _w(o.base_commission),
    )


def order_from_proto(m: resources_pb2.Order, path: str = "order") -> Order:
    order_type = ORDER_TYPE.from_proto(m.type, f"{path}.type")
    return Order(
        venue=m.venue,
        account=m.account,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        market_type=MARKET_TYPE.from_proto(m.market_type, f"{path}.market_type"),
        client_order_id=m.client_order_id,
        exchange_order_id=m.exchange_order_id,
        side=SIDE.from_proto(m.side, f"{path}.side"),
        order_type=order_type,
        time_in_force=TIME_IN_FORCE.optional_from_proto(m.time_in_force, f"{path}.time_in_force")
        or TimeInForce.GTC,
        post_only=m.post_only,
        reduce_only=m.reduce_only,
        price=decode_decimal(
            m.price, f"{path}.price", required=order_type is OrderType.LIMIT, non_negative=True
        ),
        quantity=decode_decimal(m.quantity, f"{path}.quantity", positive=True),
        filled_qty=decode_decimal(
            m.filled_quantity, f"{path}.filled_quantity", required=False, non_negative=True
        ),
        average_price=decode_decimal(
            m.average_price, f"{path}.average_price", required=False, non_negative=True
        ),
        status=ORDER_STATUS.from_proto(m.status, f"{path}.status"),
        created_ms=m.created_ms,
        updated_ms=m.updated_ms,
        base_commission=decode_decimal(m.base_commission, f"{path}.base_commission")
        if m.base_commission
        else None,
    )


def position_to_proto(p: Position) -> resources_pb2.Position:
    return resources_pb2.Position(
        venue=p.venue,
        account=p.account,
        symbol=p.symbol,
        market_type=MARKET_TYPE.to_proto(p.market_type),
        size=_w(p.size),
        entry_price=_w(p.entry_price),
        mark_price=_w(p.mark_price),
        liquidation_price=_w(p.liquidation_price),
        unrealized_pnl=_w(p.unrealized_pnl),
        leverage=_w(p.leverage),
        updated_ms=p.updated_ms,
    )


def position_from_proto(m: resources_pb2.Position, path: str = "position") -> Position:
    return Position(
        venue=m.venue,
        account=m.account,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        market_type=MARKET_TYPE.from_proto(m.market_type, f"{path}.market_type"),
        size=decode_decimal(m.size, f"{path}.size"),
        entry_price=decode_decimal(m.entry_price, f"{path}.entry_price", required=False, non_negative=True),
        mark_price=decode_decimal(m.mark_price, f"{path}.mark_price", required=False, non_negative=True),
        liquidation_price=decode_decimal(
            m.liquidation_price, f"{path}.liquidation_price", required=False, non_negative=True
        ),
        unrealized_pnl=decode_decimal(m.unrealized_pnl, f"{path}.unrealized_pnl", required=False),
        leverage=decode_decimal(m.leverage, f"{path}.leverage", required=False, non_negative=True),
        updated_ms=m.updated_ms,
    )


def trade_to_proto(t: Trade) -> resources_pb2.Trade:
    return resources_pb2.Trade(
        venue=t.venue,
        account=t.account,
        symbol=t.symbol,
        trade_id=t.trade_id,
        client_order_id=t.client_order_id,
        exchange_order_id=t.exchange_order_id,
        side=SIDE.to_proto(t.side),
        price=_w(t.price),
        quantity=_w(t.quantity),
        fee=_w(t.fee),
        fee_asset=t.fee_asset,
        is_maker=t.is_maker,
        time_ms=t.time_ms,
    )


def trade_from_proto(m: resources_pb2.Trade, path: str = "trade") -> Trade:
    return Trade(
        venue=m.venue,
        account=m.account,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        trade_id=_required_text(m.trade_id, f"{path}.trade_id"),
        client_order_id=m.client_order_id,
        exchange_order_id=m.exchange_order_id,
        side=SIDE.from_proto(m.side, f"{path}.side"),
        price=decode_decimal(m.price, f"{path}.price", positive=True),
        quantity=decode_decimal(m.quantity, f"{path}.quantity", positive=True),
        fee=decode_decimal(m.fee, f"{path}.fee", required=False),
        fee_asset=m.fee_asset,
        is_maker=m.is_maker,
        time_ms=m.time_ms,
    )


def funding_rate_to_proto(f: FundingRate) -> resources_pb2.FundingRate:
    return resources_pb2.FundingRate(
        venue=f.venue,
        symbol=f.symbol,
        rate=_w(f.rate),
        interval_hours=f.interval_hours,
        next_funding_ms=f.next_funding_ms,
        mark_price=_w(f.mark_price),
        index_price=_w(f.index_price),
        time_ms=f.time_ms,
    )


def funding_rate_from_proto(m: resources_pb2.FundingRate, path: str = "funding") -> FundingRate:
    if m.interval_hours == 0:
        raise CodecError(f"{path}.interval_hours", "is required (the venue's funding interval)")
    return FundingRate(
        venue=m.venue,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        rate=decode_decimal(m.rate, f"{path}.rate"),
        interval_hours=m.interval_hours,
        next_funding_ms=m.next_funding_ms,
        mark_price=decode_decimal(m.mark_price, f"{path}.mark_price", required=False, non_negative=True),
        index_price=decode_decimal(m.index_price, f"{path}.index_price", required=False, non_negative=True),
        time_ms=m.time_ms,
    )


def candle_to_proto(c: Candle) -> resources_pb2.Candle:
    return resources_pb2.Candle(
        venue=c.venue,
        symbol=c.symbol,
        interval=c.interval,
        open_ms=c.open_ms,
        open=_w(c.open),
        high=_w(c.high),
        low=_w(c.low),
        close=_w(c.close),
        volume=_w(c.volume),
        closed=c.closed,
    )


def candle_from_proto(m: resources_pb2.Candle, path: str = "candle") -> Candle:
    return Candle(
        venue=m.venue,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        interval=_required_text(m.interval, f"{path}.interval"),
        open_ms=m.open_ms,
        open=decode_decimal(m.open, f"{path}.open", positive=True),
        high=decode_decimal(m.high, f"{path}.high", positive=True),
        low=decode_decimal(m.low, f"{path}.low", positive=True),
        close=decode_decimal(m.close, f"{path}.close", positive=True),
        volume=decode_decimal(m.volume, f"{path}.volume", non_negative=True),
        closed=m.closed,
    )


# --- events ----------------------------------------------------------------------------------


def price_change_to_proto(p: PriceChange) -> events_pb2.PriceChange:
    return events_pb2.PriceChange(
        venue=p.venue,
        symbol=p.symbol,
        price=_w(p.price),
        bid=_w(p.bid),
        ask=_w(p.ask),
        exchange_ms=p.exchange_ms,
        received_ms=p.received_ms,
        sequence=p.sequence,
    )


def price_change_from_proto(m: events_pb2.PriceChange, path: str = "price_change") -> PriceChange:
    return PriceChange(
        venue=m.venue,
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        price=decode_decimal(m.price, f"{path}.price", positive=True),
        bid=decode_decimal(m.bid, f"{path}.bid", required=False, non_negative=True),
        ask=decode_decimal(m.ask, f"{path}.ask", required=False, non_negative=True),
        exchange_ms=m.exchange_ms,
        received_ms=m.received_ms,
        sequence=m.sequence,
    )


def order_update_to_proto(u: OrderUpdate) -> events_pb2.OrderUpdate:
    return events_pb2.OrderUpdate(
        event_id=u.event_id,
        order=order_to_proto(u.order),
        last_fill_price=_w(u.last_fill_price),
        last_fill_quantity=_w(u.last_fill_qty),
        reason=u.reason,
        source=u.source,
    )


def order_update_from_proto(m: events_pb2.OrderUpdate, path: str = "order_update") -> OrderUpdate:
    if not m.HasField("order"):
        raise CodecError(f"{path}.order", "is required")
    return OrderUpdate(
        event_id=_required_text(m.event_id, f"{path}.event_id"),
        order=order_from_proto(m.order, f"{path}.order"),
        last_fill_price=decode_decimal(
            m.last_fill_price, f"{path}.last_fill_price", required=False, non_negative=True
        ),
        last_fill_qty=decode_decimal(
            m.last_fill_quantity, f"{path}.last_fill_quantity", required=False, non_negative=True
        ),
        reason=m.reason,
        source=m.source,
    )


def funding_update_to_proto(u: FundingUpdate) -> events_pb2.FundingUpdate:
    return events_pb2.FundingUpdate(funding=funding_rate_to_proto(u.funding))


def funding_update_from_proto(m: events_pb2.FundingUpdate, path: str = "funding_update") -> FundingUpdate:
    if not m.HasField("funding"):
        raise CodecError(f"{path}.funding", "is required")
    return FundingUpdate(funding=funding_rate_from_proto(m.funding, f"{path}.funding"))


def position_update_to_proto(u: PositionUpdate) -> events_pb2.PositionUpdate:
    return events_pb2.PositionUpdate(event_id=u.event_id, position=position_to_proto(u.position))


def position_update_from_proto(m: events_pb2.PositionUpdate, path: str = "position_update") -> PositionUpdate:
    if not m.HasField("position"):
        raise CodecError(f"{path}.position", "is required")
    return PositionUpdate(
        event_id=_required_text(m.event_id, f"{path}.event_id"),
        position=position_from_proto(m.position, f"{path}.position"),
    )


def trading_state_to_proto(s: TradingState) -> events_pb2.TradingState:
    return events_pb2.TradingState(
        state=TRADING_STATE_KIND.to_proto(s.state),
        reason=s.reason,
        set_by=s.set_by,
        updated_ms=s.updated_ms,
        version=s.version,
    )


def trading_state_from_proto(m: events_pb2.TradingState, path: str = "trading_state") -> TradingState:
    return TradingState(
        state=TRADING_STATE_KIND.from_proto(m.state, f"{path}.state"),
        reason=m.reason,
        set_by=m.set_by,
        updated_ms=m.updated_ms,
        version=m.version,
    )


def risk_alert_to_proto(a: RiskAlert) -> events_pb2.RiskAlert:
    return events_pb2.RiskAlert(
        alert_id=a.alert_id,
        kind=ALERT_KIND.to_proto(a.kind),
        severity=ALERT_SEVERITY.to_proto(a.severity),
        message=a.message,
        symbols=list(a.symbols),
        created_ms=a.created_ms,
        resulting_state=TRADING_STATE_KIND.to_proto(a.resulting_state),
    )


def risk_alert_from_proto(m: events_pb2.RiskAlert, path: str = "risk_alert") -> RiskAlert:
    return RiskAlert(
        alert_id=_required_text(m.alert_id, f"{path}.alert_id"),
        kind=ALERT_KIND.from_proto(m.kind, f"{path}.kind"),
        severity=ALERT_SEVERITY.from_proto(m.severity, f"{path}.severity"),
        message=m.message,
        symbols=tuple(m.symbols),
        created_ms=m.created_ms,
        resulting_state=TRADING_STATE_KIND.optional_from_proto(m.resulting_state, f"{path}.resulting_state"),
    )


# --- state -----------------------------------------------------------------------------------


def inventory_slot_to_proto(s: InventorySlot) -> state_pb2.InventorySlot:
    return state_pb2.InventorySlot(
        agent=s.agent,
        symbol=s.symbol,
        slot_price=_w(s.slot_price),
        position_status=POSITION_STATUS.to_proto(s.position_status),
        position_quantity=_w(s.position_qty),
        order_side=SIDE.to_proto(s.order_side),
        order_price=_w(s.order_price),
        order_quantity=_w(s.order_qty),
        client_order_id=s.client_order_id,
        exchange_order_id=s.exchange_order_id,
        order_filled_quantity=_w(s.order_filled_qty),
        order_status=ORDER_STATUS.to_proto(s.order_status),
        lock_status=LOCK_STATUS.to_proto(s.lock_status),
        cycle=s.cycle,
        post_only_rejects=s.post_only_rejects,
        version=s.version,
        order_requested_ms=s.order_requested_ms,
        order_reduce_only=s.order_reduce_only,
        order_post_only=s.order_post_only,
    )


def inventory_slot_from_proto(m: state_pb2.InventorySlot, path: str = "slot") -> InventorySlot:
    return InventorySlot(
        agent=_required_text(m.agent, f"{path}.agent"),
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        slot_price=decode_decimal(m.slot_price, f"{path}.slot_price", positive=True),
        position_status=POSITION_STATUS.from_proto(m.position_status, f"{path}.position_status"),
        position_qty=decode_decimal(m.position_quantity, f"{path}.position_quantity", required=False),
        order_side=SIDE.optional_from_proto(m.order_side, f"{path}.order_side"),
        order_price=decode_decimal(m.order_price, f"{path}.order_price", required=False, non_negative=True),
        order_qty=decode_decimal(
            m.order_quantity, f"{path}.order_quantity", required=False, non_negative=True
        ),
        client_order_id=m.client_order_id,
        exchange_order_id=m.exchange_order_id,
        order_filled_qty=decode_decimal(
            m.order_filled_quantity, f"{path}.order_filled_quantity", required=False, non_negative=True
        ),
        order_status=ORDER_STATUS.optional_from_proto(m.order_status, f"{path}.order_status"),
        lock_status=LOCK_STATUS.from_proto(m.lock_status, f"{path}.lock_status"),
        cycle=m.cycle,
        post_only_rejects=m.post_only_rejects,
        version=m.version,
        order_requested_ms=max(m.order_requested_ms, 0),
        order_reduce_only=m.order_reduce_only if m.HasField("order_reduce_only") else None,
        order_post_only=m.order_post_only if m.HasField("order_post_only") else None,
    )


def leg_to_proto(leg: Leg) -> state_pb2.Leg:
    return state_pb2.Leg(
        agent=leg.agent,
        venue=leg.venue,
        symbol=leg.symbol,
        market_type=MARKET_TYPE.to_proto(leg.market_type),
        size=_w(leg.size),
        entry_price=_w(leg.entry_price),
        updated_ms=leg.updated_ms,
        version=leg.version,
    )


def leg_from_proto(m: state_pb2.Leg, path: str = "leg") -> Leg:
    return Leg(
        agent=_required_text(m.agent, f"{path}.agent"),
        venue=_required_text(m.venue, f"{path}.venue"),
        symbol=_required_text(m.symbol, f"{path}.symbol"),
        market_type=MARKET_TYPE.from_proto(m.market_type, f"{path}.market_type"),
        size=decode_decimal(m.size, f"{path}.size"),
        entry_price=decode_decimal(m.entry_price, f"{path}.entry_price", required=False, non_negative=True),
        updated_ms=m.updated_ms,
        version=m.version,
    )
