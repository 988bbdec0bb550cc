"""Grid market-maker parameters, validated once at construction."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from opensqt.model.money import ZERO, round_to_step

__all__ = [
    "GridConfig",
    "GridConfigError",
    "GridMode",
    "average_true_range",
    "opening_qty",
    "starting_interval",
    "widen_interval",
]

# Agent names sit between ``-`` separators in client order ids, so they may not contain ``-``.
_AGENT_RE = re.compile(r"[.A-Za-z0-9:/_]+")
# Anything the Binance client order id regex ``^[\.A-Z\:/a-z0-9_-]{1,36}$`` accepts.
_PREFIX_RE = re.compile(r"[.A-Za-z0-9:/_-]*")


class GridConfigError(ValueError):
    """A grid parameter is missing, malformed or out of range."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"grid config {field}: {message}")


class GridMode(StrEnum):
    """``long`` opens with BUYs below the price only; ``neutral`` also opens with SELLs above it."""

    LONG = "long"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class GridConfig:
    """Parameters of one grid agent (behaviour.md §1).

    Attributes:
        price_interval: the absolute distance I between grid levels; must be a multiple of the
            instrument's tick size (checked by :class:`opensqt.grid.Strategy`).
        order_notional: quote amount per opening order; qty = notional / level price, rounded half
            away from zero to the step (:func:`opening_qty`).
        buy_window: number of opening levels kept working (k = 0 ... buy_window - 1 from the centre).
            In neutral mode the same window applies to the opening SELLs above the price.
        sell_window: a filled slot gets its close when it is at most this many intervals above
            the price (mirrored below the price for short slots).
        max_open_orders: the order budget: working orders (opening and closing) never exceed it.
        min_order_value: smallest quote value of any order this agent places.
        mode: long or neutral.
        trail_hysteresis: extra levels below the window before a trailing buy is cancelled.
        post_only_max_rejects: after this many post-only rejections on a slot, its opening orders
            are sent without post-only.
        margin_lock_ms: after a margin / insufficient-funds error, place nothing this long.
        cancel_retry_ms: a cancel that is not confirmed is requested again after this long.
        client_id_prefix: prepended to every client order id (e.g. a broker tag).
        agent: the agent's name inside client order ids; letters, digits and ``._:/`` only.
        client_id_price_digits: digits reserved for the slot price (in ticks) when checking
            at construction that client order ids fit the venue's length limit.
        client_id_cycle_digits: digits reserved for the cycle counter in the same check.
    """

    price_interval: Decimal
    order_notional: Decimal
    buy_window: int
    sell_window: int
    max_open_orders: int
    min_order_value: Decimal = ZERO
    mode: GridMode = GridMode.LONG
    trail_hysteresis: int = 1
    post_only_max_rejects: int = 3
    margin_lock_ms: int = 60_000
    cancel_retry_ms: int = 5_000
    client_id_prefix: str = ""
    agent: str = "grid"
    client_id_price_digits: int = 8
    client_id_cycle_digits: int = 6

    def __post_init__(self) -> None:
        _require_decimal("price_interval", self.price_interval, positive=True)
        _require_decimal("order_notional", self.order_notional, positive=True)
        _require_decimal("min_order_value", self.min_order_value, positive=False)
        _require_int("buy_window", self.buy_window, minimum=1)
        _require_int("sell_window", self.sell_window, minimum=1)
        _require_int("max_open_orders", self.max_open_orders, minimum=1)
        _require_int("trail_hysteresis", self.trail_hysteresis, minimum=0)
        _require_int("post_only_max_rejects", self.post_only_max_rejects, minimum=0)
        _require_int("margin_lock_ms", self.margin_lock_ms, minimum=0)
        _require_int("cancel_retry_ms", self.cancel_retry_ms, minimum=1)
        _require_int("client_id_price_digits", self.client_id_price_digits, minimum=1)
        _require_int("client_id_cycle_digits", self.client_id_cycle_digits, minimum=1)
        if not isinstance(self.mode, GridMode):
            raise GridConfigError("mode", f"must be a GridMode (long or neutral), got {self.mode!r}")
        if not isinstance(self.agent, str) or not _AGENT_RE.fullmatch(self.agent):
            raise GridConfigError(
                "agent", f"must be non-empty letters, digits or '._:/' (no '-'), got {self.agent!r}"
            )
        if not isinstance(self.client_id_prefix, str) or not _PREFIX_RE.fullmatch(self.client_id_prefix):
            raise GridConfigError(
                "client_id_prefix",
                f"may hold only letters, digits and '._:/-', got {self.client_id_prefix!r}",
            )


