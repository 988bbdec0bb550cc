"""Pure slot transitions: placement, acknowledgement, fills, cancels, post-only rejects."""

from __future__ import annotations

from dataclasses import replace

import pytest

from opensqt.grid import SlotTransitionError
from opensqt.grid.slots import (
    acknowledge_order,
    apply_order_update,
    is_closing_order,
    new_slot,
    record_post_only_reject,
    request_order,
)
from opensqt.model import InventorySlot, LockStatus, OrderStatus, PositionStatus, Side
from tests.unit.grid import D

BUY_ID = "ETHUSDT-mm-299800-B-0"
SELL_ID = "ETHUSDT-mm-299800-S-1"


def working_buy() -> InventorySlot:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    slot = request_order(slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    return acknowledge_order(slot, BUY_ID, "ex-1")


def working_close() -> InventorySlot:
    slot = apply_order_update(working_buy(), BUY_ID, OrderStatus.FILLED, D("0.010"))
    slot = request_order(slot, side=Side.SELL, price=D("3000"), qty=D("0.010"), client_order_id=SELL_ID)
    return acknowledge_order(slot, SELL_ID, "ex-2")


def test_request_moves_free_slot_to_pending_with_the_order() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    pending = request_order(slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    assert pending.lock_status is LockStatus.PENDING
    assert (pending.order_side, pending.order_price, pending.order_qty) == (Side.BUY, D("2998"), D("0.010"))
    assert pending.client_order_id == BUY_ID
    assert pending.version == slot.version + 1


def test_request_retry_of_the_same_order_is_idempotent() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    pending = request_order(slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    again = request_order(pending, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    assert again is pending


def test_the_decision_time_stays_with_the_order_until_it_ends() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    pending = request_order(
        slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID, requested_ms=1_000
    )
    again = request_order(
        pending, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID, requested_ms=9_000
    )
    assert again.order_requested_ms == 1_000  # a retry is the same decision
    live = apply_order_update(acknowledge_order(pending, BUY_ID, "ex-1"), BUY_ID, OrderStatus.NEW, D("0.004"))
    assert live.order_requested_ms == 1_000
    done = apply_order_update(live, BUY_ID, OrderStatus.FILLED, D("0.010"))
    assert done.order_requested_ms == 0


def request_cycle(slot: InventorySlot, cycle: int) -> InventorySlot:
    """A BUY for ``slot`` whose client id names ``cycle``."""
    cid = f"ETHUSDT-mm-299800-B-{cycle}"
    return request_order(
        slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=cid, cycle=cycle
    )


def test_the_client_ids_cycle_is_the_slots_and_an_earlier_one_is_refused() -> None:
    fresh = new_slot("mm", "ETHUSDT", D("2998"))  # a slot the store lost: cycle 0 again
    pending = request_cycle(fresh, 7)
    assert pending.cycle == 7
    working = acknowledge_order(pending, "ETHUSDT-mm-299800-B-7", "ex-7")
    finished = apply_order_update(working, "ETHUSDT-mm-299800-B-7", OrderStatus.CANCELED, D("0"))
    assert finished.cycle == 8  # its next id was never sent
    ahead = replace(fresh, cycle=9)  # an id decided on a stale copy names a finished cycle
    with pytest.raises(SlotTransitionError, match="names cycle 8, whose order is finished"):
        request_cycle(ahead, 8)


def test_request_on_slot_with_another_order_is_refused() -> None:
    with pytest.raises(SlotTransitionError, match="cannot request"):
        request_order(working_buy(), side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id="other")


def test_acknowledge_locks_slot_with_exchange_id() -> None:
    slot = working_buy()
    assert slot.lock_status is LockStatus.LOCKED
    assert slot.exchange_order_id == "ex-1"
    assert slot.order_status is OrderStatus.NEW


def test_acknowledge_of_another_order_or_twice_changes_nothing() -> None:
    slot = working_buy()
    assert acknowledge_order(slot, "stale-id", "ex-9") is slot
    assert acknowledge_order(slot, BUY_ID, "ex-1") is slot


def test_filled_buy_makes_slot_filled_with_that_qty_and_frees_it() -> None:
    slot = working_buy()
    done = apply_order_update(slot, BUY_ID, OrderStatus.FILLED, D("0.010"))
    assert done.position_status is PositionStatus.FILLED
    assert done.position_qty == D("0.010")
    assert not done.has_order
    assert done.client_order_id == ""
    assert done.exchange_order_id == ""
    assert done.lock_status is LockStatus.FREE
    assert done.cycle == slot.cycle + 1
    assert done.version == slot.version + 1


def test_filled_sell_empties_its_slot() -> None:
    slot = working_close()
    done = apply_order_update(slot, SELL_ID, OrderStatus.FILLED, D("0.010"))
    assert done.position_status is PositionStatus.EMPTY
    assert done.position_qty == 0
    assert done.lock_status is LockStatus.FREE
    assert done.cycle == 2


def test_stale_update_with_other_client_id_is_ignored() -> None:
    slot = working_close()
    assert apply_order_update(slot, BUY_ID, OrderStatus.FILLED, D("0.010")) is slot


def test_update_for_slot_without_order_is_ignored() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    assert apply_order_update(slot, "", OrderStatus.FILLED, D("1")) is slot


def test_partial_fill_applies_the_delta_of_cumulative_qty() -> None:
    slot = apply_order_update(working_buy(), BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.004"))
    assert slot.order_filled_qty == D("0.004")
    assert slot.position_qty == D("0.004")
    assert slot.order_status is OrderStatus.PARTIALLY_FILLED
    assert slot.has_order
    assert slot.lock_status is LockStatus.LOCKED
    slot = apply_order_update(slot, BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.007"))
    assert slot.position_qty == D("0.007")
    done = apply_order_update(slot, BUY_ID, OrderStatus.FILLED, D("0.010"))
    assert done.position_qty == D("0.010")


def test_duplicate_and_non_increasing_partials_are_ignored() -> None:
    slot = apply_order_update(working_buy(), BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.004"))
    assert apply_order_update(slot, BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.004")) is slot
    assert apply_order_update(slot, BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.002")) is slot
    assert apply_order_update(slot, BUY_ID, OrderStatus.NEW, D("0")) is slot


def test_duplicate_final_update_is_ignored() -> None:
    done = apply_order_update(working_buy(), BUY_ID, OrderStatus.FILLED, D("0.010"))
    assert apply_order_update(done, BUY_ID, OrderStatus.FILLED, D("0.010")) is done


@pytest.mark.parametrize("status", [OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_ended_buy_with_partial_fill_keeps_partial_qty_filled(status: OrderStatus) -> None:
    slot = apply_order_update(working_buy(), BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.001"))
    done = apply_order_update(slot, BUY_ID, status, D("0.001"))
    assert done.position_status is PositionStatus.FILLED
    assert done.position_qty == D("0.001")
    assert not done.has_order
    assert done.lock_status is LockStatus.FREE
    assert done.cycle == 1


@pytest.mark.parametrize("status", [OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_ended_buy_without_fill_leaves_slot_empty(status: OrderStatus) -> None:
    done = apply_order_update(working_buy(), BUY_ID, status, D("0"))
    assert done.position_status is PositionStatus.EMPTY
    assert done.position_qty == 0
    assert not done.has_order
    assert done.lock_status is LockStatus.FREE
    assert done.cycle == 1


def test_cancel_reporting_more_fill_than_seen_applies_the_delta() -> None:
    done = apply_order_update(working_buy(), BUY_ID, OrderStatus.CANCELED, D("0.003"))
    assert done.position_qty == D("0.003")
    assert done.position_status is PositionStatus.FILLED


def test_cancelled_close_without_fill_keeps_inventory() -> None:
    done = apply_order_update(working_close(), SELL_ID, OrderStatus.CANCELED, D("0"))
    assert done.position_status is PositionStatus.FILLED
    assert done.position_qty == D("0.010")
    assert not done.has_order


def test_cancelled_close_with_partial_fill_keeps_the_rest() -> None:
    done = apply_order_update(working_close(), SELL_ID, OrderStatus.CANCELED, D("0.004"))
    assert done.position_qty == D("0.006")
    assert done.position_status is PositionStatus.FILLED


def test_update_on_pending_slot_locks_it_and_records_exchange_id() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    slot = request_order(slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    updated = apply_order_update(slot, BUY_ID, OrderStatus.NEW, D("0"), exchange_order_id="ex-7")
    assert updated.lock_status is LockStatus.LOCKED
    assert updated.exchange_order_id == "ex-7"
    assert updated.order_status is OrderStatus.NEW


def test_post_only_reject_counts_on_slot_and_frees_it() -> None:
    slot = record_post_only_reject(working_buy(), BUY_ID)
    assert slot.post_only_rejects == 1
    assert not slot.has_order
    assert slot.lock_status is LockStatus.FREE
    assert slot.cycle == 1
    assert slot.position_status is PositionStatus.EMPTY


def test_post_only_reject_of_stale_id_is_ignored() -> None:
    slot = working_buy()
    assert record_post_only_reject(slot, "stale") is slot


def test_fill_resets_post_only_reject_count() -> None:
    slot = replace(working_buy(), post_only_rejects=3)
    done = apply_order_update(slot, BUY_ID, OrderStatus.FILLED, D("0.010"))
    assert done.post_only_rejects == 0


def test_plain_cancel_does_not_count_as_post_only_reject() -> None:
    slot = replace(working_buy(), post_only_rejects=2)
    done = apply_order_update(slot, BUY_ID, OrderStatus.CANCELED, D("0"))
    assert done.post_only_rejects == 2


def test_short_inventory_is_signed_and_closed_by_a_buy() -> None:
    slot = new_slot("mm", "ETHUSDT", D("3002"))
    slot = request_order(slot, side=Side.SELL, price=D("3002"), qty=D("0.009"), client_order_id="s")
    slot = apply_order_update(slot, "s", OrderStatus.FILLED, D("0.009"))
    assert slot.position_qty == D("-0.009")
    assert slot.position_status is PositionStatus.FILLED
    slot = request_order(slot, side=Side.BUY, price=D("3000"), qty=D("0.009"), client_order_id="b")
    assert is_closing_order(slot)
    slot = apply_order_update(slot, "b", OrderStatus.FILLED, D("0.009"))
    assert slot.position_qty == 0
    assert slot.position_status is PositionStatus.EMPTY


def test_opening_order_is_not_a_closing_order_even_partially_filled() -> None:
    slot = apply_order_update(working_buy(), BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.004"))
    assert not is_closing_order(slot)
    assert is_closing_order(working_close())


def test_every_change_bumps_version_by_one() -> None:
    slot = new_slot("mm", "ETHUSDT", D("2998"))
    versions = [slot.version]
    slot = request_order(slot, side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=BUY_ID)
    versions.append(slot.version)
    slot = acknowledge_order(slot, BUY_ID, "ex")
    versions.append(slot.version)
    slot = apply_order_update(slot, BUY_ID, OrderStatus.PARTIALLY_FILLED, D("0.005"))
    versions.append(slot.version)
    slot = apply_order_update(slot, BUY_ID, OrderStatus.FILLED, D("0.010"))
    versions.append(slot.version)
    assert versions == [0, 1, 2, 3, 4]
