"""Prices as integers: the backtest's hot loop compares integer price units, not Decimals.

A :class:`PriceScale` with ``decimals`` d counts prices in units of ``10**-d``; the instrument's
tick is a whole number of units. Parsing a CSV price straight into units is exact and several
times faster than building a ``Decimal``; a Decimal is made only when a price reaches the
strategy or the matching core.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["PriceScale", "UnitParseError", "decimals_of", "parse_units"]


class UnitParseError(ValueError):
    """A text is not a plain non-negative decimal number on the scale."""


def decimals_of(text: str) -> int:
    """Significant decimals of a plain decimal string (trailing zeros do not count)."""
    _, dot, fraction = text.partition(".")
    return len(fraction.rstrip("0")) if dot else 0


def parse_units(text: str, decimals: int) -> int:
    """``text`` (``"29572.90"``) as an integer count of ``10**-decimals``.

    Raises:
        UnitParseError: not a plain non-negative decimal (signs, exponents, NaN, blanks), or
            more significant decimals than the scale holds.
    """
    whole, dot, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdigit()):
        raise UnitParseError(f"{text!r} is not a non-negative decimal number")
    if not dot:
        return int(whole) * int(10**decimals)
    if not (fraction.isascii() and fraction.isdigit()):
        raise UnitParseError(f"{text!r} is not a non-negative decimal number")
    significant = fraction.rstrip("0")
    if len(significant) > decimals:
        raise UnitParseError(f"{text!r} has more than {decimals} decimals")
    return int(whole) * int(10**decimals) + (int(significant.ljust(decimals, "0")) if decimals else 0)


@dataclass(frozen=True, slots=True)
class PriceScale:
    """Integer price units of ``10**-decimals``; the tick is ``tick_units`` of them."""

    decimals: int
    tick_units: int = 1

    @classmethod
    def for_tick(cls, tick_size: Decimal) -> PriceScale:
        """The coarsest scale on which ``tick_size`` is a whole number of units."""
        exponent = tick_size.normalize().as_tuple().exponent
        if not isinstance(exponent, int):
            raise ValueError(f"tick size {tick_size} is not finite")
        decimals = max(0, -exponent)
        return cls(decimals, int(tick_size.scaleb(decimals)))

    @property
    def tick_size(self) -> Decimal:
        return Decimal(self.tick_units).scaleb(-self.decimals)

    def to_decimal(self, units: int) -> Decimal:
        """Exact Decimal of ``units`` (carrying the scale's exponent)."""
        return Decimal(units).scaleb(-self.decimals)

    def floor_units(self, price: Decimal) -> int:
        """The largest unit count not above ``price``."""
        return int((price.scaleb(self.decimals)).to_integral_value(rounding="ROUND_FLOOR"))

    def ceil_units(self, price: Decimal) -> int:
        """The smallest unit count not below ``price``."""
        return int((price.scaleb(self.decimals)).to_integral_value(rounding="ROUND_CEILING"))
