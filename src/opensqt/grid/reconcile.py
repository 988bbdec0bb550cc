"""Reconciliation of one grid's slots with the exchange (behaviour.md §2). Pure: no I/O.

The live market maker (:class:`opensqt.engine.live.MarketMakerAgent`) runs it at start: it reads
the exchange's open orders and position for the symbol, settles the slots whose order is no
longer open by looking that order up by client id (exact, so the position has little left to
explain), and calls :func:`reconcile` (through :meth:`opensqt.grid.manager.SlotManager.reconcile`,
which stores the result). The caller acts on the rest of the :class:`ReconcileReport`: it
cancels this agent's ``orders_to_cancel`` and, on ``drift_alert``, alerts and stops opening
(REDUCING).

Decisions, in this order:

1. **Bind.** A slot's working order that the exchange lists as open (matched by client id, else
   by exchange id) takes the exchange's view of it: exchange id, status, executed quantity.
2. **Adopt.** An open order with one of this agent's client ids that no slot tracks goes back on
   the slot its id names (the id carries the slot price) when that slot is free for it: no other
   order, not an older cycle, and inventory that fits (an opening order needs an empty slot; a
   close, whose price differs from the slot price, needs inventory on its side and restores it
   when the slot holds none). Everything else matches no slot and is reported in
   ``orders_to_cancel``: ids that are not grid ids, stale cycles, orders on a busy slot; the
   slot of such an order of this agent counts its cycles on past the order's, so its id is
   never used again. Orders with another agent's id are left alone.
3. **Vanished orders.** A slot whose order the exchange no longer lists may have filled. With
   ``gap = exchange position - Σ slot inventory``, vanished BUYs (highest price first, the order
   a falling price fills them) count as executed up to a positive gap, vanished SELLs (lowest
   first) up to a negative one; the explained quantity is applied as a fill and the order is
   closed (FILLED when wholly explained, else CANCELED with the explained part), so a slot ends
   FILLED or EMPTY by what the position shows.
4. **Drift.** ``drift = exchange - local`` and ``ratio = |drift| / max(|exchange|, |local|)``.
   With no local state (no slot holds inventory or a working order) and a position, slots are
   rebuilt from the anchor outwards (above it for a long position, below it for a short one),
   ``order_notional`` worth each, so take-profit closes are placed as price moves their way.
   Otherwise a ratio under ``drift_alert_ratio`` (5%) is corrected on the slots holding inventory
   on the net side (larger holdings without a working order first); a larger one changes nothing
   and sets ``drift_alert``.

Steps 3 and 4 read the position, so they run only when it can be read as this grid's. They are
skipped (the slots concerned are left as they are and listed in ``unresolved``) when
``exchange_position`` is ``None`` (the caller cannot tell this grid's share of the account's
position, e.g. another agent trades the symbol on the same account), and when a slot's order
was never acknowledged and is not open either: such an order may have been placed and filled,
so the position would explain the wrong orders. The caller settles those by client id (a
re-send is answered with the order the venue has) and by the account's order stream.

Reconciling an already reconciled state yields no writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from opensqt.grid.client_ids import ClientOrderIdError, ClientOrderIdParts, parse_client_order_id
from opensqt.grid.config import GridConfig, opening_qty
from opensqt.grid.slots import apply_order_update, new_slot, request_order
from opensqt.model.enums import LockStatus, OrderStatus, PositionStatus, Side, TradingStateKind
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO
from opensqt.model.resources import Order
from opensqt.model.state import InventorySlot

__all__ = [
    "DRIFT_ALERT_RATIO",
    "MAX_REBUILD_SLOTS",
    "ReconcileReport",
    "SlotWrite",
    "reconcile",
]

DRIFT_ALERT_RATIO = Decimal("0.05")
"""A position drift of this fraction or more is not corrected but raises a risk alert."""

MAX_REBUILD_SLOTS = 100
"""A rebuilt position is spread over at most this many slots (larger slots beyond it)."""


@dataclass(frozen=True, slots=True)
class SlotWrite:
    """A reconciled slot, to be stored only if the stored slot still has ``expected_version``.

    ``expected_version`` 0 means the slot must not exist yet.
    """

    slot: InventorySlot
    expected_version: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What :func:`reconcile` decided. Slot prices and client ids are in ascending order of slot.

    Attributes:
        writes: the slots that changed, each guarded by the version it was computed from.
        bound: client ids of slot orders found open on the exchange.
        adopted: client ids of open exchange orders put back on the slot their id names.
        filled: slots whose vanished order the position shows as executed (wholly or partly).
        vanished: slots whose vanished order did not execute (cancelled or never placed).
        unresolved: slots whose order is neither open nor explained by the position, left as
            they were: it was never acknowledged, or the position was not given.
        position_checked: steps 3 and 4 ran (the position was given and no order was unacknowledged).
        orders_to_cancel: open exchange orders that match no slot.
        corrected: slots whose inventory absorbed a small drift.
        rebuilt: slots created (or refilled) to hold a position no slot accounted for.
        exchange_position: the exchange's signed position (``None`` when not given).
        local_position: Σ slot inventory after steps 1-3, before any correction.
        drift: ``exchange_position - local_position`` (0 when the position was not checked).
        drift_ratio: ``|drift| / max(|exchange_position|, |local_position|)`` (0 when both are 0).
        drift_alert: the drift is too large to correct: raise a risk alert and move to REDUCING.
    """

    writes: tuple[SlotWrite, ...] = ()
    bound: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    filled: tuple[Decimal, ...] = ()
    vanished: tuple[Decimal, ...] = ()
    unresolved: tuple[Decimal, ...] = ()
    position_checked: bool = True
    orders_to_cancel: tuple[Order, ...] = ()
    corrected: tuple[Decimal, ...] = ()
    rebuilt: tuple[Decimal, ...] = ()
    exchange_position: Decimal | None = ZERO
    local_position: Decimal = ZERO
    drift: Decimal = ZERO
    drift_ratio: Decimal = ZERO
    drift_alert: bool = False

    @property
    def required_trading_state(self) -> TradingStateKind | None:
        """REDUCING when the drift needs a risk alert, else ``None`` (no change asked)."""
        return TradingStateKind.REDUCING if self.drift_alert else None


