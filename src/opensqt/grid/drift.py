"""Position drift while a grid trades: the venue's position against the slots'. Pure: no I/O.

At start, :func:`opensqt.grid.reconcile.reconcile` corrects a small drift and alerts on a large
one. While the grid trades, the slots follow the venue through the account's order stream, so
at any moment some fills may be on their way. Nothing is corrected while running; a drift
counts only when nothing on its way can explain it:

* A reading is **settled** when every slot's working order is among the venue's open orders
  (read with the position, in one consistent snapshot) with the executed quantity the slot has.
  Otherwise an update is in flight one way or the other (a fill the stream has not brought, an
  order the venue has not yet listed, a fill the slots took after the venue was read): the
  reading is **unsettled** and proves nothing (see :func:`unsettled_orders`).
* A drift is **confirmed** when two settled readings in a row show the same drift (venue minus
  slots), whatever the fills in between: what the grid traded moved both sides alike. Unsettled
  readings in between are skipped.
* A confirmed drift of ``alert_ratio`` (5%, as at start) or more is an **alert**, once: the
  caller stops opening (reduce-only) until an operator resumes. A smaller one is reported.
* Resuming **acknowledges** the drift that alerted (at start or while running), and only that
  one: the same drift does not alert again (until a settled reading shows none); any other
  drift does. A Resume that follows no alert (lifting a pause) acknowledges nothing.

``ratio = |drift| / max(|venue|, |slots|)``: a venue that holds nothing while the slots hold
inventory (liquidated), or the reverse, is a ratio of 1. What makes a real drift: a liquidation
or auto-deleveraging, a person trading the symbol on the account, an order update lost for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from opensqt.grid.reconcile import DRIFT_ALERT_RATIO
from opensqt.model.money import ZERO
from opensqt.model.resources import Order
from opensqt.model.state import InventorySlot

__all__ = ["DriftReading", "DriftVerdict", "PositionWatch", "unsettled_orders"]


def unsettled_orders(slots: Iterable[InventorySlot], open_orders: Iterable[Order]) -> list[str]:
    """Client ids of the slots' orders whose venue state and slot state differ: not among the
    venue's ``open_orders`` (finished, or not yet placed), or listed with another executed
    quantity. Empty when the slots have caught up with the venue and the venue with the slots."""
    listed = {o.client_order_id: o for o in open_orders if o.client_order_id}
    by_exchange_id = {o.exchange_order_id: o for o in open_orders if o.exchange_order_id}
    unsettled = []
    for slot in slots:
        if not slot.has_order:
            continue
        order = listed.get(slot.client_order_id)
        if order is None and slot.exchange_order_id:
            order = by_exchange_id.get(slot.exchange_order_id)
        if order is None or order.filled_qty != slot.order_filled_qty:
            unsettled.append(slot.client_order_id)
    return unsettled


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
        settled: no order update was in flight (else the reading proves nothing).
        confirmed: settled, a drift, and the previous settled reading had the same drift.
        alert: confirmed, at least the alert ratio, and no alert is outstanding or acknowledged
            for this drift: the caller stops opening.
        acknowledged: confirmed, and the very drift an operator acknowledged by resuming.
    """

    reading: DriftReading
    settled: bool = True
    confirmed: bool = False
    alert: bool = False
    acknowledged: bool = False


class PositionWatch:
    """Confirms drifts across readings (see the module doc)."""

    def __init__(self, alert_ratio: Decimal = DRIFT_ALERT_RATIO) -> None:
        if not ZERO < alert_ratio <= 1:
            raise ValueError(f"alert_ratio must be in (0, 1], got {alert_ratio}")
        self._alert_ratio = alert_ratio
        self._previous: DriftReading | None = None  # the latest settled reading
        self._alerted: Decimal | None = None  # the drift of the outstanding alert
        self._accepted: Decimal | None = None  # the drift an operator resumed with

    def seed(self, exchange_position: Decimal, local_position: Decimal, *, alerted: bool = False) -> None:
        """Start from a settled reading taken elsewhere (reconciliation at start, after its
        writes); ``alerted`` when that reading raised the alert (it is then outstanding)."""
        self._previous = DriftReading(exchange_position, local_position)
        if alerted and self._previous.drift:
            self._alerted = self._previous.drift

    def observe(
        self, exchange_position: Decimal, local_position: Decimal, *, settled: bool = True
    ) -> DriftVerdict:
        reading = DriftReading(exchange_position, local_position)
        if not settled:
            return DriftVerdict(reading, settled=False)
        drift, previous = reading.drift, self._previous
        self._previous = reading
        if not drift:
            self._accepted = self._alerted = None  # gone: a drift from now on is a new one
            return DriftVerdict(reading)
        if previous is None or previous.drift != drift:
            return DriftVerdict(reading)
        if drift == self._accepted:
            return DriftVerdict(reading, confirmed=True, acknowledged=True)
        alert = self._alerted is None and reading.ratio >= self._alert_ratio
        if alert:
            self._alerted = drift
        return DriftVerdict(reading, confirmed=True, alert=alert)

    def acknowledge(self) -> None:
        """An operator resumed: the drift of the outstanding alert is accepted (no alert: none)."""
        if self._alerted is not None:
            self._accepted, self._alerted = self._alerted, None
