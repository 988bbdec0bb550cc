"""The liquidation guard of behaviour.md section 4."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensqt.model import AlertKind, AlertSeverity, Leg, MarketType, Position
from opensqt.risk import (
    LiquidationConfig,
    LiquidationGuard,
    PositionKey,
    RiskConfigError,
    liquidation_distance,
)

PERP = PositionKey("binance", "BTCUSDT", MarketType.PERPETUAL)
SPOT = PositionKey("binance", "BTCUSDT", MarketType.SPOT)


def position(size: str, mark: str, liquidation: str, *, updated_ms: int = 1_000) -> Position:
    return Position(
        symbol="BTCUSDT",
        size=Decimal(size),
        mark_price=Decimal(mark),
        liquidation_price=Decimal(liquidation),
        venue="binance",
        market_type=MarketType.PERPETUAL,
        updated_ms=updated_ms,
    )


@pytest.mark.parametrize(
    ("size", "mark", "liquidation", "distance"),
    [
        pytest.param("1", "100", "80", Decimal("0.2"), id="long-is-mark-minus-liq"),
        pytest.param("-1", "100", "120", Decimal("0.2"), id="short-is-liq-minus-mark"),
        pytest.param("1", "100", "105", Decimal("-0.05"), id="long-past-liquidation-is-negative"),
        pytest.param("-1", "100", "95", Decimal("-0.05"), id="short-past-liquidation-is-negative"),
    ],
)
def test_distance_is_measured_from_mark_towards_liquidation(
    size: str, mark: str, liquidation: str, distance: Decimal
) -> None:
    assert liquidation_distance(position(size, mark, liquidation)) == distance


@pytest.mark.parametrize(
    ("size", "mark", "liquidation"),
    [
        pytest.param("1", "100", "0", id="no-liquidation-price"),
        pytest.param("0", "100", "95", id="no-size"),
        pytest.param("1", "0", "95", id="no-mark-price"),
    ],
)
def test_positions_without_the_data_are_left_alone(size: str, mark: str, liquidation: str) -> None:
    assert liquidation_distance(position(size, mark, liquidation)) is None
    assert LiquidationGuard().on_position_update(position(size, mark, liquidation)) is None


@pytest.mark.parametrize(
    ("size", "liquidation", "exits"),
    [
        pytest.param("1", "91", True, id="long-9pct-away-exits"),
        pytest.param("1", "90", False, id="long-exactly-10pct-stays"),
        pytest.param("1", "89", False, id="long-11pct-away-stays"),
        pytest.param("-2", "109", True, id="short-9pct-away-exits"),
        pytest.param("-2", "110", False, id="short-exactly-10pct-stays"),
        pytest.param("-2", "111", False, id="short-11pct-away-stays"),
        pytest.param("1", "101", True, id="long-past-liquidation-exits"),
    ],
)
def test_exit_only_strictly_below_the_threshold(size: str, liquidation: str, exits: bool) -> None:
    decision = LiquidationGuard().on_position_update(position(size, "100", liquidation))
    assert (decision is not None) is exits


def test_emergency_exit_names_the_position_and_alerts() -> None:
    decision = LiquidationGuard().on_position_update(position("1", "100", "95", updated_ms=42))
    assert decision is not None
    assert decision.exits == (PERP,)
    assert decision.distance == Decimal("0.05")
    assert decision.decision_id == "liquidation-binance:BTCUSDT:PERPETUAL-42"
    assert decision.alert.alert_id == decision.decision_id
    assert decision.alert.kind is AlertKind.LIQUIDATION
    assert decision.alert.severity is AlertSeverity.CRITICAL
    assert decision.alert.symbols == ("BTCUSDT",)
    assert decision.alert.created_ms == 42
    assert decision.alert.resulting_state is None
    assert "5.00%" in decision.alert.message


def test_hedged_position_exits_its_hedge_leg_too() -> None:
    guard = LiquidationGuard(hedges=[(SPOT, PERP)])
    decision = guard.on_position_update(position("-1", "100", "105"))
    assert decision is not None
    assert decision.exits == (PERP, SPOT)
    assert "hedge" in decision.alert.message


def test_hedge_pairs_work_in_both_directions() -> None:
    guard = LiquidationGuard(hedges=[(PERP, SPOT)])
    margin_short = Position(
        symbol="BTCUSDT",
        size=Decimal(-1),
        mark_price=Decimal(100),
        liquidation_price=Decimal(104),
        venue="binance",
        market_type=MarketType.SPOT,
    )
    decision = guard.on_position_update(margin_short)
    assert decision is not None
    assert decision.exits == (SPOT, PERP)


def test_unrelated_positions_do_not_exit_a_hedge() -> None:
    other = PositionKey("binance", "ETHUSDT", MarketType.SPOT)
    guard = LiquidationGuard(hedges=[(other, PositionKey("binance", "ETHUSDT", MarketType.PERPETUAL))])
    decision = guard.on_position_update(position("1", "100", "95"))
    assert decision is not None
    assert decision.exits == (PERP,)


def test_hedges_can_be_added_and_removed_without_mutating_the_guard() -> None:
    plain = LiquidationGuard()
    hedged = plain.with_hedge(PERP, SPOT)
    assert plain.hedges == {}
    assert hedged.hedges == {PERP: SPOT, SPOT: PERP}
    assert hedged.without_hedge(SPOT).hedges == {}
    assert hedged.hedges == {PERP: SPOT, SPOT: PERP}


def test_position_key_of_a_leg_matches_its_position() -> None:
    leg = Leg(agent="arb", venue="binance", symbol="BTCUSDT", market_type=MarketType.PERPETUAL)
    assert PositionKey.of_leg(leg) == PositionKey.of_position(position("1", "100", "90"))


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([(PERP, PERP)], id="self-hedge"),
        pytest.param([(PERP, SPOT), (PERP, PositionKey("okx", "BTCUSDT", MarketType.SPOT))], id="two-pairs"),
    ],
)
def test_invalid_hedge_pairs_are_refused(pairs: list[tuple[PositionKey, PositionKey]]) -> None:
    with pytest.raises(RiskConfigError, match="hedges"):
        LiquidationGuard(hedges=pairs)


def test_threshold_is_configurable() -> None:
    guard = LiquidationGuard(LiquidationConfig(liquidation_threshold=Decimal("0.25")))
    assert guard.on_position_update(position("1", "100", "80")) is not None


@given(
    size=st.decimals(min_value=Decimal("-100"), max_value=Decimal("100"), places=3).filter(
        lambda value: value != 0
    ),
    mark=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
    liquidation=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("200000"), places=2),
)
def test_exit_happens_exactly_when_the_distance_is_below_the_threshold(
    size: Decimal, mark: Decimal, liquidation: Decimal
) -> None:
    subject = Position(symbol="X", size=size, mark_price=mark, liquidation_price=liquidation)
    distance = liquidation_distance(subject)
    assert distance is not None
    assert abs(distance) == abs(mark - liquidation) / mark
    # The sign says which side of the liquidation price the mark is on, from the position's view.
    safe_side = mark > liquidation if size > 0 else mark < liquidation
    assert (distance > 0) is safe_side
    assert (LiquidationGuard().on_position_update(subject) is not None) is (distance < Decimal("0.10"))
