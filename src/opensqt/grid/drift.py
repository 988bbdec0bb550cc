"""Position drift while a grid trades: the venue's position against the slots'. Pure: no I/O.

At start, :func:`opensqt.grid.reconcile.reconcile` corrects a small drift and alerts on a large
one. While the grid trades, a single reading proves nothing: the account's order stream may still
be carrying fills the venue already counts (or the slots may have taken a fill after the venue's
position was read). So nothing is corrected while running, and a drift counts only once it is
**confirmed**: two consecutive readings show the same venue position and the same slot position,
so nothing arrived in between to explain it. What makes one: a liquidation or auto-deleveraging,
a person trading the symbol on the account, an order update lost for good.

A confirmed drift of ``alert_ratio`` (5%, as at start) or more is an **alert**: the caller stops
opening (reduce-only) until an operator resumes. Resuming **acknowledges** the drift of the
latest reading: the same drift does not alert again (until a reading shows none), any other
one does. A smaller confirmed
drift is reported, not acted on.

``ratio = |drift| / max(|venue|, |slots|)``: a venue that holds nothing while the slots hold
inventory (liquidated), or the reverse, is a ratio of 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opensqt.grid.reconcile import DRIFT_ALERT_RATIO
from opensqt.model.money import ZERO

__all__ = ["DriftReading", "DriftVerdict", "PositionWatch"]


@dataclass(frozen=True, slots=True)
class DriftReading:
    """One reading: the venue's net position for the symbol and the slots' net inventory."""

    exchange_position: Decimal
    local_position: Decimal

    @property
    def drift(self) -> Decimal:
        return self.exchange_position - self.local_position

    @property
    def ratio(self) -> Decimal:
        scale = max(abs(self.exchange_position), abs(self.local_position))
        return abs(self.drift) / scale if scale else ZERO


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    """What one reading shows.

    Attributes:
        confirmed: a drift, and the previous reading was the same (nothing explained it since).
        alert: confirmed, at least the alert ratio, and not the drift an operator acknowledged.
        acknowledged: confirmed, and the very drift an operator acknowledged by resuming.
    """

    reading: DriftReading
    confirmed: bool = False
    alert: bool = False
    acknowledged: bool = False


class PositionWatch:
    """Confirms drifts across readings (see the module doc)."""

    def __init__(self, alert_ratio: Decimal = DRIFT_ALERT_RATIO) -> None:
        if not ZERO < alert_ratio <= 1:
            raise ValueError(f"alert_ratio must be in (0, 1], got {alert_ratio}")
        self._alert_ratio = alert_ratio
        self._previous: DriftReading | None = None
        self._accepted: Decimal | None = None  # the drift an operator resumed with

    @property
    def previous(self) -> DriftReading | None:
        return self._previous

    def seed(self, exchange_position: Decimal, local_position: Decimal) -> None:
        """Start from a reading taken elsewhere (reconciliation at start, after its writes)."""
        self._previous = DriftReading(exchange_position, local_position)

    def observe(self, exchange_position: Decimal, local_position: Decimal) -> DriftVerdict:
        reading = DriftReading(exchange_position, local_position)
        confirmed = bool(reading.drift) and reading == self._previous
        self._previous = reading
        if not reading.drift:
            self._accepted = None  # the acknowledged drift is gone: a new one alerts again
        if not confirmed:
            return DriftVerdict(reading)
        if self._accepted is not None and reading.drift == self._accepted:
            return DriftVerdict(reading, confirmed=True, acknowledged=True)
        return DriftVerdict(reading, confirmed=True, alert=reading.ratio >= self._alert_ratio)

    def acknowledge(self) -> None:
        """An operator resumed: the latest reading's drift is accepted (none: nothing is)."""
        latest = self._previous
        self._accepted = latest.drift if latest is not None and latest.drift else None