class _Work:
    """The slots as reconciliation changes them, remembering the versions they started from."""

    def __init__(self, slots: Mapping[Decimal, InventorySlot], agent: str, symbol: str) -> None:
        self.original = dict(slots)
        self.current = dict(slots)
        self.agent = agent
        self.symbol = symbol

    def get(self, price: Decimal) -> InventorySlot:
        slot = self.current.get(price)
        return slot if slot is not None else new_slot(self.agent, self.symbol, price)

    def put(self, slot: InventorySlot) -> None:
        self.current[slot.slot_price] = slot

    def net(self) -> Decimal:
        return sum((slot.position_qty for slot in self.current.values()), ZERO)

    def idle(self) -> bool:
        """No slot holds inventory or a working order."""
        return all(slot.position_qty == 0 and not slot.has_order for slot in self.current.values())

    def writes(self) -> tuple[SlotWrite, ...]:
        writes = []
        for price in sorted(self.current):
            slot = self.current[price]
            before = self.original.get(price)
            if slot is not before:
                writes.append(SlotWrite(slot, before.version if before is not None else 0))
        return tuple(writes)


def reconcile(
    slots: Mapping[Decimal, InventorySlot],
    open_orders: Iterable[Order],
    exchange_position: Decimal | None,
    *,
    config: GridConfig,
    instrument: Instrument,
    anchor: Decimal | None = None,
    drift_alert_ratio: Decimal = DRIFT_ALERT_RATIO,
) -> ReconcileReport:
    """Reconcile ``slots`` with the exchange (see the module docstring for the rules).

    Args:
        slots: every slot of ``config.agent`` on ``instrument.symbol``, keyed by slot price.
        open_orders: the exchange's open orders; orders for other symbols are ignored.
        exchange_position: the exchange's signed position of this agent on the symbol;
            ``None`` when it cannot be told apart from other agents' (steps 3-4 are skipped).
        config: the grid parameters (agent, client id prefix, interval, order notional).
        instrument: tick and step sizes, minimums, symbol.
        anchor: the grid anchor; needed to rebuild slots for a position with no local state
            (without it such a position is reported as drift).
        drift_alert_ratio: drift at or above this fraction raises ``drift_alert``.
    """
    work = _Work(slots, config.agent, instrument.symbol)
    orders = [order for order in open_orders if not order.symbol or order.symbol == instrument.symbol]
    bound, missing, unmatched = _bind(work, orders)
    adopted, to_cancel = _adopt(work, unmatched, config, instrument)
    unacknowledged = [price for price in missing if work.current[price].order_status is None]
    if exchange_position is None or unacknowledged:
        local = work.net()
        return ReconcileReport(
            writes=work.writes(),
            bound=tuple(bound),
            adopted=tuple(adopted),
            unresolved=tuple(sorted(missing)),
            position_checked=False,
            orders_to_cancel=tuple(to_cancel),
            exchange_position=exchange_position,
            local_position=local,
        )
    filled, vanished = _resolve_vanished(work, missing, exchange_position - work.net())

    local = work.net()
    drift = exchange_position - local
    scale = max(abs(exchange_position), abs(local))
    ratio = abs(drift) / scale if scale else ZERO
    corrected: list[Decimal] = []
    rebuilt: list[Decimal] = []
    alert = False
    if drift:
        if work.idle() and anchor is not None:
            rebuilt = _rebuild(work, exchange_position, anchor, config, instrument)
            alert = not rebuilt
        elif local and ratio < drift_alert_ratio:
            corrected = _correct(work, drift, local)
        else:
            alert = True

    return ReconcileReport(
        writes=work.writes(),
        bound=tuple(bound),
        adopted=tuple(adopted),
        filled=tuple(filled),
        vanished=tuple(vanished),
        orders_to_cancel=tuple(to_cancel),
        corrected=tuple(sorted(corrected)),
        rebuilt=tuple(sorted(rebuilt)),
        exchange_position=exchange_position,
        local_position=local,
        drift=drift,
        drift_ratio=ratio,
        drift_alert=alert,
    )


