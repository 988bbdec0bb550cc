"""A seeded synthetic market: regimes of range, trend and volatility, with crash episodes.

The generator is the backtest's embedded default. The random draws are floats (numpy's PCG64,
seeded); every price is rounded to the tick (half up) into integer units before anything else
sees it, so the output is exact integers and the same seed always gives the same market.

Regimes follow each other at random, each lasting a random time:

* ``range``: mean reversion to the level where the regime began (calm, grid-friendly);
* ``trend_up`` / ``trend_down``: a steady drift of about 2-4% a day;
* ``volatile``: three times the calm volatility, no drift;
* ``crash``: a 10-30% fall within 30-120 minutes on heavy volume, followed by a volatile
  recovery.

Funding every 8 hours follows the trend (positive in up-trends, negative after crashes) and a
spot series trades at a small, noisy discount to the perpetual (the basis), for the arbitrage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from opensqt.backtest.prices import PriceScale
from opensqt.backtest.sources import VOLUME_DECIMALS, Bar, FundingEvent

__all__ = ["SyntheticMarket", "SyntheticSpec", "generate_market"]

_REGIMES = ("range", "trend_up", "trend_down", "volatile", "crash")
_REGIME_WEIGHTS = (0.45, 0.2, 0.2, 0.12, 0.03)
_CALM_SIGMA = 0.0004  # per-minute log-return volatility of a calm market (~0.04%)
_FUNDING_INTERVAL_MS = 8 * 3_600_000


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    """What to generate.

    Attributes:
        seed: the random seed; equal specs give equal markets.
        bars: number of candles.
        interval_ms: candle length (the regime durations are in minutes regardless).
        start_ms: open time of the first candle.
        start_price: first open.
        tick_size: price grid.
        volatility: multiplier on the calm per-minute volatility (0.04%).
        crash_weight: relative frequency of crash regimes (0 for none).
    """

    seed: int = 7
    bars: int = 43_200
    interval_ms: int = 60_000
    start_ms: int = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    start_price: Decimal = Decimal(30000)
    tick_size: Decimal = Decimal("0.1")
    volatility: float = 1.0
    crash_weight: float = 0.03

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise ValueError(f"bars must be at least 1, got {self.bars}")
        if self.interval_ms < 1:
            raise ValueError(f"interval_ms must be positive, got {self.interval_ms}")
        if self.start_price <= 0 or self.tick_size <= 0 or self.start_price < self.tick_size * 100:
            raise ValueError("start_price must be positive and at least 100 ticks")
        if not self.volatility > 0 or not self.crash_weight >= 0:
            raise ValueError("volatility must be positive and crash_weight not negative")


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """A generated market: perpetual and spot candles, funding events and the regime timeline."""

    spec: SyntheticSpec
    scale: PriceScale
    perp_bars: list[Bar]
    spot_bars: list[Bar]
    funding: list[FundingEvent]
    regimes: list[tuple[int, str]]  # (first bar index, regime)


def _regime_length(rng: np.random.Generator, name: str) -> int:
    if name == "range":
        return int(rng.integers(6 * 60, 3 * 1440))
    if name in ("trend_up", "trend_down"):
        return int(rng.integers(6 * 60, 2 * 1440))
    if name == "volatile":
        return int(rng.integers(2 * 60, 12 * 60))
    return int(rng.integers(30, 120))


def _next_regime(rng: np.random.Generator, name: str, deviation: float, crash_weight: float) -> str:
    """The regime after ``name``; trends lean back towards the start price (``deviation`` is the
    log distance from it), so a long market wanders without drifting away for good."""
    if name == "crash":
        return "volatile"
    weights = np.array(
        [
            _REGIME_WEIGHTS[0],
            _REGIME_WEIGHTS[1] * math.exp(-2 * deviation),
            _REGIME_WEIGHTS[2] * math.exp(2 * deviation),
            _REGIME_WEIGHTS[3],
            crash_weight,
        ]
    )
    return _REGIMES[int(rng.choice(len(_REGIMES), p=weights / weights.sum()))]


def generate_market(spec: SyntheticSpec | None = None, *, with_spot: bool = True) -> SyntheticMarket:
    """Generate the market described by ``spec`` (deterministic for a given spec).

    ``with_spot=False`` skips building the spot candles (the grid needs only the perpetual).
    """
    spec = spec or SyntheticSpec()
    rng = np.random.default_rng(spec.seed)
    bars = spec.bars
    base = _CALM_SIGMA * spec.volatility
    shocks = rng.standard_normal(bars)
    wick_high = np.abs(rng.standard_normal(bars))
    wick_low = np.abs(rng.standard_normal(bars))
    volume_noise = rng.standard_normal(bars)
    basis_noise = rng.standard_normal(bars)
    shock_list = shocks.tolist()

    # regime by regime; the log price path needs the previous value, so a plain float loop
    start_log = math.log(float(spec.start_price))
    log_price = start_log
    closes_log = [0.0] * bars
    sigma_list = [base] * bars
    boost_list = [1.0] * bars
    segments: list[tuple[int, int, str]] = []
    name = "range"
    start = 0
    while start < bars:
        end = min(bars, start + _regime_length(rng, name))
        drift, sigma, revert, boost = 0.0, base, 0.0, 1.0
        if name == "range":
            revert = 0.002
        elif name == "trend_up":
            drift = float(rng.uniform(0.02, 0.04)) / 1440
        elif name == "trend_down":
            drift = -float(rng.uniform(0.02, 0.04)) / 1440
        elif name == "volatile":
            sigma, boost = base * 3, 2.0
        else:
            drift = math.log(1 - float(rng.uniform(0.10, 0.30))) / (end - start)
            sigma, boost = base * 6, 8.0
        level = log_price
        for index in range(start, end):
            log_price += drift + sigma * shock_list[index] - revert * (log_price - level)
            closes_log[index] = log_price
            sigma_list[index] = sigma
            boost_list[index] = boost
        segments.append((start, end, name))
        start = end
        name = _next_regime(rng, name, log_price - start_log, spec.crash_weight)

    sigma_arr = np.array(sigma_list)
    closes = np.exp(np.array(closes_log))
    opens = np.empty(bars)
    opens[0] = float(spec.start_price)
    opens[1:] = closes[:-1]
    highs = np.maximum(opens, closes) * np.exp(wick_high * sigma_arr * 0.6)
    lows = np.minimum(opens, closes) * np.exp(-wick_low * sigma_arr * 0.6)
    volumes = 40.0 * np.exp(0.5 * volume_noise) * np.array(boost_list) * (1 + np.abs(shocks) / 2)

    scale = PriceScale.for_tick(spec.tick_size)
    perp = _to_bars(spec, scale, opens, highs, lows, closes, volumes)
    # spot trades at a noisy discount: perp / (1 + basis), basis around +3 bp, wider when volatile
    basis = 0.0003 + 0.0002 * basis_noise * (sigma_arr / base)
    factor = 1 + basis
    spot = (
        _to_bars(spec, scale, opens / factor, highs / factor, lows / factor, closes / factor, volumes)
        if with_spot
        else []
    )
    return SyntheticMarket(
        spec=spec,
        scale=scale,
        perp_bars=perp,
        spot_bars=spot,
        funding=_funding(spec, rng, closes, segments),
        regimes=[(start, name) for start, _, name in segments],
    )


def _to_bars(
    spec: SyntheticSpec,
    scale: PriceScale,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volumes: np.ndarray,
) -> list[Bar]:
    per_tick = 10**scale.decimals / scale.tick_units

    def units(prices: np.ndarray) -> np.ndarray:
        ticks = np.floor(prices * per_tick + 0.5).astype(np.int64)
        result: np.ndarray = np.maximum(ticks, 1) * scale.tick_units
        return result

    open_u, close_u = units(opens), units(closes)
    high_u = np.maximum(units(highs), np.maximum(open_u, close_u))
    low_u = np.minimum(units(lows), np.minimum(open_u, close_u))
    volume_u = np.floor(volumes * 10**VOLUME_DECIMALS + 0.5).astype(np.int64)
    times = spec.start_ms + np.arange(len(opens), dtype=np.int64) * spec.interval_ms
    return list(
        zip(
            times.tolist(),
            open_u.tolist(),
            high_u.tolist(),
            low_u.tolist(),
            close_u.tolist(),
            volume_u.tolist(),
            strict=True,
        )
    )


def _funding(
    spec: SyntheticSpec, rng: np.random.Generator, closes: np.ndarray, segments: list[tuple[int, int, str]]
) -> list[FundingEvent]:
    """Funding every 8 h from the first 00:00/08:00/16:00 after the start: about 0.01% per
    period, higher after a rise, lower after a fall, and negative after a crash."""
    end_ms = spec.start_ms + spec.bars * spec.interval_ms
    first = -(-spec.start_ms // _FUNDING_INTERVAL_MS) * _FUNDING_INTERVAL_MS
    crashes = [(start, end) for start, end, name in segments if name == "crash"]
    events: list[FundingEvent] = []
    time_ms = first
    while time_ms < end_ms:
        bar = min(spec.bars - 1, (time_ms - spec.start_ms) // spec.interval_ms)
        lookback = max(0, bar - 480)
        change = math.log(float(closes[bar]) / float(closes[lookback]))  # over the last 8 h
        rate = 0.0001 + change * 0.01 + float(rng.normal(0, 0.00004))
        if any(start <= bar and end > lookback for start, end in crashes):
            rate -= 0.0005
        rate = min(0.003, max(-0.003, rate))
        events.append(FundingEvent(time_ms, Decimal(math.floor(rate * 1e8 + 0.5)).scaleb(-8)))
        time_ms += _FUNDING_INTERVAL_MS
    return events
