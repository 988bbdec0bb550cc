"""Property tests: the incremental detector agrees with a naive restatement of the rule."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from opensqt.model import Candle
from opensqt.risk import CrashConfig, CrashDetector, TriggerMode
from tests.unit.risk.builders import candle, feed

BTC = "BTCUSDT"
ETH = "ETHUSDT"

# Closes cluster in a narrow band and volumes are small integers so that ties (close equal to the
# average, volume exactly at the threshold, close exactly at the drawdown limit) come up often.
bars = st.lists(
    st.tuples(
        st.integers(min_value=90, max_value=110),  # close
        st.integers(min_value=0, max_value=6),  # high above close
        st.integers(min_value=0, max_value=60),  # volume
    ),
    min_size=1,
    max_size=45,
)
configs = st.builds(
    CrashConfig,
    symbols=st.just((BTC,)),
    average_window=st.integers(min_value=1, max_value=6),
    volume_multiplier=st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(3)]),
    min_drawdown=st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.03")]),
    drawdown_lookback=st.integers(min_value=1, max_value=10),
    trigger_mode=st.just(TriggerMode.ANY),
)


def build(symbol: str, series: list[tuple[int, int, int]]) -> list[Candle]:
    return [
        candle(symbol, index, close, volume, high=close + up)
        for index, (close, up, volume) in enumerate(series)
    ]


def naive_panics(candles: list[Candle], config: CrashConfig) -> list[bool]:
    """The rule restated with plain slices and exact fractions."""
    window = config.average_window
    result = []
    for index, current in enumerate(candles):
        if index < window:
            result.append(False)
            continue
        previous = candles[index - window : index]
        average_close = sum(Fraction(item.close) for item in previous) / window
        average_volume = sum(Fraction(item.volume) for item in previous) / window
        lookback = candles[max(0, index - config.drawdown_lookback + 1) : index + 1]
        highest_high = max(Fraction(item.high) for item in lookback)
        close = Fraction(current.close)
        result.append(
            close < average_close
            and Fraction(current.volume) > average_volume * Fraction(config.volume_multiplier)
            and close <= highest_high * (1 - Fraction(config.min_drawdown))
        )
    return result


@settings(max_examples=150, deadline=None)
@given(series=bars, config=configs)
def test_panics_match_a_naive_restatement_of_the_rule(
    series: list[tuple[int, int, int]], config: CrashConfig
) -> None:
    candles = build(BTC, series)
    detector = CrashDetector(config)
    observed = []
    for item in candles:
        detector.on_candle(item)
        reading = detector.latest_reading(BTC)
        assert reading is not None
        observed.append(reading.panicked)
    assert observed == naive_panics(candles, config)


@settings(max_examples=100, deadline=None)
@given(series=bars, config=configs, data=st.data())
def test_replayed_candles_change_no_decision(
    series: list[tuple[int, int, int]], config: CrashConfig, data: st.DataObject
) -> None:
    candles = build(BTC, series)
    replays = data.draw(
        st.lists(st.integers(min_value=0, max_value=2), min_size=len(candles), max_size=len(candles))
    )
    noisy: list[Candle] = []
    for index, item in enumerate(candles):
        noisy.append(item)
        # Replay this candle or an older one, possibly with different values: all must be ignored.
        for back in range(replays[index]):
            stale = candles[max(0, index - back)]
            noisy.append(candle(BTC, (stale.open_ms - candles[0].open_ms) // 60_000, 50, 10_000))
    plain = feed(CrashDetector(config), candles)
    detector = CrashDetector(config)
    assert feed(detector, noisy) == plain
    assert detector.stats.stale_ignored == sum(replays)


@settings(max_examples=100, deadline=None)
@given(series=bars, config=configs)
def test_all_mode_over_identical_symbols_decides_like_one_symbol(
    series: list[tuple[int, int, int]], config: CrashConfig
) -> None:
    single = feed(CrashDetector(config), build(BTC, series))
    pair_config = CrashConfig(
        symbols=(BTC, ETH),
        average_window=config.average_window,
        volume_multiplier=config.volume_multiplier,
        min_drawdown=config.min_drawdown,
        drawdown_lookback=config.drawdown_lookback,
        trigger_mode=TriggerMode.ALL,
    )
    interleaved = [item for pair in zip(build(BTC, series), build(ETH, series), strict=True) for item in pair]
    paired = feed(CrashDetector(pair_config), interleaved)
    assert [(decision.kind, decision.open_ms) for decision in paired] == [
        (decision.kind, decision.open_ms) for decision in single
    ]