def _bind(work: _Work, orders: list[Order]) -> tuple[list[str], list[Decimal], list[Order]]:
    """Step 1. Returns bound client ids, slots whose order is missing, and unclaimed orders."""
    by_client = {order.client_order_id: i for i, order in enumerate(orders) if order.client_order_id}
    by_exchange = {order.exchange_order_id: i for i, order in enumerate(orders) if order.exchange_order_id}
    claimed: set[int] = set()
    bound: list[str] = []
    missing: list[Decimal] = []
    for price in sorted(work.current):
        slot = work.current[price]
        if not slot.has_order:
            continue
        index = by_client.get(slot.client_order_id)
        if index is None and slot.exchange_order_id:
            index = by_exchange.get(slot.exchange_order_id)
        if index is None or index in claimed:
            missing.append(price)
            continue
        claimed.add(index)
        order = orders[index]
        work.put(
            apply_order_update(
                slot,
                slot.client_order_id,
                order.status,
                order.filled_qty,
                exchange_order_id=order.exchange_order_id,
            )
        )
        bound.append(slot.client_order_id)
    unclaimed = [order for i, order in enumerate(orders) if i not in claimed]
    return bound, missing, unclaimed


def _adopt(
    work: _Work, orders: list[Order], config: GridConfig, instrument: Instrument
) -> tuple[list[str], list[Order]]:
    """Step 2. Returns adopted client ids and the orders that match no slot."""
    adopted: list[tuple[Decimal, str]] = []
    to_cancel: list[Order] = []
    for order in orders:
        try:
            parts = parse_client_order_id(
                order.client_order_id, tick_size=instrument.tick_size, prefix=config.client_id_prefix
            )
        except ClientOrderIdError:
            to_cancel.append(order)
            continue
        if parts.agent != config.agent or parts.symbol != instrument.symbol:
            continue  # another agent's order on the same account: not ours to judge
        current = work.get(parts.slot_price)
        slot = _adopted_slot(current, order, parts)
        if slot is None:
            to_cancel.append(order)
            if parts.cycle >= current.cycle:
                # The slot's next order must not take this id again once it is cancelled (the
                # executor would answer that id with the cancelled order).
                work.put(replace(current, cycle=parts.cycle + 1, version=current.version + 1))
            continue
        work.put(slot)
        adopted.append((parts.slot_price, order.client_order_id))
    adopted.sort()
    return [client_order_id for _, client_order_id in adopted], to_cancel


def _adopted_slot(slot: InventorySlot, order: Order, parts: ClientOrderIdParts) -> InventorySlot | None:
    """The slot tracking ``order`` again, or ``None`` when the slot cannot take it."""
    if (
        slot.has_order
        or slot.lock_status is not LockStatus.FREE
        or parts.cycle < slot.cycle
        or parts.side is not order.side
        or order.price <= 0
        or order.quantity <= 0
    ):
        return None
    held = slot.position_qty
    if order.price == slot.slot_price:  # an opening order: only on an empty slot
        if held != 0:
            return None
    else:  # a close: a SELL above a long slot or a BUY below a short one
        if (order.side is Side.SELL) != (order.price > slot.slot_price):
            return None
        if held == 0:
            # The inventory this close was placed for; its executed part is applied below.
            held = order.quantity if order.side is Side.SELL else -order.quantity
            slot = replace(slot, position_qty=held, position_status=PositionStatus.FILLED)
        elif (held > 0) != (order.side is Side.SELL):
            return None
    slot = request_order(
        replace(slot, cycle=parts.cycle),
        side=order.side,
        price=order.price,
        qty=order.quantity,
        client_order_id=order.client_order_id,
    )
    return apply_order_update(
        slot,
        order.client_order_id,
        order.status,
        order.filled_qty,
        exchange_order_id=order.exchange_order_id,
    )