def opening_qty(order_notional: Decimal, level: Decimal, step_size: Decimal) -> Decimal:
    """An opening order's quantity at ``level`` (behaviour.md §1): ``order_notional / level``,
    rounded half away from zero to the step, like every rounding of the spec. So the order's
    value is within half a step of the notional, on either side (30 at 3002 is 0.010, not the
    0.009 that rounding down gives, 10% short)."""
    return round_to_step(order_notional / level, step_size, mode="nearest")


def widen_interval(
    price_interval: Decimal, atr: Decimal, volatility_scale: Decimal, tick_size: Decimal
) -> Decimal:
    """Return the grid interval widened for volatility: ``max(I, ATR * scale)`` rounded up to tick.

    The interval never narrows below the configured one. Call it when a grid is (re)started:
    slots are keyed by level prices, so the interval must not change while slots are in use.
    """
    _require_decimal("price_interval", price_interval, positive=True)
    _require_decimal("atr", atr, positive=False)
    _require_decimal("volatility_scale", volatility_scale, positive=False)
    widened = round_to_step(atr * volatility_scale, tick_size, mode="up")
    base = round_to_step(price_interval, tick_size, mode="up")
    return max(base, widened)


def average_true_range(bars: Sequence[tuple[Decimal, Decimal, Decimal]], period: int) -> Decimal:
    """The average true range over the last ``period`` bars: the mean of their true ranges, each
    ``max(high - low, |high - previous close|, |low - previous close|)``. ``bars`` are
    ``(high, low, close)``, oldest first; ``period + 1`` of them are needed (the first gives the
    previous close).

    Raises:
        GridConfigError: ``period`` below 1, or fewer than ``period + 1`` bars.
    """
    _require_int("atr_period", period, minimum=1)
    if len(bars) < period + 1:
        raise GridConfigError("candles", f"an ATR over {period} needs {period + 1} candles, got {len(bars)}")
    recent = bars[-(period + 1) :]
    total = ZERO
    for (_, _, previous_close), (high, low, _) in itertools.pairwise(recent):
        total += max(high - low, abs(high - previous_close), abs(low - previous_close))
    return total / period


def starting_interval(
    price_interval: Decimal,
    *,
    stored: Decimal | None,
    in_use: bool,
    atr: Decimal | None,
    volatility_scale: Decimal,
    tick_size: Decimal,
) -> Decimal:
    """The interval a grid (re)starts with (behaviour.md §1: I, optionally widened by ATR *
    ``volatility_scale``).

    Slots are keyed by level prices laid on the interval, so while any slot is in use (a working
    order or inventory) the grid keeps the interval it ran with (``stored``; the configured one
    when none was stored), whatever the configuration says now. Otherwise the configured
    interval, widened by :func:`widen_interval` when an ATR is known and the scale is above 0.
    """
    if in_use:
        return stored if stored is not None else price_interval
    if atr is not None and volatility_scale > 0:
        return widen_interval(price_interval, atr, volatility_scale, tick_size)
    return price_interval


def _require_decimal(field: str, value: object, *, positive: bool) -> None:
    if not isinstance(value, Decimal):
        raise GridConfigError(field, f"must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise GridConfigError(field, f"must be finite, got {value}")
    if positive and value <= 0:
        raise GridConfigError(field, f"must be greater than zero, got {value}")
    if not positive and value < 0:
        raise GridConfigError(field, f"must not be negative, got {value}")


def _require_int(field: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GridConfigError(field, f"must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise GridConfigError(field, f"must be at least {minimum}, got {value}")
