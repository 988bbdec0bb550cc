"""Equity curve, max drawdown and peak exposure, exact and cheap per candle.

Between two changes of the account (a fill, a fee, a funding payment), equity is linear in the
price: ``E(p) = cash + position * p``. The tracker keeps that pair as Decimals and, per candle,
only integer price units: the highest and lowest close of the stretch and the largest fall from
a running high (or rise from a running low, for a short). When the account changes, the stretch
is closed in Decimal arithmetic, which gives the exact max drawdown over candle closes without a
Decimal operation per candle.

The tracker also remembers the last close it saw: the run's final equity is the equity there
(:attr:`EquityTracker.final_equity`), and :meth:`EquityTracker.finish` ends the sampled curve on
it. The matching core's last price is no substitute: candles on the fast path never reach the
core, so its last price is that of the last candle that took the slow path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from opensqt.backtest.prices import PriceScale
from opensqt.model.money import ZERO

__all__ = ["EquityTracker"]


class EquityTracker:
    """Tracks equity at candle closes (see the module docstring).

    Args:
        scale: price units.
        sample_every_ms: keep one equity sample per this much time (for the curve).
    """

    __slots__ = (
        "_active",
        "_cash",
        "_high",
        "_last_close",
        "_low",
        "_position",
        "_sign",
        "_swing",
        "_swing_top",
        "last_ms",
        "max_drawdown",
        "max_drawdown_peak",
        "next_sample_ms",
        "peak",
        "peak_exposure",
        "sample_every_ms",
        "samples",
        "scale",
    )

    def __init__(self, scale: PriceScale, sample_every_ms: int) -> None:
        self.scale = scale
        self.sample_every_ms = max(1, sample_every_ms)
        self.next_sample_ms = 0
        self.peak: Decimal | None = None
        self.max_drawdown = ZERO
        self.max_drawdown_peak = ZERO
        self.peak_exposure = ZERO
        self.samples: list[tuple[int, str]] = []
        self._cash = ZERO
        self._position = ZERO
        self._sign = 0
        self._high = 0
        self._low = 0
        self._swing = 0  # largest adverse move from a running extreme, in units
        self._swing_top = 0  # the running extreme where that move began
        self._active = False
        self.last_ms: int | None = None
        """Time of the last close observed (None before the first)."""
        self._last_close = 0

    def rebase(self, cash: Decimal, position: Decimal) -> None:
        """The account changed: close the stretch and start one with ``E(p) = cash + position*p``."""
        self._close()
        self._cash = cash
        self._position = position
        self._sign = (position > 0) - (position < 0)
        self._active = False

    def observe(self, time_ms: int, close: int) -> None:
        """One candle close, in units."""
        self.last_ms = time_ms
        self._last_close = close
        if not self._active:
            self._active = True
            self._high = self._low = close
            self._swing = 0
            self._swing_top = close
        elif close > self._high:
            self._high = close
        elif close < self._low:
            self._low = close
        sign = self._sign
        if sign > 0:
            swing = self._high - close
            if swing > self._swing:
                self._swing = swing
                self._swing_top = self._high
        elif sign < 0:
            swing = close - self._low
            if swing > self._swing:
                self._swing = swing
                self._swing_top = self._low
        if time_ms >= self.next_sample_ms:
            self.next_sample_ms = time_ms + self.sample_every_ms
            self.samples.append((time_ms, str(self.equity_at(close))))

    def equity_at(self, close: int) -> Decimal:
        return self._cash + self._position * self.scale.to_decimal(close)

    @property
    def final_equity(self) -> Decimal | None:
        """Equity at the last close observed, with the account as it is now (None before any)."""
        return None if self.last_ms is None else self.equity_at(self._last_close)

    def finish(self) -> None:
        """Close the last stretch and end the curve at the final equity (call before reading the
        results)."""
        self._close()
        self._active = False
        last_ms = self.last_ms
        if last_ms is None:
            return
        point = (last_ms, str(self.equity_at(self._last_close)))
        if self.samples and self.samples[-1][0] == last_ms:
            self.samples[-1] = point
        else:
            self.samples.append(point)

    @property
    def max_drawdown_fraction(self) -> Decimal:
        """The max drawdown as a fraction of the peak it fell from."""
        if self.max_drawdown_peak <= 0:
            return ZERO
        return self.max_drawdown / self.max_drawdown_peak

    def _close(self) -> None:
        if not self._active:
            return
        to_decimal = self.scale.to_decimal
        high = self._cash + self._position * to_decimal(self._high)
        low = self._cash + self._position * to_decimal(self._low)
        top, bottom = (high, low) if self._sign >= 0 else (low, high)
        if self.peak is not None and self.peak - bottom > self.max_drawdown:
            self.max_drawdown = self.peak - bottom
            self.max_drawdown_peak = self.peak
        if self._sign:
            inside = abs(self._position) * to_decimal(self._swing)
            if inside > self.max_drawdown:
                self.max_drawdown = inside
                self.max_drawdown_peak = self._cash + self._position * to_decimal(self._swing_top)
        if self.peak is None or top > self.peak:
            self.peak = top
        exposure = abs(self._position) * to_decimal(self._high)
        if exposure > self.peak_exposure:
            self.peak_exposure = exposure

    def to_state(self) -> dict[str, Any]:
        return {
            "cash": str(self._cash),
            "position": str(self._position),
            "stretch": [self._active, self._high, self._low, self._swing, self._swing_top],
            "next_sample_ms": self.next_sample_ms,
            "last": None if self.last_ms is None else [self.last_ms, self._last_close],
            "peak": None if self.peak is None else str(self.peak),
            "max_drawdown": str(self.max_drawdown),
            "max_drawdown_peak": str(self.max_drawdown_peak),
            "peak_exposure": str(self.peak_exposure),
            "samples": [list(sample) for sample in self.samples],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._cash = Decimal(state["cash"])
        self._position = Decimal(state["position"])
        self._sign = (self._position > 0) - (self._position < 0)
        self._active, self._high, self._low, self._swing, self._swing_top = state["stretch"]
        self.next_sample_ms = state["next_sample_ms"]
        last = state.get("last")
        self.last_ms, self._last_close = (None, 0) if last is None else (int(last[0]), int(last[1]))
        self.peak = None if state["peak"] is None else Decimal(state["peak"])
        self.max_drawdown = Decimal(state["max_drawdown"])
        self.max_drawdown_peak = Decimal(state["max_drawdown_peak"])
        self.peak_exposure = Decimal(state["peak_exposure"])
        self.samples = [(int(time_ms), str(value)) for time_ms, value in state["samples"]]