def _resolve_vanished(
    work: _Work, missing: list[Decimal], gap: Decimal
) -> tuple[list[Decimal], list[Decimal]]:
    """Step 3. Returns the slots whose vanished order executed and those whose order did not."""
    slots = [work.current[price] for price in missing]
    buys = sorted((s for s in slots if s.order_side is Side.BUY), key=lambda s: s.order_price, reverse=True)
    sells = sorted((s for s in slots if s.order_side is Side.SELL), key=lambda s: s.order_price)
    filled: list[Decimal] = []
    vanished: list[Decimal] = []
    for slot in buys + sells:
        remaining = max(slot.order_qty - slot.order_filled_qty, ZERO)
        if slot.order_side is Side.BUY:
            explained = min(gap, remaining) if gap > 0 else ZERO
            gap -= explained
        else:
            explained = min(-gap, remaining) if gap < 0 else ZERO
            gap += explained
        executed = slot.order_filled_qty + explained
        status = OrderStatus.FILLED if explained and executed >= slot.order_qty else OrderStatus.CANCELED
        work.put(apply_order_update(slot, slot.client_order_id, status, executed))
        (filled if explained else vanished).append(slot.slot_price)
    return sorted(filled), sorted(vanished)


def _with_qty(slot: InventorySlot, qty: Decimal) -> InventorySlot:
    status = PositionStatus.FILLED if qty != 0 else PositionStatus.EMPTY
    return replace(slot, position_qty=qty, position_status=status, version=slot.version + 1)


def _correct(work: _Work, drift: Decimal, local: Decimal) -> list[Decimal]:
    """Step 4, small drift: move the inventory on the net side by ``drift``."""
    long_side = local > 0
    holders = [s for s in work.current.values() if s.position_qty != 0 and (s.position_qty > 0) == long_side]
    holders.sort(key=lambda s: (s.has_order, -abs(s.position_qty), s.slot_price))
    if (drift > 0) == long_side:  # the exchange holds more: one slot absorbs it
        slot = holders[0]
        work.put(_with_qty(slot, slot.position_qty + drift))
        return [slot.slot_price]
    corrected: list[Decimal] = []
    left = abs(drift)
    for slot in holders:
        take = min(left, abs(slot.position_qty))
        work.put(_with_qty(slot, slot.position_qty - take if long_side else slot.position_qty + take))
        corrected.append(slot.slot_price)
        left -= take
        if not left:
            break
    return corrected


def _rebuild(
    work: _Work, position: Decimal, anchor: Decimal, config: GridConfig, instrument: Instrument
) -> list[Decimal]:
    """Step 4, no local state: spread ``position`` over slots from the anchor outwards."""
    interval = config.price_interval
    step = interval if position > 0 else -interval
    left = abs(position)
    floor = instrument.round_qty(left / MAX_REBUILD_SLOTS, mode="up")
    levels: list[list[Decimal]] = []  # [slot price, qty]
    price = instrument.round_price(anchor)
    while left > 0:
        if price <= 0:
            if not levels:
                break
            levels[-1][1] += left
            left = ZERO
            break
        per_slot = max(opening_qty(config.order_notional, price, instrument.step_size), floor)
        qty = min(left, per_slot) if per_slot > 0 else left
        levels.append([price, qty])
        left -= qty
        price += step
    if len(levels) > 1 and not _tradable_close(levels[-1][0] + step, levels[-1][1], config, instrument):
        dust = levels.pop()  # a remainder too small to close on its own joins its neighbour
        levels[-1][1] += dust[1]
    sign = 1 if position > 0 else -1
    for slot_price, qty in levels:
        work.put(_with_qty(work.get(slot_price), sign * qty))
    return [slot_price for slot_price, _ in levels]


def _tradable_close(price: Decimal, qty: Decimal, config: GridConfig, instrument: Instrument) -> bool:
    value = price * qty
    return (
        price > 0
        and qty >= instrument.min_qty
        and value >= instrument.min_notional
        and value >= config.min_order_value
    )
