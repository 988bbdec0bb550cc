"""Candles and 24-hour statistics built from the prices the paper venue sees."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.money import ZERO

__all__ = ["INTERVALS_MS", "Candle", "CandleBook", "DayStats"]

_MINUTE = 60_000
INTERVALS_MS = {
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": 60 * _MINUTE,
    "2h": 120 * _MINUTE,
    "4h": 240 * _MINUTE,
    "6h": 360 * _MINUTE,
    "8h": 480 * _MINUTE,
    "12h": 720 * _MINUTE,
    "1d": 1440 * _MINUTE,
    "3d": 3 * 1440 * _MINUTE,
    "1w": 7 * 1440 * _MINUTE,
}


@dataclass(slots=True)
class Candle:
    """An OHLCV candle (``volume`` in base units, ``quote_volume`` in quote units)."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0

    def add(self, price: Decimal, volume: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        if volume:
            self.volume += volume
            self.quote_volume += volume * price
            self.trades += 1


@dataclass(frozen=True, slots=True)
class DayStats:
    """Rolling 24-hour statistics of a market."""

    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    open_ms: int
    close_ms: int


class CandleBook:
    """One-minute candles of one market (the last ``keep_minutes``); longer intervals are
    aggregated on request."""

    def __init__(self, keep_minutes: int = 10_080) -> None:
        self._minutes: deque[Candle] = deque(maxlen=keep_minutes)

    @property
    def latest_ms(self) -> int | None:
        """The open time of the newest minute (the market's time), ``None`` before any price."""
        return self._minutes[-1].open_ms if self._minutes else None

    def reset(self) -> None:
        """Forget every candle (the next price starts the history)."""
        self._minutes.clear()

    def on_price(self, time_ms: int, price: Decimal, volume: Decimal = ZERO) -> Candle:
        """Record a price (and traded volume) at ``time_ms``; returns the current minute."""
        open_ms = time_ms - time_ms % _MINUTE
        last = self._minutes[-1] if self._minutes else None
        if last is not None and open_ms < last.open_ms:
            # The market's time went back (a replay restarted from its first bar): the history
            # is that of another market now; keep no candle that would look newer than it.
            self._minutes.clear()
            last = None
        if last is None or open_ms > last.open_ms:
            last = Candle(open_ms, price, price, price, price)
            self._minutes.append(last)
        last.add(price, volume)
        return last

    def current(self, interval_ms: int) -> Candle | None:
        """The latest candle of ``interval_ms`` (aggregated), ``None`` before the first price."""
        if not self._minutes:
            return None
        latest = self._minutes[-1].open_ms
        return self.candles(interval_ms, start_ms=latest - latest % interval_ms, end_ms=None, limit=1)[-1]

    def _since(self, start_ms: int | None) -> list[Candle]:
        """The minutes from ``start_ms`` on, oldest first (scanning back from the newest)."""
        if start_ms is None:
            return list(self._minutes)
        recent: list[Candle] = []
        for minute in reversed(self._minutes):
            if minute.open_ms < start_ms:
                break
            recent.append(minute)
        recent.reverse()
        return recent

    def candles(
        self, interval_ms: int, *, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        """Candles of ``interval_ms`` whose open time is in ``[start_ms, end_ms]``: the first
        ``limit`` from ``start_ms``, or the last ``limit`` when no start is given."""
        first_minute = None if start_ms is None else start_ms - start_ms % interval_ms
        merged: list[Candle] = []
        for minute in self._since(first_minute):
            open_ms = minute.open_ms - minute.open_ms % interval_ms
            if (start_ms is not None and open_ms < start_ms) or (end_ms is not None and open_ms > end_ms):
                continue
            if merged and merged[-1].open_ms == open_ms:
                current = merged[-1]
                current.high = max(current.high, minute.high)
                current.low = min(current.low, minute.low)
                current.close = minute.close
                current.volume += minute.volume
                current.quote_volume += minute.quote_volume
                current.trades += minute.trades
            else:
                merged.append(
                    Candle(
                        open_ms,
                        minute.open,
                        minute.high,
                        minute.low,
                        minute.close,
                        minute.volume,
                        minute.quote_volume,
                        minute.trades,
                    )
                )
        return merged[:limit] if start_ms is not None else merged[-limit:]

    def day_stats(self, now_ms: int) -> DayStats | None:
        """Statistics of the minutes that opened in the 24 hours up to the market's latest
        minute (the market's own time: a replay runs ahead of or behind the wall clock)."""
        market_now = self._minutes[-1].open_ms + _MINUTE - 1 if self._minutes else now_ms
        window = self._since(market_now - 1441 * _MINUTE + 1)
        if not window:
            if not self._minutes:
                return None
            window = [self._minutes[-1]]
        return DayStats(
            open=window[0].open,
            high=max(minute.high for minute in window),
            low=min(minute.low for minute in window),
            last=window[-1].close,
            volume=sum((minute.volume for minute in window), ZERO),
            quote_volume=sum((minute.quote_volume for minute in window), ZERO),
            trades=sum(minute.trades for minute in window),
            open_ms=window[0].open_ms,
            close_ms=now_ms,
        )
