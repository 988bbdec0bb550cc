"""Pure transitions of one grid slot (:class:`~opensqt.model.InventorySlot`).

Every function takes a slot and returns a slot: the same object when nothing changes (so callers
can test ``new is old``), otherwise a copy with ``version`` bumped by one. Nothing here performs
I/O; a slot manager applies these transitions atomically in its store.

Life of an order on a slot::

    FREE --request_order--> PENDING --acknowledge_order--> LOCKED --final update--> FREE (cycle + 1)

Inventory is signed: ``position_qty`` > 0 is long, < 0 is short (neutral mode). Executed
quantity is applied as it arrives (as the delta of cumulative executed quantity), so the slot's
inventory always equals what the exchange executed; ``position_status`` is FILLED exactly when
``position_qty`` is not zero.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from opensqt.model.enums import LockStatus, OrderStatus, PositionStatus, Side
from opensqt.model.money import ZERO
from opensqt.model.state import InventorySlot

__all__ = [
    "SlotTransitionError",
    "acknowledge_order",
    "apply_order_update",
    "is_closing_order",
    "is_empty",
    "new_slot",
    "record_post_only_reject",
    "request_order",
]


class SlotTransitionError(ValueError):
    """A transition that the slot's current state does not allow (a caller bug, not market data)."""


def new_slot(agent: str, symbol: str, slot_price: Decimal) -> InventorySlot:
    """A FREE, EMPTY slot with no order, cycle 0."""
    return InventorySlot(agent=agent, symbol=symbol, slot_price=slot_price)


def is_empty(slot: InventorySlot) -> bool:
    """True when the slot holds no inventory."""
    return slot.position_qty == 0 and slot.position_status is PositionStatus.EMPTY


def is_closing_order(slot: InventorySlot) -> bool:
    """True when the slot's order reduces its inventory (a SELL on a long, a BUY on a short)."""
    side = slot.order_side
    if side is None:
        return False
    qty = slot.position_qty
    return (qty > 0 and side is Side.SELL) or (qty < 0 and side is Side.BUY)


def request_order(
    slot: InventorySlot,
    *,
    side: Side,
    price: Decimal,
    qty: Decimal,
    client_order_id: str,
    cycle: int | None = None,
    requested_ms: int = 0,
    reduce_only: bool | None = None,
    post_only: bool | None = None,
) -> InventorySlot:
    """FREE → PENDING: an order is about to be sent for this slot, decided at ``requested_ms``,
    with the flags it is sent with (a re-send sends the same order).

    Requesting the very same order again (a retry within the cycle) returns the slot unchanged.
    ``cycle``, the cycle the client id carries: an id of an earlier cycle than the slot's is
    refused (that id was sent, and its order is finished: a decision on a stale copy), and a
    slot that lost its history (a store that lost it or went back to an older save) takes the
    cycle of the id it is asked for, so the ids of its later cycles never repeat one already sent.

    Raises:
        SlotTransitionError: the slot already has a different order, is not FREE, or is in a
            later cycle than the client id names.
    """
    if slot.order_side is not None or slot.lock_status is not LockStatus.FREE:
        if (
            slot.client_order_id == client_order_id
            and slot.order_side is side
            and slot.order_price == price
            and slot.order_qty == qty
        ):
            return slot
        raise SlotTransitionError(
            f"slot {slot.slot_price} is {slot.lock_status.value} with order {slot.client_order_id!r}; "
            f"cannot request {client_order_id!r}"
        )
    if not client_order_id:
        raise SlotTransitionError("an order needs a client order id")
    if cycle is not None and cycle < slot.cycle:
        raise SlotTransitionError(
            f"slot {slot.slot_price} is in cycle {slot.cycle}; {client_order_id!r} names cycle {cycle}, "
            "whose order is finished"
        )
    if qty <= 0 or price <= 0:
        raise SlotTransitionError(f"order price and quantity must be positive, got {price} x {qty}")
    return replace(
        slot,
        order_side=side,
        order_price=price,
        order_qty=qty,
        client_order_id=client_order_id,
        exchange_order_id="",
        order_filled_qty=ZERO,
        order_status=None,
        lock_status=LockStatus.PENDING,
        cycle=slot.cycle if cycle is None else cycle,
        version=slot.version + 1,
        order_requested_ms=requested_ms,
        order_reduce_only=reduce_only,
        order_post_only=post_only,
    )


