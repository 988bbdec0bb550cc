"""Instruments carry the exchange's rules: tick size, step size, min quantity, min notional."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.enums import MarketType
from opensqt.model.money import ZERO, round_to_step

__all__ = ["Instrument", "InstrumentRuleError"]


class InstrumentRuleError(ValueError):
    """An order's price or quantity breaks the instrument's rules."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument on one venue.

    Attributes:
        venue: venue id, e.g. ``"binance"`` or ``"paper"``.
        symbol: the venue's symbol id, e.g. ``"BTCUSDT"``.
        market_type: spot, margin or perpetual.
        base: base asset, e.g. ``"BTC"``.
        quote: quote asset, e.g. ``"USDT"``.
        tick_size: price grid.
        step_size: quantity grid.
        min_qty: smallest quantity.
        min_notional: smallest ``price * qty``.
        funding_interval_hours: funding period for perpetuals (0 for spot).
        max_client_order_id_length: the venue's limit on client order ids.
    """

    venue: str
    symbol: str
    market_type: MarketType
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    funding_interval_hours: int = 0
    max_client_order_id_length: int = 36

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise InstrumentRuleError("tick_size", f"must be greater than zero, got {self.tick_size}")
        if self.step_size <= 0:
            raise InstrumentRuleError("step_size", f"must be greater than zero, got {self.step_size}")
        if self.min_qty < 0 or self.min_notional < 0:
            raise InstrumentRuleError("min_qty", "minimums must not be negative")

    def round_price(self, price: Decimal, mode: str = "nearest") -> Decimal:
        """Round a price to the tick (half away from zero by default)."""
        return round_to_step(price, self.tick_size, mode=mode)

    def round_qty(self, qty: Decimal, mode: str = "down") -> Decimal:
        """Round a quantity to the step, towards zero by default (never buy more than asked)."""
        return round_to_step(qty, self.step_size, mode=mode)

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def is_on_step(self, qty: Decimal) -> bool:
        return qty % self.step_size == 0

    def check_order(self, price: Decimal | None, qty: Decimal) -> None:
        """Raise :class:`InstrumentRuleError` when an order breaks a rule.

        ``price`` is ``None`` for market orders, whose notional is not checked here.
        """
        if not qty.is_finite() or qty <= 0:
            raise InstrumentRuleError("quantity", f"must be greater than zero, got {qty}")
        if not self.is_on_step(qty):
            raise InstrumentRuleError("quantity", f"{qty} is not a multiple of step size {self.step_size}")
        if qty < self.min_qty:
            raise InstrumentRuleError("quantity", f"{qty} is below the minimum quantity {self.min_qty}")
        if price is None:
            return
        if not price.is_finite() or price <= 0:
            raise InstrumentRuleError("price", f"must be greater than zero, got {price}")
        if not self.is_on_tick(price):
            raise InstrumentRuleError("price", f"{price} is not a multiple of tick size {self.tick_size}")
        if price * qty < self.min_notional:
            raise InstrumentRuleError(
                "quantity", f"notional {price * qty} is below the minimum notional {self.min_notional}"
            )
