"""The synthetic market: deterministic, on tick, consistent candles, regimes, funding."""

from __future__ import annotations

import itertools
from decimal import Decimal

from opensqt.backtest.synthetic import SyntheticSpec, generate_market


def test_same_seed_gives_the_same_market_and_another_seed_another() -> None:
    spec = SyntheticSpec(bars=3000, seed=5)
    first, second = generate_market(spec), generate_market(spec)
    assert first.perp_bars == second.perp_bars
    assert first.spot_bars == second.spot_bars
    assert first.funding == second.funding
    assert generate_market(SyntheticSpec(bars=3000, seed=6)).perp_bars != first.perp_bars


def test_candles_are_on_tick_consistent_and_continuous() -> None:
    market = generate_market(SyntheticSpec(bars=20_000, seed=9, tick_size=Decimal("0.5"), crash_weight=0.3))
    tick_units = market.scale.tick_units
    previous_close = None
    for _time_ms, open_, high, low, close, volume in market.perp_bars:
        assert all(price % tick_units == 0 and price > 0 for price in (open_, high, low, close))
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert volume > 0
        if previous_close is not None:
            assert open_ == previous_close
        previous_close = close
    assert [bar[0] for bar in market.perp_bars[:2]] == [1_704_067_200_000, 1_704_067_260_000]


def test_regimes_include_crashes_and_funding_comes_every_eight_hours() -> None:
    market = generate_market(SyntheticSpec(bars=60 * 24 * 30, seed=2, crash_weight=0.3))
    assert {name for _, name in market.regimes} >= {"range", "crash", "volatile"}
    times = [event.time_ms for event in market.funding]
    assert {b - a for a, b in itertools.pairwise(times)} == {8 * 3_600_000}
    assert all(Decimal("-0.003") <= event.rate <= Decimal("0.003") for event in market.funding)


def test_spot_trades_close_to_the_perpetual() -> None:
    market = generate_market(SyntheticSpec(bars=2000, seed=4))
    for spot, perp in zip(market.spot_bars, market.perp_bars, strict=True):
        assert abs(spot[4] - perp[4]) / perp[4] < 0.01
