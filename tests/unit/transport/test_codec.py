"""The protobuf <-> domain codec: exact round trips, strict refusals naming the field."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from opensqt.transport import codec
from opensqt.v1 import events_pb2, resources_pb2

D = Decimal
ORDER = Order(
    symbol="ETHUSDT",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=D("0.010"),
    price=D("2998.00"),
    client_order_id="mmETHUSDT-grid-299800-B-3",
    exchange_order_id="812",
    venue="paper",
    account="main",
    market_type=MarketType.PERPETUAL,
    time_in_force=TimeInForce.GTC,
    post_only=True,
    status=OrderStatus.PARTIALLY_FILLED,
    filled_qty=D("0.004"),
    average_price=D("2998.00"),
    created_ms=1,
    updated_ms=2,
)

ROUND_TRIPS = [
    (ORDER, codec.order_to_proto, codec.order_from_proto),
    (replace(ORDER, base_commission=D("0.00000400")), codec.order_to_proto, codec.order_from_proto),
    (replace(ORDER, base_commission=D(0)), codec.order_to_proto, codec.order_from_proto),
    (
        Position(symbol="BTCUSDT", size=D("-0.125"), entry_price=D("60000.1"), liquidation_price=D("66000")),
        codec.position_to_proto,
        codec.position_from_proto,
    ),
    (
        Trade(
            symbol="BTCUSDT", trade_id="7", side=Side.SELL, price=D("1.5"), quantity=D("2"), fee=D("-0.001")
        ),
        codec.trade_to_proto,
        codec.trade_from_proto,
    ),
    (
        FundingRate(symbol="BTCUSDT", rate=D("-0.00037500"), interval_hours=4, next_funding_ms=10),
        codec.funding_rate_to_proto,
        codec.funding_rate_from_proto,
    ),
    (
        Candle("BTCUSDT", "1m", 0, D("1.0"), D("2.0"), D("0.5"), D("1.5"), D("0"), closed=False),
        codec.candle_to_proto,
        codec.candle_from_proto,
    ),
    (
        PriceChange(venue="paper", symbol="BTCUSDT", price=D("60000.10"), bid=D("60000.0"), ask=D("60000.2")),
        codec.price_change_to_proto,
        codec.price_change_from_proto,
    ),
    (
        OrderUpdate(event_id="e1", order=ORDER, last_fill_qty=D("0.004")),
        codec.order_update_to_proto,
        codec.order_update_from_proto,
    ),
    (
        FundingUpdate(FundingRate(symbol="ETHUSDT", rate=D("0.0001"), interval_hours=8, next_funding_ms=5)),
        codec.funding_update_to_proto,
        codec.funding_update_from_proto,
    ),
    (
        PositionUpdate("p1", Position(symbol="ETHUSDT", size=D("3"))),
        codec.position_update_to_proto,
        codec.position_update_from_proto,
    ),
    (
        TradingState(TradingStateKind.REDUCING, "crash", "risk", 5, 7),
        codec.trading_state_to_proto,
        codec.trading_state_from_proto,
    ),
    (
        RiskAlert(
            "a1",
            AlertKind.CRASH,
            AlertSeverity.CRITICAL,
            "all panic",
            ("BTCUSDT",),
            3,
            TradingStateKind.REDUCING,
        ),
        codec.risk_alert_to_proto,
        codec.risk_alert_from_proto,
    ),
    (
        InventorySlot(
            "grid",
            "ETHUSDT",
            D("2998.00"),
            PositionStatus.FILLED,
            D("0.010"),
            Side.SELL,
            D("3000.00"),
            D("0.010"),
            "cid",
            "eid",
            D("0"),
            OrderStatus.NEW,
            LockStatus.LOCKED,
            4,
            1,
            9,
            1_732_000_000_123,
            True,
            False,
        ),
        codec.inventory_slot_to_proto,
        codec.inventory_slot_from_proto,
    ),
    (
        InventorySlot("grid", "ETHUSDT", D("2998.00")),  # no order, no flags recorded
        codec.inventory_slot_to_proto,
        codec.inventory_slot_from_proto,
    ),
    (
        Leg("arb", "binance", "BTCUSDT", MarketType.SPOT, D("-0.5"), D("100")),
        codec.leg_to_proto,
        codec.leg_from_proto,
    ),
    (
        Instrument(
            "paper",
            "ETHUSDT",
            MarketType.PERPETUAL,
            "ETH",
            "USDT",
            D("0.01"),
            D("0.001"),
            D("0.001"),
            D("5"),
            8,
            36,
        ),
        codec.instrument_to_proto,
        codec.instrument_from_proto,
    ),
]


@pytest.mark.parametrize(("value", "to_proto", "from_proto"), ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_every_type_survives_a_wire_round_trip(value: object, to_proto: object, from_proto: object) -> None:
    message = to_proto(value)  # type: ignore[operator]
    wire = message.SerializeToString()
    assert from_proto(type(message).FromString(wire)) == value  # type: ignore[operator]


def test_decimals_travel_as_plain_strings_with_their_scale() -> None:
    message = codec.order_to_proto(ORDER)
    assert message.price == "2998.00"
    assert message.quantity == "0.010"
    assert codec.decimal_to_wire(D("1E+3")) == "1000"
    assert codec.decimal_to_wire(D("-0.00")) == "0.00"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**12), max_value=10**12))
def test_any_finite_decimal_round_trips_exactly(value: Decimal) -> None:
    assert codec.decode_decimal(codec.decimal_to_wire(value), "x") == value


@pytest.mark.parametrize(
    "raw", ["NaN", "nan", "Infinity", "-inf", "1,000", "abc", " 1", "1 ", "0x10", "1e", "--1"]
)
def test_malformed_decimals_are_refused_naming_the_field(raw: str) -> None:
    message = codec.order_to_proto(ORDER)
    message.price = raw
    with pytest.raises(codec.CodecError) as refused:
        codec.order_from_proto(message)
    assert refused.value.field == "order.price"
    assert raw in str(refused.value)


def test_a_required_decimal_is_never_coerced_to_zero() -> None:
    message = codec.order_to_proto(ORDER)
    message.quantity = ""
    with pytest.raises(codec.CodecError, match=r"order\.quantity: '' is empty"):
        codec.order_from_proto(message)


def test_negative_or_zero_quantities_are_refused() -> None:
    for raw in ("0", "-1"):
        message = codec.order_to_proto(ORDER)
        message.quantity = raw
        with pytest.raises(codec.CodecError, match="greater than zero"):
            codec.order_from_proto(message)


def test_unspecified_enums_are_refused_where_required() -> None:
    message = codec.order_to_proto(ORDER)
    message.side = resources_pb2.SIDE_UNSPECIFIED
    with pytest.raises(codec.CodecError, match=r"order\.side: Side is unspecified"):
        codec.order_from_proto(message)
    with pytest.raises(codec.CodecError, match=r"trading_state\.state"):
        codec.trading_state_from_proto(events_pb2.TradingState(reason="x"))


def test_market_orders_carry_no_price() -> None:
    market = Order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D("1"))
    message = codec.order_to_proto(market)
    assert message.price == ""
    assert codec.order_from_proto(message).price == 0


def test_funding_without_its_interval_is_refused() -> None:
    message = events_pb2.FundingUpdate(funding=resources_pb2.FundingRate(symbol="BTCUSDT", rate="0.0001"))
    with pytest.raises(codec.CodecError, match=r"funding_update\.funding\.interval_hours"):
        codec.funding_update_from_proto(message)


def test_an_event_missing_its_payload_is_refused() -> None:
    with pytest.raises(codec.CodecError, match=r"order_update\.order: is required"):
        codec.order_update_from_proto(events_pb2.OrderUpdate(event_id="e"))


def test_domain_enums_map_one_to_one_onto_proto_enums() -> None:
    for member in Side:
        assert codec.SIDE.from_proto(codec.SIDE.to_proto(member), "f") is member
    assert {codec.TRADING_STATE_KIND.to_proto(k) for k in TradingStateKind} == {1, 2, 3}
