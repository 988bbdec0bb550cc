"""Crash detection: the RiskMonitor rule of behaviour.md section 4, as a pure state machine.

:class:`CrashDetector` is fed closed candles, one at a time and in any interleaving of symbols,
and answers with a :class:`CrashDecision` when the market crashes or recovers. It performs
nothing: no I/O, no clock, no publishing. The risk service applies the decision (sets the trading
state, publishes the alert).

The rule, per closed candle of a monitored symbol, with averages over the previous
``average_window`` closed candles of that symbol (the current candle is not part of them):

- below average: ``close < average close``;
- volume spike: ``volume > average volume * volume_multiplier``;
- deep drawdown: ``close <= highest high * (1 - min_drawdown)``, where the highest high spans the
  last ``drawdown_lookback`` candles **including the current one** (a candle that spikes and dumps
  within its own minute counts; with fewer candles of history, all of them are used).

The symbol *panics* when all three hold. A symbol with fewer than ``average_window`` previous
candles cannot panic. In ``ANY`` mode one panic triggers a crash; in ``ALL`` mode every monitored
symbol must panic "at once": their latest panic candles' open times differ by less than
``coincidence_candles`` intervals (by default: the same open time). A crash is a state: after one
trigger, the detector waits for recovery before it can trigger again. Recovery is at least
``recovery_threshold`` (capped at the number of symbols) symbols whose latest closed candle is
*calm*: ``close > average close`` and ``volume < average volume * volume_multiplier``.

Candles are counted, not timed: a gap in a feed is not filled, so "the previous 20 candles" are
the previous 20 received for that symbol. A candle whose open time is not after the last one seen
for its symbol (a duplicate or out-of-order candle) is ignored and counted.

Each candle costs O(1) amortised: rolling ``Decimal`` sums over deques for the averages and a
monotonic deque for the highest high. The comparisons are done without division, in a wide
decimal context, so they are exact for any realistic price and volume.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal

from opensqt.model import (
    AlertKind,
    AlertSeverity,
    Candle,
    RiskAlert,
    TradingStateKind,
)
from opensqt.risk.config import CrashConfig, TriggerMode

__all__ = ["CrashDecision", "CrashDetector", "CrashDetectorStats", "SymbolReading"]

# Wide enough that sums of a window of prices or volumes, and their products with small integers,
# are exact: adding and multiplying Decimals in the default 28-digit context could round.
_EXACT = Context(prec=80)


@dataclass(frozen=True, slots=True)
class SymbolReading:
    """How one closed candle of one symbol scored against the rule.

    ``average_close`` and ``average_volume`` are ``None`` while the symbol is warming up (fewer
    than ``average_window`` previous candles); a warming-up reading is neither panicked nor calm.

    Attributes:
        symbol: the candle's symbol.
        open_ms: the candle's open time.
        close: the candle's close.
        volume: the candle's volume.
        average_close: mean close of the previous ``average_window`` candles.
        average_volume: mean volume of the previous ``average_window`` candles.
        highest_high: highest high of the last ``drawdown_lookback`` candles, this one included.
        below_average: ``close < average_close``.
        volume_spike: ``volume > average_volume * volume_multiplier``.
        deep_drawdown: ``close <= highest_high * (1 - min_drawdown)``.
        calm: ``close > average_close`` and ``volume < average_volume * volume_multiplier``.
    """

    symbol: str
    open_ms: int
    close: Decimal
    volume: Decimal
    average_close: Decimal | None
    average_volume: Decimal | None
    highest_high: Decimal
    below_average: bool
    volume_spike: bool
    deep_drawdown: bool
    calm: bool

    @property
    def warmed_up(self) -> bool:
        """True once the symbol had ``average_window`` previous candles."""
        return self.average_close is not None

    @property
    def panicked(self) -> bool:
        """True when all three panic conditions hold (never during warm-up)."""
        return self.warmed_up and self.below_average and self.volume_spike and self.deep_drawdown

    @property
    def drawdown(self) -> Decimal:
        """How far the close is below the highest high, as a fraction of that high."""
        return (self.highest_high - self.close) / self.highest_high if self.highest_high > 0 else Decimal(0)


@dataclass(frozen=True, slots=True)
class CrashDecision:
    """What the detector asks the risk service to do; it has done none of it.

    Attributes:
        kind: ``AlertKind.CRASH`` (a crash was detected) or ``AlertKind.RECOVERY``.
        trading_state: the trading state to move to: the configured ``trigger_state``
            (``REDUCING`` or ``HALTED``) on a crash, ``ACTIVE`` on recovery.
        alert: the alert to publish; ``alert.resulting_state`` equals ``trading_state``.
        open_ms: open time of the candle that decided it.
        readings: the latest reading of every monitored symbol that has one, in config order.
    """

    kind: AlertKind
    trading_state: TradingStateKind
    alert: RiskAlert
    open_ms: int
    readings: tuple[SymbolReading, ...]


@dataclass(frozen=True, slots=True)
class CrashDetectorStats:
    """Counters of what the detector has seen.

    Attributes:
        evaluated: closed candles of monitored symbols that were scored.
        stale_ignored: duplicate or out-of-order candles (open time not after the last seen).
        unmonitored_ignored: candles of other symbols or other intervals.
        open_ignored: candles still forming (``closed`` is False).
        panics: scored candles that panicked.
        triggers: crash decisions returned.
        recoveries: recovery decisions returned.
    """

    evaluated: int = 0
    stale_ignored: int = 0
    unmonitored_ignored: int = 0
    open_ignored: int = 0
    panics: int = 0
    triggers: int = 0
    recoveries: int = 0


class _SymbolWindow:
    """Rolling history of one symbol: the averaging window and the highest-high window."""

    __slots__ = (
        "_average_window",
        "_close_sum",
        "_closes",
        "_count",
        "_highs",
        "_lookback",
        "_volume_sum",
        "_volumes",
        "last_open_ms",
        "last_panic_ms",
        "last_reading",
    )

    def __init__(self, average_window: int, lookback: int) -> None:
        self._average_window = average_window
        self._lookback = lookback
        self._closes: deque[Decimal] = deque()
        self._volumes: deque[Decimal] = deque()
        self._close_sum = Decimal(0)
        self._volume_sum = Decimal(0)
        # (candle index, high), highs strictly decreasing from left to right.
        self._highs: deque[tuple[int, Decimal]] = deque()
        self._count = 0
        self.last_open_ms: int | None = None
        self.last_panic_ms: int | None = None
        self.last_reading: SymbolReading | None = None

    def score(self, candle: Candle, config: CrashConfig) -> SymbolReading:
        """Score ``candle`` against the previous candles, then add it to the history."""
        highest_high = self._push_high(candle.high)
        window = self._average_window
        if len(self._closes) < window:
            reading = SymbolReading(
                symbol=candle.symbol,
                open_ms=candle.open_ms,
                close=candle.close,
                volume=candle.volume,
                average_close=None,
                average_volume=None,
                highest_high=highest_high,
                below_average=False,
                volume_spike=False,
                deep_drawdown=False,
                calm=False,
            )
        else:
            scaled_close = _EXACT.multiply(candle.close, window)
            scaled_volume = _EXACT.multiply(candle.volume, window)
            volume_limit = _EXACT.multiply(self._volume_sum, config.volume_multiplier)
            drawdown_limit = _EXACT.multiply(highest_high, _EXACT.subtract(Decimal(1), config.min_drawdown))
            reading = SymbolReading(
                symbol=candle.symbol,
                open_ms=candle.open_ms,
                close=candle.close,
                volume=candle.volume,
                average_close=self._close_sum / window,
                average_volume=self._volume_sum / window,
                highest_high=highest_high,
                below_average=scaled_close < self._close_sum,
                volume_spike=scaled_volume > volume_limit,
                deep_drawdown=candle.close <= drawdown_limit,
                calm=scaled_close > self._close_sum and scaled_volume < volume_limit,
            )
        self._push_average(candle.close, candle.volume)
        self.last_open_ms = candle.open_ms
        self.last_reading = reading
        if reading.panicked:
            self.last_panic_ms = candle.open_ms
        return reading

    def _push_high(self, high: Decimal) -> Decimal:
        index = self._count
        self._count += 1
        highs = self._highs
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((index, high))
        while highs[0][0] <= index - self._lookback:
            highs.popleft()
        return highs[0][1]

    def _push_average(self, close: Decimal, volume: Decimal) -> None:
        self._closes.append(close)
        self._volumes.append(volume)
        self._close_sum = _EXACT.add(self._close_sum, close)
        self._volume_sum = _EXACT.add(self._volume_sum, volume)
        if len(self._closes) > self._average_window:
            self._close_sum = _EXACT.subtract(self._close_sum, self._closes.popleft())
            self._volume_sum = _EXACT.subtract(self._volume_sum, self._volumes.popleft())


class CrashDetector:
    """The crash-detection rule (behaviour.md section 4) as a pure, incremental state machine.

    Feed every candle to :meth:`on_candle`; it returns a :class:`CrashDecision` when a crash is
    detected or, once crashed, when the market has recovered, and ``None`` otherwise. Candles of
    unmonitored symbols, of another interval or still forming are ignored (and counted).
    """

    def __init__(self, config: CrashConfig | None = None) -> None:
        self._config = config if config is not None else CrashConfig()
        self._interval_ms = self._config.interval_ms
        self._windows = {
            symbol: _SymbolWindow(self._config.average_window, self._config.drawdown_lookback)
            for symbol in self._config.symbols
        }
        self._crashed = False
        self._evaluated = 0
        self._stale_ignored = 0
        self._unmonitored_ignored = 0
        self._open_ignored = 0
        self._panics = 0
        self._triggers = 0
        self._recoveries = 0

    @property
    def config(self) -> CrashConfig:
        """The configuration this detector applies."""
        return self._config

    @property
    def crashed(self) -> bool:
        """True between a crash decision and the following recovery decision."""
        return self._crashed

    @property
    def stats(self) -> CrashDetectorStats:
        """A snapshot of the counters."""
        return CrashDetectorStats(
            evaluated=self._evaluated,
            stale_ignored=self._stale_ignored,
            unmonitored_ignored=self._unmonitored_ignored,
            open_ignored=self._open_ignored,
            panics=self._panics,
            triggers=self._triggers,
            recoveries=self._recoveries,
        )

    def latest_reading(self, symbol: str) -> SymbolReading | None:
        """The reading of ``symbol``'s latest scored candle, or ``None`` if it has none."""
        window = self._windows.get(symbol)
        return window.last_reading if window is not None else None

    def on_candle(self, candle: Candle) -> CrashDecision | None:
        """Score one candle and return the decision it causes, if any."""
        window = self._windows.get(candle.symbol)
        if window is None or candle.interval != self._config.interval:
            self._unmonitored_ignored += 1
            return None
        if not candle.closed:
            self._open_ignored += 1
            return None
        if window.last_open_ms is not None and candle.open_ms <= window.last_open_ms:
            self._stale_ignored += 1
            return None
        self._evaluated += 1
        was_crashed = self._crashed
        reading = window.score(candle, self._config)
        if reading.panicked:
            self._panics += 1
        if not was_crashed:
            if reading.panicked and self._crash_confirmed():
                return self._trigger(candle)
            return None
        if self._calm_count() >= self._config.effective_recovery_threshold:
            return self._recover(candle)
        return None

    def _crash_confirmed(self) -> bool:
        """Called on a panicking candle: does the trigger mode's condition hold now?"""
        if self._config.trigger_mode is TriggerMode.ANY:
            return True
        panic_times: list[int] = []
        for window in self._windows.values():
            if window.last_panic_ms is None:
                return False
            panic_times.append(window.last_panic_ms)
        return max(panic_times) - min(panic_times) < self._config.coincidence_candles * self._interval_ms

    def _calm_count(self) -> int:
        return sum(
            1
            for window in self._windows.values()
            if window.last_reading is not None and window.last_reading.calm
        )

    def _readings(self) -> tuple[SymbolReading, ...]:
        readings = (window.last_reading for window in self._windows.values())
        return tuple(reading for reading in readings if reading is not None)

    def _trigger(self, candle: Candle) -> CrashDecision:
        self._crashed = True
        self._triggers += 1
        readings = self._readings()
        panicked = tuple(reading for reading in readings if reading.panicked)
        state = self._config.trigger_state
        details = "; ".join(_describe(reading) for reading in panicked)
        alert = RiskAlert(
            alert_id=f"crash-{self._triggers}-{candle.open_ms}",
            kind=AlertKind.CRASH,
            severity=AlertSeverity.CRITICAL,
            message=(
                f"crash detected on the {self._config.interval} candle opening {_utc(candle.open_ms)} "
                f"(mode {self._config.trigger_mode.value}): {details}; trading state -> {state.value}"
            ),
            symbols=tuple(reading.symbol for reading in panicked),
            created_ms=candle.open_ms + self._interval_ms,
            resulting_state=state,
        )
        return CrashDecision(AlertKind.CRASH, state, alert, candle.open_ms, readings)

    def _recover(self, candle: Candle) -> CrashDecision:
        self._crashed = False
        self._recoveries += 1
        readings = self._readings()
        calm = tuple(reading.symbol for reading in readings if reading.calm)
        state = TradingStateKind.ACTIVE
        alert = RiskAlert(
            alert_id=f"recovery-{self._recoveries}-{candle.open_ms}",
            kind=AlertKind.RECOVERY,
            severity=AlertSeverity.INFO,
            message=(
                f"market recovered on the {self._config.interval} candle opening {_utc(candle.open_ms)}: "
                f"{', '.join(calm)} closed above average on normal volume; trading state -> {state.value}"
            ),
            symbols=calm,
            created_ms=candle.open_ms + self._interval_ms,
            resulting_state=state,
        )
        return CrashDecision(AlertKind.RECOVERY, state, alert, candle.open_ms, readings)


def _utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def _describe(reading: SymbolReading) -> str:
    return (
        f"{reading.symbol} close {reading.close} below average {_short(reading.average_close)}, "
        f"volume {reading.volume} vs average {_short(reading.average_volume)}, "
        f"{_short(reading.drawdown * 100)}% below high {reading.highest_high}"
    )


def _short(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    return f"{value.quantize(Decimal('0.01')):f}" if value.adjusted() < 20 else f"{value:f}"
