"""Maker and taker fee rates of a market."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["FeeSchedule"]


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates as fractions of the notional (``0.0002`` = 0.02%).

    A resting order that is filled later pays ``maker``; an order that fills on arrival pays
    ``taker``. Negative rates (rebates) are allowed.
    """

    maker: Decimal = Decimal("0.0002")
    taker: Decimal = Decimal("0.0005")

    def __post_init__(self) -> None:
        for name, rate in (("maker", self.maker), ("taker", self.taker)):
            if not isinstance(rate, Decimal) or not rate.is_finite() or not -1 < rate < 1:
                raise ValueError(f"{name} fee rate must be a finite Decimal in (-1, 1), got {rate!r}")

    def fee(self, notional: Decimal, *, maker: bool) -> Decimal:
        """The fee of a fill of ``notional`` quote units."""
        return notional * (self.maker if maker else self.taker)
