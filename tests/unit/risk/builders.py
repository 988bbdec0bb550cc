"""Hand-built candle series for the crash-detector tests."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from opensqt.model import Candle
from opensqt.risk import CrashDecision, CrashDetector

BASE_MS = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
MINUTE_MS = 60_000


def minute(index: int) -> int:
    """Open time of the ``index``-th one-minute candle of a test series."""
    return BASE_MS + index * MINUTE_MS


def candle(
    symbol: str,
    index: int,
    close: Decimal | int | str,
    volume: Decimal | int | str = 10,
    *,
    high: Decimal | int | str | None = None,
    low: Decimal | int | str | None = None,
    interval: str = "1m",
    closed: bool = True,
) -> Candle:
    """A candle opening at ``minute(index)``; open equals close unless high/low say otherwise."""
    close_ = Decimal(close)
    high_ = Decimal(high) if high is not None else close_
    low_ = Decimal(low) if low is not None else min(close_, high_)
    return Candle(
        symbol=symbol,
        interval=interval,
        open_ms=minute(index),
        open=close_,
        high=max(high_, close_),
        low=low_,
        close=close_,
        volume=Decimal(volume),
        closed=closed,
    )


def flat_history(
    symbol: str, count: int, *, start: int = 0, close: int = 100, volume: int = 10
) -> list[Candle]:
    """``count`` identical quiet candles: close 100, volume 10 (averages 100 and 10)."""
    return [candle(symbol, start + offset, close, volume) for offset in range(count)]


def feed(detector: CrashDetector, candles: Iterable[Candle]) -> list[CrashDecision]:
    """Feed ``candles`` in order and return every decision the detector made."""
    return [decision for item in candles if (decision := detector.on_candle(item)) is not None]