def acknowledge_order(slot: InventorySlot, client_order_id: str, exchange_order_id: str) -> InventorySlot:
    """PENDING → LOCKED: the exchange accepted the order and gave it ``exchange_order_id``.

    A stale acknowledgement (another client order id) or a repeated one changes nothing.
    """
    if not client_order_id or slot.client_order_id != client_order_id:
        return slot
    if slot.lock_status is LockStatus.LOCKED and (
        not exchange_order_id or slot.exchange_order_id == exchange_order_id
    ):
        return slot
    return replace(
        slot,
        lock_status=LockStatus.LOCKED,
        exchange_order_id=exchange_order_id or slot.exchange_order_id,
        order_status=slot.order_status or OrderStatus.NEW,
        version=slot.version + 1,
    )


def apply_order_update(
    slot: InventorySlot,
    client_order_id: str,
    status: OrderStatus,
    cumulative_filled_qty: Decimal,
    *,
    exchange_order_id: str = "",
    post_only_rejected: bool = False,
) -> InventorySlot:
    """Apply an exchange update of the slot's order.

    Args:
        slot: the slot the update was routed to.
        client_order_id: the order's client id; an update for another id is stale and ignored.
        status: the order's status after the change.
        cumulative_filled_qty: total executed quantity of the order so far. Only an increase
            over what the slot already counted changes inventory; duplicates and out-of-order
            updates are ignored.
        exchange_order_id: the exchange's id, recorded when the slot did not know it yet.
        post_only_rejected: the order ended because post-only would have taken liquidity; the
            slot counts it (see :func:`record_post_only_reject`).

    The executed delta moves inventory: a BUY adds, a SELL subtracts. When the order reaches a
    final state (FILLED, CANCELED, EXPIRED, REJECTED) the order is cleared, the slot is FREE and
    its cycle increases, so a FILLED BUY leaves the slot FILLED with the bought quantity, a
    FILLED close leaves it EMPTY, a cancelled BUY with a partial fill leaves it FILLED with the
    partial quantity, and a cancelled order without a fill leaves the inventory as it was.
    """
    if not client_order_id or slot.client_order_id != client_order_id or slot.order_side is None:
        return slot
    known = slot.order_filled_qty
    delta = cumulative_filled_qty - known if cumulative_filled_qty > known else ZERO
    position_qty = slot.position_qty
    if delta:
        position_qty = position_qty + delta if slot.order_side is Side.BUY else position_qty - delta
    position_status = PositionStatus.FILLED if position_qty != 0 else PositionStatus.EMPTY
    exchange_id = slot.exchange_order_id or exchange_order_id

    if status.is_final:
        rejects = slot.post_only_rejects
        executed = known + delta
        if executed > 0:
            rejects = 0
        elif post_only_rejected:
            rejects += 1
        return replace(
            slot,
            position_status=position_status,
            position_qty=position_qty,
            order_side=None,
            order_price=ZERO,
            order_qty=ZERO,
            client_order_id="",
            exchange_order_id="",
            order_filled_qty=ZERO,
            order_status=None,
            lock_status=LockStatus.FREE,
            order_requested_ms=0,
            order_reduce_only=None,
            order_post_only=None,
            cycle=slot.cycle + 1,
            post_only_rejects=rejects,
            version=slot.version + 1,
        )

    acknowledged = slot.lock_status is LockStatus.PENDING
    if not delta and not acknowledged and exchange_id == slot.exchange_order_id:
        return slot
    new_status = status if delta or slot.order_status is None else slot.order_status
    return replace(
        slot,
        position_status=position_status,
        position_qty=position_qty,
        exchange_order_id=exchange_id,
        order_filled_qty=known + delta,
        order_status=new_status,
        lock_status=LockStatus.LOCKED,
        version=slot.version + 1,
    )


def record_post_only_reject(slot: InventorySlot, client_order_id: str) -> InventorySlot:
    """The slot's post-only order was rejected (it would have taken liquidity).

    The rejection ends the order like a cancel without fill and counts one rejection on the slot;
    :class:`~opensqt.grid.Strategy` stops asking for post-only once the count reaches
    ``post_only_max_rejects``. A fill on the slot resets the count.
    """
    return apply_order_update(
        slot, client_order_id, OrderStatus.EXPIRED, slot.order_filled_qty, post_only_rejected=True
    )
