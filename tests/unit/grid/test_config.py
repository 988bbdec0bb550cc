"""GridConfig validation and the ATR widening helper."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from opensqt.grid import GridConfig, GridConfigError, GridMode, Strategy, widen_interval
from opensqt.grid.config import average_true_range, starting_interval
from opensqt.model import Instrument, MarketType
from tests.unit.grid import ETH, D, make_config


def test_defaults_match_behaviour_md() -> None:
    config = make_config()
    assert config.mode is GridMode.LONG
    assert config.trail_hysteresis == 1
    assert config.post_only_max_rejects == 3


def test_mode_parses_from_its_lowercase_name() -> None:
    assert GridMode("neutral") is GridMode.NEUTRAL
    assert make_config(mode=GridMode("long")).mode is GridMode.LONG


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price_interval", D("0"), "greater than zero"),
        ("price_interval", D("-2"), "greater than zero"),
        ("price_interval", D("NaN"), "finite"),
        ("price_interval", 2.0, "must be a Decimal"),
        ("order_notional", D("0"), "greater than zero"),
        ("order_notional", "30", "must be a Decimal"),
        ("min_order_value", D("-1"), "not be negative"),
        ("buy_window", 0, "at least 1"),
        ("sell_window", 0, "at least 1"),
        ("max_open_orders", 0, "at least 1"),
        ("buy_window", True, "must be an int"),
        ("trail_hysteresis", -1, "at least 0"),
        ("post_only_max_rejects", -1, "at least 0"),
        ("margin_lock_ms", -5, "at least 0"),
        ("cancel_retry_ms", 0, "at least 1"),
        ("mode", "long", "GridMode"),
        ("agent", "", "no '-'"),
        ("agent", "grid-1", "no '-'"),
        ("agent", "grid 1", "no '-'"),
        ("client_id_prefix", "x ABC", "only letters"),
        ("client_id_prefix", "x+", "only letters"),
    ],
)
def test_invalid_parameter_is_refused_with_its_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(GridConfigError) as info:
        make_config(**{field: value})
    assert info.value.field == field
    assert message in str(info.value)
    assert field in str(info.value)


def test_config_is_frozen() -> None:
    config = make_config()
    with pytest.raises(AttributeError):
        config.buy_window = 5  # type: ignore[misc]


def test_strategy_refuses_interval_off_the_tick_grid() -> None:
    coarse = Instrument(
        venue="v",
        symbol="X",
        market_type=MarketType.SPOT,
        base="X",
        quote="USDT",
        tick_size=D("0.5"),
        step_size=D("1"),
    )
    with pytest.raises(GridConfigError, match="not a multiple"):
        Strategy(make_config(price_interval=D("1.25")), coarse)


def test_strategy_refuses_restored_anchor_off_tick() -> None:
    with pytest.raises(GridConfigError, match="anchor"):
        Strategy(make_config(), ETH, anchor=D("3000.005"))


def test_widen_interval_uses_atr_when_wider() -> None:
    assert widen_interval(D("2"), atr=D("5.003"), volatility_scale=D("0.5"), tick_size=D("0.01")) == D("2.51")


def test_widen_interval_never_narrows() -> None:
    assert widen_interval(D("2"), atr=D("1"), volatility_scale=D("1"), tick_size=D("0.01")) == D("2")


def test_widen_interval_refuses_negative_atr() -> None:
    with pytest.raises(GridConfigError, match="atr"):
        widen_interval(D("2"), atr=D("-1"), volatility_scale=D("1"), tick_size=D("0.01"))


def test_grid_config_accepts_worked_example() -> None:
    config = GridConfig(
        price_interval=Decimal("2"),
        order_notional=Decimal("30"),
        buy_window=3,
        sell_window=3,
        max_open_orders=6,
        min_order_value=Decimal("6"),
    )
    assert config.agent == "grid"


def test_average_true_range_takes_gaps_from_the_previous_close() -> None:
    # (high, low, close): the second bar's range is 2 (from the previous close 10 it is also 2),
    # the third gaps down (range 1, from the previous close 10.5: 10.5 - 6 = 4.5)
    bars = [(D("11"), D("9"), D("10")), (D("12"), D("10"), D("10.5")), (D("7"), D("6"), D("6.5"))]
    assert average_true_range(bars, 2) == (D("2") + D("4.5")) / 2
    assert average_true_range(bars, 1) == D("4.5")  # only the latest bar


def test_average_true_range_needs_one_more_bar_than_its_period() -> None:
    bars = [(D("11"), D("9"), D("10")), (D("12"), D("10"), D("10.5"))]
    with pytest.raises(GridConfigError, match="needs 3 candles, got 2"):
        average_true_range(bars, 2)
    with pytest.raises(GridConfigError, match="atr_period"):
        average_true_range(bars, 0)


def test_a_grid_keeps_the_interval_its_slots_in_use_were_laid_on() -> None:
    kept = starting_interval(
        D("2"), stored=D("3.5"), in_use=True, atr=D("10"), volatility_scale=D("1"), tick_size=D("0.01")
    )
    assert kept == D("3.5")  # not the ATR's 10, nor the configured 2
    # slots from before any interval was stored were laid on the configured one
    assert starting_interval(
        D("2"), stored=None, in_use=True, atr=None, volatility_scale=D("1"), tick_size=D("0.01")
    ) == D("2")


def test_a_grid_with_no_slot_in_use_starts_on_the_configured_interval_widened_by_the_atr() -> None:
    fresh = {"stored": D("3.5"), "in_use": False, "tick_size": D("0.01")}
    assert starting_interval(D("2"), atr=D("5.003"), volatility_scale=D("0.5"), **fresh) == D("2.51")
    assert starting_interval(D("2"), atr=D("1"), volatility_scale=D("1"), **fresh) == D("2")  # never narrower
    assert starting_interval(D("2"), atr=None, volatility_scale=D("1"), **fresh) == D("2")  # no history
    assert starting_interval(D("2"), atr=D("9"), volatility_scale=D("0"), **fresh) == D("2")  # off
