"""The equity tracker's exact max drawdown and peak exposure against a brute-force reference."""

from __future__ import annotations

import random
from decimal import Decimal

from opensqt.backtest.equity import EquityTracker
from opensqt.backtest.prices import PriceScale

SCALE = PriceScale(1)


def brute_force(stretches: list[tuple[Decimal, Decimal, list[int]]]) -> tuple[Decimal, Decimal]:
    peak: Decimal | None = None
    drawdown = Decimal(0)
    exposure = Decimal(0)
    for cash, position, closes in stretches:
        for close in closes:
            price = SCALE.to_decimal(close)
            equity = cash + position * price
            peak = equity if peak is None else max(peak, equity)
            drawdown = max(drawdown, peak - equity)
            exposure = max(exposure, abs(position) * price)
    return drawdown, exposure


def test_max_drawdown_and_exposure_match_a_brute_force_over_random_paths() -> None:
    rng = random.Random(3)
    for _ in range(200):
        stretches = []
        for _ in range(rng.randint(1, 6)):
            cash = Decimal(rng.randint(-50_000, 50_000))
            position = Decimal(rng.randint(-30, 30)) / 10
            closes = [rng.randint(9_000, 11_000) for _ in range(rng.randint(1, 20))]
            stretches.append((cash, position, closes))
        tracker = EquityTracker(SCALE, 60_000)
        time_ms = 0
        for cash, position, closes in stretches:
            tracker.rebase(cash, position)
            for close in closes:
                tracker.observe(time_ms, close)
                time_ms += 60_000
        tracker.finish()
        assert (tracker.max_drawdown, tracker.peak_exposure) == brute_force(stretches)


def test_samples_follow_the_sampling_interval() -> None:
    tracker = EquityTracker(SCALE, 120_000)
    tracker.rebase(Decimal(100), Decimal(1))
    for minute in range(5):
        tracker.observe(minute * 60_000, 1000 + minute)
    assert tracker.samples == [(0, "200.0"), (120_000, "200.2"), (240_000, "200.4")]


def test_finish_ends_the_curve_at_the_last_close() -> None:
    tracker = EquityTracker(SCALE, 120_000)
    assert tracker.final_equity is None
    tracker.rebase(Decimal(100), Decimal(1))
    for minute in range(4):
        tracker.observe(minute * 60_000, 1000 + minute)
    tracker.finish()
    assert tracker.final_equity == Decimal("200.3")
    assert tracker.samples == [(0, "200.0"), (120_000, "200.2"), (180_000, "200.3")]
    tracker.finish()  # once only
    assert tracker.samples[-1] == (180_000, "200.3")


def test_finish_replaces_a_sample_taken_before_the_account_changed() -> None:
    tracker = EquityTracker(SCALE, 60_000)
    tracker.rebase(Decimal(100), Decimal(1))
    tracker.observe(0, 1000)
    tracker.rebase(Decimal("99.5"), Decimal(1))  # a fee paid after the close was sampled
    tracker.finish()
    assert tracker.samples == [(0, "199.5")]


def test_the_last_close_survives_a_checkpoint() -> None:
    tracker = EquityTracker(SCALE, 60_000)
    tracker.rebase(Decimal(100), Decimal(2))
    tracker.observe(0, 1000)
    restored = EquityTracker(SCALE, 60_000)
    restored.restore(tracker.to_state())
    assert restored.final_equity == tracker.final_equity == Decimal("300.0")
