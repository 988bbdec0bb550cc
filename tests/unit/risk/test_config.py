"""Risk configuration is validated when it is built."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from opensqt.model import TradingStateKind
from opensqt.risk import CrashConfig, LiquidationConfig, RiskConfigError, interval_to_ms


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbols", ()),
        ("symbols", ("BTCUSDT", "BTCUSDT")),
        ("symbols", ("BTCUSDT", "")),
        ("symbols", ["BTCUSDT"]),
        ("interval", "1M"),
        ("interval", "0m"),
        ("interval", "minute"),
        ("average_window", 0),
        ("average_window", True),
        ("volume_multiplier", Decimal(0)),
        ("volume_multiplier", 3.0),
        ("volume_multiplier", Decimal("NaN")),
        ("min_drawdown", Decimal("-0.01")),
        ("min_drawdown", Decimal(1)),
        ("min_drawdown", 0.03),
        ("drawdown_lookback", 0),
        ("trigger_mode", "all"),
        ("coincidence_candles", 0),
        ("recovery_threshold", 0),
        ("trigger_state", TradingStateKind.ACTIVE),
    ],
)
def test_crash_config_refuses_bad_values_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(RiskConfigError) as raised:
        CrashConfig(**{field: value})
    assert raised.value.field == field


@pytest.mark.parametrize("value", [Decimal(0), Decimal(1), Decimal("-0.1"), 0.1])
def test_liquidation_threshold_must_be_a_fraction(value: Any) -> None:
    with pytest.raises(RiskConfigError, match="liquidation_threshold"):
        LiquidationConfig(liquidation_threshold=value)


def test_liquidation_threshold_default_is_ten_percent() -> None:
    assert LiquidationConfig().liquidation_threshold == Decimal("0.10")


@pytest.mark.parametrize(
    ("interval", "ms"), [("1s", 1_000), ("1m", 60_000), ("5m", 300_000), ("4h", 14_400_000)]
)
def test_interval_to_ms(interval: str, ms: int) -> None:
    assert interval_to_ms(interval) == ms


def test_recovery_threshold_is_capped_at_the_symbol_count() -> None:
    assert CrashConfig(symbols=("A", "B")).effective_recovery_threshold == 2
    assert CrashConfig().effective_recovery_threshold == 3
