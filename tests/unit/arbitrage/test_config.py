"""ArbitrageConfig: defaults, the round-trip fee APR formula, and validation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from opensqt.arbitrage import round_trip_fee_apr
from opensqt.model import MarketType

from . import PERP, SPOT, make_config


def test_defaults_match_the_spec() -> None:
    config = make_config()
    assert config.min_spread_apr == Decimal("0.10")
    assert config.exit_spread_apr == Decimal("0.01")
    assert config.toxic_count == 3
    assert config.liquidation_threshold == Decimal("0.10")
    assert config.use_margin is False


def test_round_trip_fee_apr_pays_both_taker_fees_twice_over_the_holding_period() -> None:
    # 2 * (0.001 + 0.0005) = 0.003 per round trip; over 30 days: 0.003 * 365 / 30 = 0.0365.
    assert round_trip_fee_apr(Decimal("0.001"), Decimal("0.0005"), Decimal(30)) == Decimal("0.0365")
    # Holding a year spreads the same 0.003 over 365 days: 0.003.
    assert round_trip_fee_apr(Decimal("0.001"), Decimal("0.0005"), Decimal(365)) == Decimal("0.003")


def test_entry_threshold_is_min_spread_plus_fee_apr() -> None:
    config = make_config()
    assert config.round_trip_fee_apr == Decimal("0.0365")
    assert config.entry_threshold_apr == Decimal("0.1365")
    free = make_config(spot_taker_fee=Decimal(0), perp_taker_fee=Decimal(0))
    assert free.entry_threshold_apr == Decimal("0.10")


def test_order_size_may_be_a_quote_notional_instead_of_a_base_quantity() -> None:
    config = make_config(order_base_qty=None, order_quote_notional=Decimal("1000"))
    assert config.order_quote_notional == Decimal("1000")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"order_base_qty": None}, "exactly one of order_base_qty and order_quote_notional"),
        ({"order_quote_notional": Decimal(1000)}, "exactly one of order_base_qty and order_quote_notional"),
        ({"order_base_qty": Decimal(0)}, "order size must be greater than zero"),
        ({"min_spread_apr": Decimal(0)}, "min_spread_apr must be greater than zero"),
        ({"exit_spread_apr": Decimal("0.10")}, "exit_spread_apr must be at least 0 and below min_spread_apr"),
        ({"exit_spread_apr": Decimal("-0.01")}, "exit_spread_apr must be at least 0"),
        ({"spot_taker_fee": Decimal("-0.001")}, "spot_taker_fee must be in [0, 1)"),
        ({"perp_taker_fee": Decimal(1)}, "perp_taker_fee must be in [0, 1)"),
        ({"expected_holding_days": Decimal(0)}, "expected_holding_days must be greater than zero"),
        ({"toxic_basis": Decimal("0.01")}, "toxic_basis must be in (-1, 0)"),
        ({"toxic_count": 0}, "toxic_count must be at least 1"),
        ({"toxic_check_interval_ms": -1}, "toxic_check_interval_ms must not be negative"),
        ({"max_data_age_ms": 0}, "max_data_age_ms must be greater than zero"),
        ({"liquidation_threshold": Decimal(1)}, "liquidation_threshold must be in (0, 1)"),
        ({"dust_qty": Decimal(0)}, "dust_qty must be greater than zero"),
        ({"agent": ""}, "agent must be non-empty"),
        ({"agent": "arb 1"}, "agent must be non-empty and use only"),
        ({"agent": "a" * 21}, "at most 20"),
        ({"min_spread_apr": 0.1}, "min_spread_apr must be a finite Decimal"),
        ({"dust_qty": Decimal("NaN")}, "dust_qty must be a finite Decimal"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        make_config(**overrides)
    assert message in str(error.value)


def test_instruments_must_be_a_spot_and_a_perpetual_of_the_same_base_on_distinct_venues() -> None:
    with pytest.raises(ValueError, match="spot instrument must be SPOT or MARGIN"):
        make_config(spot=PERP, perp=PERP)
    with pytest.raises(ValueError, match="perp instrument must be PERPETUAL"):
        make_config(perp=dataclasses.replace(PERP, market_type=MarketType.SPOT))
    with pytest.raises(ValueError, match="spot base 'BTC' and perp base 'ETH' differ"):
        make_config(perp=dataclasses.replace(PERP, base="ETH"))
    with pytest.raises(ValueError, match="spot and perp are both on venue 'binance'"):
        make_config(perp=dataclasses.replace(PERP, venue=SPOT.venue))
    # the same venue with another symbol: legs, fees and prices would be mixed by venue
    with pytest.raises(ValueError, match="spot and perp are both on venue 'binance'"):
        make_config(perp=dataclasses.replace(PERP, venue=SPOT.venue, symbol="BTCUSDT_PERP"))


def test_a_margin_spot_instrument_is_accepted() -> None:
    config = make_config(spot=dataclasses.replace(SPOT, market_type=MarketType.MARGIN))
    assert config.spot.market_type is MarketType.MARGIN


def test_with_spot_fees_in_the_base_asset_dust_must_cover_a_spot_step() -> None:
    coarse = dataclasses.replace(SPOT, step_size=Decimal("0.001"), min_qty=Decimal("0.001"))
    with pytest.raises(ValueError, match=r"dust_qty 0\.0001 must be at least the spot step 0\.001"):
        make_config(spot=coarse, order_base_qty=Decimal("0.1"), spot_fee_in_base=True)
    make_config(spot=coarse, order_base_qty=Decimal("0.1"), spot_fee_in_base=True, dust_qty=Decimal("0.001"))
    make_config(spot=coarse, order_base_qty=Decimal("0.1"))  # fees paid elsewhere: no constraint
