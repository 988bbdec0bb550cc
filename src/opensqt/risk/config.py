"""Validated, immutable configuration for the risk rules (crash detection, liquidation guard).

Every field is checked when the config is built, so a bad value fails at start-up with the field's
name instead of quietly changing what the rules do. Money and ratios are ``Decimal``; a float is
refused rather than converted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from opensqt.model import TradingStateKind

__all__ = [
    "DEFAULT_CRASH_ASSETS",
    "DEFAULT_CRASH_SYMBOLS",
    "CrashConfig",
    "LiquidationConfig",
    "RiskConfigError",
    "TriggerMode",
    "interval_to_ms",
]

DEFAULT_CRASH_ASSETS: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP", "DOGE")
"""The assets the crash detector watches by default (behaviour.md section 4)."""

DEFAULT_CRASH_SYMBOLS: tuple[str, ...] = tuple(f"{asset}USDT" for asset in DEFAULT_CRASH_ASSETS)
"""Their candle symbols: the detector matches ``Candle.symbol`` exactly, so assets become USDT pairs."""

_INTERVAL_RE = re.compile(r"^([1-9]\d*)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class RiskConfigError(ValueError):
    """A risk setting is out of range. ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TriggerMode(StrEnum):
    """How many monitored symbols must panic for the crash detector to trigger."""

    ALL = "all"
    """Every monitored symbol panics at once (see :attr:`CrashConfig.coincidence_candles`)."""
    ANY = "any"
    """One panicking symbol is enough."""


def interval_to_ms(interval: str) -> int:
    """Length of a candle interval such as ``"1m"``, ``"5m"``, ``"1h"`` or ``"1d"`` in milliseconds.

    Raises:
        RiskConfigError: the interval is not ``<positive int><s|m|h|d|w>`` (months are refused:
            they have no fixed length).
    """
    match = _INTERVAL_RE.match(interval)
    if match is None:
        raise RiskConfigError("interval", f"{interval!r} is not like '1m', '5m', '1h' or '1d'")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _require_decimal(field: str, value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise RiskConfigError(field, f"must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise RiskConfigError(field, f"must be finite, got {value}")
    return value


def _require_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RiskConfigError(field, f"must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise RiskConfigError(field, f"must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class CrashConfig:
    """Settings of the crash detector (behaviour.md section 4, "Crash detection").

    Attributes:
        symbols: the monitored candle symbols, matched exactly against ``Candle.symbol``.
        interval: the candle interval that is evaluated; candles of other intervals are ignored.
        average_window: how many previous closed candles the price and volume averages span.
        volume_multiplier: a panic needs ``volume > average volume * volume_multiplier``.
        min_drawdown: a panic needs ``close <= highest high * (1 - min_drawdown)``; ``0`` turns
            the magnitude condition off (the Go original's rule).
        drawdown_lookback: how many candles, the current one included, the highest high spans.
        trigger_mode: ``ALL`` (every monitored symbol at once) or ``ANY``.
        coincidence_candles: in ``ALL`` mode, "at once" means that the latest panic candles of
            all monitored symbols have open times within ``coincidence_candles`` consecutive
            candle slots, i.e. ``max(open) - min(open) < coincidence_candles * interval``.
            ``1`` (the default) means the same open time.
        recovery_threshold: how many symbols must look calm again to end a crash; capped at
            the number of monitored symbols.
        trigger_state: the trading state a crash asks for: ``REDUCING`` (default) or ``HALTED``.
    """

    symbols: tuple[str, ...] = DEFAULT_CRASH_SYMBOLS
    interval: str = "1m"
    average_window: int = 20
    volume_multiplier: Decimal = Decimal(3)
    min_drawdown: Decimal = Decimal("0.03")
    drawdown_lookback: int = 60
    trigger_mode: TriggerMode = TriggerMode.ALL
    coincidence_candles: int = 1
    recovery_threshold: int = 3
    trigger_state: TradingStateKind = TradingStateKind.REDUCING

    def __post_init__(self) -> None:
        if not isinstance(self.symbols, tuple) or not self.symbols:
            raise RiskConfigError("symbols", "must be a non-empty tuple of symbols")
        for symbol in self.symbols:
            if not isinstance(symbol, str) or not symbol or symbol != symbol.strip():
                raise RiskConfigError("symbols", f"{symbol!r} is not a symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise RiskConfigError("symbols", f"lists a symbol twice: {self.symbols}")
        interval_to_ms(self.interval)
        _require_int("average_window", self.average_window, 1)
        multiplier = _require_decimal("volume_multiplier", self.volume_multiplier)
        if multiplier <= 0:
            raise RiskConfigError("volume_multiplier", f"must be greater than zero, got {multiplier}")
        drawdown = _require_decimal("min_drawdown", self.min_drawdown)
        if not Decimal(0) <= drawdown < 1:
            raise RiskConfigError("min_drawdown", f"must be in [0, 1), got {drawdown}")
        _require_int("drawdown_lookback", self.drawdown_lookback, 1)
        if not isinstance(self.trigger_mode, TriggerMode):
            raise RiskConfigError("trigger_mode", f"must be a TriggerMode, got {self.trigger_mode!r}")
        _require_int("coincidence_candles", self.coincidence_candles, 1)
        _require_int("recovery_threshold", self.recovery_threshold, 1)
        if self.trigger_state not in (TradingStateKind.REDUCING, TradingStateKind.HALTED):
            raise RiskConfigError("trigger_state", f"must be REDUCING or HALTED, got {self.trigger_state!r}")

    @property
    def interval_ms(self) -> int:
        """The candle interval in milliseconds."""
        return interval_to_ms(self.interval)

    @property
    def effective_recovery_threshold(self) -> int:
        """``recovery_threshold`` capped at the number of monitored symbols."""
        return min(self.recovery_threshold, len(self.symbols))


@dataclass(frozen=True, slots=True)
class LiquidationConfig:
    """Settings of the liquidation guard (behaviour.md section 4, "Liquidation guard").

    Attributes:
        liquidation_threshold: a position whose distance to its liquidation price, as a fraction
            of the mark price, is strictly below this is exited. Default ``0.10`` (10%).
    """

    liquidation_threshold: Decimal = Decimal("0.10")

    def __post_init__(self) -> None:
        threshold = _require_decimal("liquidation_threshold", self.liquidation_threshold)
        if not Decimal(0) < threshold < 1:
            raise RiskConfigError("liquidation_threshold", f"must be in (0, 1), got {threshold}")
