"""The crash-detection rule of behaviour.md section 4, pinned condition by condition.

The baseline series is 20 quiet candles (close 100, volume 10), so the averages are 100 and 10,
the volume threshold is 30 and a close of 97 or lower is at least 3% below the highest high (100).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from opensqt.model import AlertKind, AlertSeverity, Candle, TradingStateKind
from opensqt.risk import CrashConfig, CrashDetector, TriggerMode
from tests.unit.risk.builders import candle, feed, flat_history, minute

BTC = "BTCUSDT"
ETH = "ETHUSDT"
SOL = "SOLUSDT"


def one_symbol(**overrides: Any) -> CrashDetector:
    return CrashDetector(CrashConfig(symbols=(BTC,), **overrides))


def scored(detector: CrashDetector, *candles: Candle) -> bool:
    """Feed the candles and say whether the last one panicked."""
    for item in candles:
        detector.on_candle(item)
    reading = detector.latest_reading(BTC)
    assert reading is not None
    return reading.panicked


def test_defaults_follow_the_spec() -> None:
    config = CrashConfig()
    assert config.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")
    assert config.interval == "1m"
    assert config.average_window == 20
    assert config.volume_multiplier == Decimal(3)
    assert config.min_drawdown == Decimal("0.03")
    assert config.drawdown_lookback == 60
    assert config.trigger_mode is TriggerMode.ALL
    assert config.coincidence_candles == 1
    assert config.recovery_threshold == 3
    assert config.trigger_state is TradingStateKind.REDUCING


def test_crash_candle_with_all_three_conditions_panics_and_triggers() -> None:
    detector = one_symbol()
    decisions = feed(detector, [*flat_history(BTC, 20), candle(BTC, 20, 96, 40)])

    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.kind is AlertKind.CRASH
    assert decision.trading_state is TradingStateKind.REDUCING
    assert decision.open_ms == minute(20)
    assert decision.alert.kind is AlertKind.CRASH
    assert decision.alert.severity is AlertSeverity.CRITICAL
    assert decision.alert.symbols == (BTC,)
    assert decision.alert.resulting_state is TradingStateKind.REDUCING
    assert decision.alert.created_ms == minute(21)
    assert "BTCUSDT" in decision.alert.message
    assert detector.crashed


@pytest.mark.parametrize(
    ("close", "volume", "panics"),
    [
        pytest.param(96, 40, True, id="all-three-hold"),
        pytest.param(97, 40, True, id="drawdown-exactly-3pct-counts"),
        pytest.param("97.01", 40, False, id="drawdown-just-under-3pct"),
        pytest.param(98, 40, False, id="drawdown-too-small"),
        pytest.param(96, 30, False, id="volume-exactly-3x-is-not-a-spike"),
        pytest.param(96, "30.01", True, id="volume-just-over-3x"),
        pytest.param(96, 20, False, id="volume-too-low"),
    ],
)
def test_each_condition_is_required(close: int | str, volume: int | str, panics: bool) -> None:
    detector = one_symbol()
    assert scored(detector, *flat_history(BTC, 20), candle(BTC, 20, close, volume)) is panics


def test_close_not_below_average_does_not_panic_despite_spike_and_drawdown() -> None:
    # An earlier wick to 110 makes a close of 100 9% below the high; volume spikes; but the close
    # equals the average, so it is not below it.
    history = [candle(BTC, 0, 100, 10, high=110), *flat_history(BTC, 19, start=1)]
    detector = one_symbol()
    assert scored(detector, *history, candle(BTC, 20, 100, 40)) is False
    reading = detector.latest_reading(BTC)
    assert reading is not None
    assert (reading.below_average, reading.volume_spike, reading.deep_drawdown) == (False, True, True)


def test_close_just_below_average_with_spike_and_drawdown_panics() -> None:
    history = [candle(BTC, 0, 100, 10, high=110), *flat_history(BTC, 19, start=1)]
    assert scored(one_symbol(), *history, candle(BTC, 20, "99.99", 40)) is True


def test_averages_exclude_the_current_candle() -> None:
    # Over the previous 20 candles the volume average is 10, so 32 is a spike (> 30). Were the
    # current candle included, the average would be (19 * 10 + 32) / 20 = 11.1 and 32 < 33.3.
    detector = one_symbol()
    assert scored(detector, *flat_history(BTC, 20), candle(BTC, 20, 96, 32)) is True
    reading = detector.latest_reading(BTC)
    assert reading is not None
    assert reading.average_volume == Decimal(10)
    assert reading.average_close == Decimal(100)


def test_averages_roll_over_the_previous_window_only() -> None:
    # 5 loud candles (volume 100) followed by 20 quiet ones: the loud ones have left the window,
    # so a volume of 40 is a spike again.
    loud = [candle(BTC, index, 100, 100) for index in range(5)]
    quiet = flat_history(BTC, 20, start=5)
    detector = one_symbol()
    assert scored(detector, *loud, *quiet, candle(BTC, 25, 96, 40)) is True


def test_symbol_with_fewer_than_average_window_candles_cannot_panic() -> None:
    detector = one_symbol()
    assert scored(detector, *flat_history(BTC, 19), candle(BTC, 19, 50, 1000)) is False
    reading = detector.latest_reading(BTC)
    assert reading is not None
    assert not reading.warmed_up
    assert detector.stats.triggers == 0


def test_symbol_panics_on_the_first_candle_after_warm_up() -> None:
    assert scored(one_symbol(), *flat_history(BTC, 20), candle(BTC, 20, 50, 1000)) is True


def test_drawdown_lookback_includes_the_current_candle() -> None:
    # The current candle wicks to 103 and closes at 99.5: 3.4% below its own high, but only 0.5%
    # below the previous highs. It panics because the lookback includes the current candle.
    detector = one_symbol()
    assert scored(detector, *flat_history(BTC, 20), candle(BTC, 20, "99.5", 40, high=103)) is True
    reading = detector.latest_reading(BTC)
    assert reading is not None
    assert reading.highest_high == Decimal(103)


def test_highest_high_forgets_candles_older_than_the_lookback() -> None:
    config = {"average_window": 3, "drawdown_lookback": 5}
    history = [candle(BTC, 0, 100, 10, high=120), *flat_history(BTC, 3, start=1)]

    within = one_symbol(**config)
    # Candle 4: the lookback is candles 0..4, so the 120 high still counts.
    assert scored(within, *history, candle(BTC, 4, 99, 40)) is True

    beyond = one_symbol(**config)
    # Candle 5: the lookback is candles 1..5, so the highest high is 100 and 99 is only 1% below.
    assert scored(beyond, *history, candle(BTC, 4, 100, 10), candle(BTC, 5, 99, 40)) is False
    reading = beyond.latest_reading(BTC)
    assert reading is not None
    assert reading.highest_high == Decimal(100)


def test_min_drawdown_zero_restores_the_go_rule() -> None:
    # A 0.5% dip on triple volume is no crash under the spec's defaults, but is under the Go rule.
    series = [*flat_history(BTC, 20), candle(BTC, 20, "99.5", 40)]
    assert scored(one_symbol(), *series) is False
    assert scored(one_symbol(min_drawdown=Decimal(0)), *series) is True


def two_symbols(mode: TriggerMode, **overrides: Any) -> CrashDetector:
    return CrashDetector(CrashConfig(symbols=(BTC, ETH), trigger_mode=mode, **overrides))


def warm_pair(count: int = 20) -> list[Candle]:
    return [item for index in range(count) for item in (candle(BTC, index, 100), candle(ETH, index, 100))]


def test_any_mode_triggers_when_one_symbol_panics() -> None:
    detector = two_symbols(TriggerMode.ANY)
    decisions = feed(detector, [*warm_pair(), candle(BTC, 20, 96, 40), candle(ETH, 20, 100)])
    assert [decision.alert.symbols for decision in decisions] == [(BTC,)]


def test_all_mode_ignores_a_single_panicking_symbol() -> None:
    detector = two_symbols(TriggerMode.ALL)
    decisions = feed(detector, [*warm_pair(), candle(BTC, 20, 96, 40), candle(ETH, 20, 100)])
    assert decisions == []
    assert detector.stats.panics == 1


def test_all_mode_triggers_when_every_symbol_panics_on_the_same_candle() -> None:
    detector = two_symbols(TriggerMode.ALL)
    decisions = feed(detector, [*warm_pair(), candle(BTC, 20, 96, 40), candle(ETH, 20, 95, 50)])
    assert len(decisions) == 1
    assert decisions[0].alert.symbols == (BTC, ETH)
    assert decisions[0].open_ms == minute(20)


def test_all_mode_needs_panics_on_the_same_open_time_by_default() -> None:
    detector = two_symbols(TriggerMode.ALL)
    series = [
        *warm_pair(),
        candle(BTC, 20, 96, 40),
        candle(ETH, 20, 100),
        candle(BTC, 21, 96),
        candle(ETH, 21, 95, 50),
    ]
    assert feed(detector, series) == []


def test_all_mode_coincidence_window_accepts_panics_on_adjacent_candles() -> None:
    detector = two_symbols(TriggerMode.ALL, coincidence_candles=2)
    series = [
        *warm_pair(),
        candle(BTC, 20, 96, 40),
        candle(ETH, 20, 100),
        candle(BTC, 21, 96),
        candle(ETH, 21, 95, 50),
    ]
    decisions = feed(detector, series)
    assert len(decisions) == 1
    assert decisions[0].open_ms == minute(21)


def test_all_mode_coincidence_window_rejects_panics_further_apart() -> None:
    detector = two_symbols(TriggerMode.ALL, coincidence_candles=2)
    series = [
        *warm_pair(),
        candle(BTC, 20, 96, 40),
        candle(ETH, 20, 100),
        candle(BTC, 21, 96),
        candle(ETH, 21, 100),
        candle(BTC, 22, 96),
        candle(ETH, 22, 95, 50),
    ]
    assert feed(detector, series) == []


def test_all_mode_accepts_feeds_arriving_out_of_step() -> None:
    # ETH's minute-20 panic arrives before BTC's; what matters is the candles' open times.
    detector = two_symbols(TriggerMode.ALL)
    series = [*warm_pair(), candle(ETH, 20, 95, 50), candle(BTC, 20, 96, 40)]
    assert len(feed(detector, series)) == 1


def test_trigger_state_can_be_halted() -> None:
    detector = one_symbol(trigger_state=TradingStateKind.HALTED)
    (decision,) = feed(detector, [*flat_history(BTC, 20), candle(BTC, 20, 96, 40)])
    assert decision.trading_state is TradingStateKind.HALTED
    assert decision.alert.resulting_state is TradingStateKind.HALTED


def test_a_crash_triggers_once_until_recovery() -> None:
    detector = one_symbol()
    series = [
        *flat_history(BTC, 20),
        candle(BTC, 20, 96, 40),
        candle(BTC, 21, 90, 100),
        candle(BTC, 22, 85, 200),
    ]
    decisions = feed(detector, series)
    assert [decision.kind for decision in decisions] == [AlertKind.CRASH]
    assert detector.stats.panics == 3
    assert detector.stats.triggers == 1


def test_recovery_with_one_symbol_needs_one_calm_candle() -> None:
    # recovery_threshold 3 is capped at the single monitored symbol.
    detector = one_symbol()
    feed(detector, [*flat_history(BTC, 20), candle(BTC, 20, 96, 40)])
    # Average close of candles 1..20 is 99.8; 101 is above it; volume 10 is below 3 * 11.5.
    (decision,) = feed(detector, [candle(BTC, 21, 101, 10)])
    assert decision.kind is AlertKind.RECOVERY
    assert decision.trading_state is TradingStateKind.ACTIVE
    assert decision.alert.kind is AlertKind.RECOVERY
    assert decision.alert.resulting_state is TradingStateKind.ACTIVE
    assert decision.alert.symbols == (BTC,)
    assert not detector.crashed


@pytest.mark.parametrize(
    ("close", "volume"),
    [
        pytest.param(99, 10, id="close-below-average"),
        pytest.param(101, 100, id="volume-above-threshold"),
    ],
)
def test_a_candle_that_is_not_calm_does_not_recover(close: int, volume: int) -> None:
    detector = one_symbol()
    feed(detector, [*flat_history(BTC, 20), candle(BTC, 20, 96, 40)])
    assert feed(detector, [candle(BTC, 21, close, volume)]) == []
    assert detector.crashed


def test_recovery_needs_recovery_threshold_calm_symbols() -> None:
    detector = CrashDetector(CrashConfig(symbols=(BTC, ETH, SOL), trigger_mode=TriggerMode.ANY))
    warm = [
        item
        for index in range(20)
        for item in (candle(BTC, index, 100), candle(ETH, index, 100), candle(SOL, index, 100))
    ]
    (crash,) = feed(
        detector, [*warm, candle(BTC, 20, 96, 40), candle(ETH, 20, 96, 40), candle(SOL, 20, 96, 40)]
    )
    assert crash.kind is AlertKind.CRASH

    assert feed(detector, [candle(BTC, 21, 101), candle(ETH, 21, 101)]) == []
    (recovery,) = feed(detector, [candle(SOL, 21, 101)])
    assert recovery.kind is AlertKind.RECOVERY
    assert recovery.alert.symbols == (BTC, ETH, SOL)


def test_recovery_threshold_is_capped_at_the_number_of_symbols() -> None:
    detector = two_symbols(TriggerMode.ALL)
    assert detector.config.effective_recovery_threshold == 2
    feed(detector, [*warm_pair(), candle(BTC, 20, 96, 40), candle(ETH, 20, 95, 50)])
    assert feed(detector, [candle(BTC, 21, 101)]) == []
    (recovery,) = feed(detector, [candle(ETH, 21, 101)])
    assert recovery.kind is AlertKind.RECOVERY


def test_lower_recovery_threshold_recovers_on_fewer_symbols() -> None:
    detector = two_symbols(TriggerMode.ALL, recovery_threshold=1)
    feed(detector, [*warm_pair(), candle(BTC, 20, 96, 40), candle(ETH, 20, 95, 50)])
    (recovery,) = feed(detector, [candle(BTC, 21, 101)])
    assert recovery.kind is AlertKind.RECOVERY


def test_a_new_crash_after_recovery_triggers_again() -> None:
    detector = one_symbol()
    series = [*flat_history(BTC, 20), candle(BTC, 20, 96, 40), candle(BTC, 21, 101, 10)]
    series += flat_history(BTC, 20, start=22)
    series.append(candle(BTC, 42, 96, 40))
    decisions = feed(detector, series)
    assert [decision.kind for decision in decisions] == [AlertKind.CRASH, AlertKind.RECOVERY, AlertKind.CRASH]
    assert [decision.alert.alert_id for decision in decisions] == [
        f"crash-1-{minute(20)}",
        f"recovery-1-{minute(21)}",
        f"crash-2-{minute(42)}",
    ]


def test_duplicate_and_out_of_order_candles_are_ignored_and_counted() -> None:
    detector = one_symbol()
    feed(detector, flat_history(BTC, 21))
    # A "duplicate" of minute 20 that would panic, and an older candle: both ignored.
    assert detector.on_candle(candle(BTC, 20, 50, 1000)) is None
    assert detector.on_candle(candle(BTC, 3, 50, 1000)) is None
    assert detector.stats.stale_ignored == 2
    assert detector.stats.evaluated == 21
    reading = detector.latest_reading(BTC)
    assert reading is not None
    assert reading.open_ms == minute(20)
    assert reading.close == Decimal(100)


def test_duplicates_do_not_shift_the_averages() -> None:
    detector = one_symbol()
    series = [item for item in flat_history(BTC, 20) for _ in range(2)]
    assert scored(detector, *series, candle(BTC, 20, 96, 40)) is True
    assert detector.stats.stale_ignored == 20


def test_unmonitored_other_interval_and_open_candles_are_ignored() -> None:
    detector = one_symbol()
    feed(detector, flat_history(BTC, 20))
    assert detector.on_candle(candle("SOLUSDT", 20, 50, 1000)) is None
    assert detector.on_candle(candle(BTC, 20, 50, 1000, interval="5m")) is None
    assert detector.on_candle(candle(BTC, 20, 50, 1000, closed=False)) is None
    stats = detector.stats
    assert (stats.unmonitored_ignored, stats.open_ignored, stats.evaluated) == (2, 1, 20)
    # The forming candle did not advance the symbol: its closed version is still scored.
    assert detector.on_candle(candle(BTC, 20, 96, 40)) is not None


def test_latest_reading_of_unknown_symbol_is_none() -> None:
    assert one_symbol().latest_reading("NOPE") is None
