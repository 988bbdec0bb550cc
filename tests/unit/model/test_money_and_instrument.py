"""Strict decimal parsing and rounding to the instrument's tick and step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.model import (
    DecimalParseError,
    Instrument,
    MarketType,
    parse_decimal,
    round_half_up,
    round_to_step,
)
from opensqt.model.instrument import InstrumentRuleError

D = Decimal
ETH = Instrument(
    "paper", "ETHUSDT", MarketType.PERPETUAL, "ETH", "USDT", D("0.01"), D("0.001"), D("0.001"), D("5")
)


def test_parse_decimal_accepts_plain_decimal_strings_and_keeps_their_scale() -> None:
    assert parse_decimal("3000.10") == D("3000.10")
    assert str(parse_decimal("3000.10")) == "3000.10"
    assert parse_decimal("-1e-8") == D("-0.00000001")
    assert parse_decimal(7) == 7


@pytest.mark.parametrize("raw", ["NaN", "sNaN", "inf", "Infinity", "", " ", "1_000", "1,5", "abc", "1.2.3"])
def test_parse_decimal_refuses_anything_else(raw: str) -> None:
    with pytest.raises(DecimalParseError) as refused:
        parse_decimal(raw, field="price")
    assert refused.value.field == "price"


def test_parse_decimal_refuses_floats_and_bools() -> None:
    with pytest.raises(DecimalParseError, match="not a float"):
        parse_decimal(0.1)  # type: ignore[arg-type]
    with pytest.raises(DecimalParseError):
        parse_decimal(True)


def test_parse_decimal_sign_constraints() -> None:
    with pytest.raises(DecimalParseError, match="greater than zero"):
        parse_decimal("0", positive=True)
    with pytest.raises(DecimalParseError, match="must not be negative"):
        parse_decimal("-0.1", non_negative=True)


def test_round_half_up_rounds_halves_away_from_zero_unlike_python_round() -> None:
    assert round_half_up(D("2.5")) == 3
    assert round(2.5) == 2  # the trap this helper exists for
    assert round_half_up(D("-2.5")) == -3
    assert round_half_up(D("-1.25")) == -1


def test_round_to_step_modes() -> None:
    assert round_to_step(D("2999.995"), D("0.01")) == D("3000.00")
    assert round_to_step(D("0.0109"), D("0.001"), mode="down") == D("0.010")
    assert round_to_step(D("0.0101"), D("0.001"), mode="up") == D("0.011")
    assert str(round_to_step(D("1.5"), D("0.01"))) == "1.50"
    with pytest.raises(ValueError, match="step must be greater than zero"):
        round_to_step(D("1"), D("0"))


def test_instrument_rounds_prices_to_tick_and_quantities_down_to_step() -> None:
    assert ETH.round_price(D("2998.005")) == D("2998.01")
    assert ETH.round_qty(D("30") / D("2998")) == D("0.010")


def test_instrument_check_order_names_the_broken_rule() -> None:
    ETH.check_order(D("2998.00"), D("0.010"))
    cases = [
        (D("2998.001"), D("0.010"), "price", "tick size"),
        (D("2998.00"), D("0.0105"), "quantity", "step size"),
        (D("2998.00"), D("0.001"), "quantity", "minimum notional"),
        (D("-1"), D("0.010"), "price", "greater than zero"),
        (D("2998.00"), D("0"), "quantity", "greater than zero"),
    ]
    for price, qty, field, words in cases:
        with pytest.raises(InstrumentRuleError) as refused:
            ETH.check_order(price, qty)
        assert refused.value.field == field
        assert words in str(refused.value)


def test_instrument_refuses_a_zero_tick() -> None:
    with pytest.raises(InstrumentRuleError, match="tick_size"):
        Instrument("paper", "X", MarketType.SPOT, "X", "USDT", D("0"), D("1"))
