"""PositionWatch: a drift while trading counts once two readings in a row agree on it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.grid.drift import PositionWatch, unsettled_orders
from opensqt.model import InventorySlot, Order, OrderStatus, OrderType, Side

D = Decimal


def test_a_single_reading_with_a_drift_is_not_confirmed() -> None:
    watch = PositionWatch()
    verdict = watch.observe(D("0.5"), D("0.4"))
    assert verdict.reading.drift == D("0.1")
    assert not verdict.confirmed
    assert not verdict.alert


def test_the_same_drift_twice_is_confirmed_and_alerts_at_five_percent() -> None:
    watch = PositionWatch()
    watch.observe(D("1.00"), D("0.95"))
    verdict = watch.observe(D("1.00"), D("0.95"))
    assert verdict.confirmed
    assert verdict.reading.ratio == D("0.05")
    assert verdict.alert


def test_a_confirmed_drift_under_five_percent_is_reported_without_an_alert() -> None:
    watch = PositionWatch()
    watch.observe(D("1.00"), D("0.96"))
    verdict = watch.observe(D("1.00"), D("0.96"))
    assert verdict.confirmed
    assert not verdict.alert


def test_a_fill_arriving_between_readings_is_not_a_drift() -> None:
    watch = PositionWatch()
    # the venue counts a fill the order stream has not brought yet
    assert not watch.observe(D("0.2"), D("0.1")).confirmed
    assert not watch.observe(D("0.2"), D("0.2")).confirmed  # it arrived
    assert not watch.observe(D("0.3"), D("0.2")).confirmed  # the next one is on its way


def test_a_drift_that_changes_between_readings_is_not_confirmed() -> None:
    watch = PositionWatch()
    watch.observe(D("0.3"), D("0.1"))
    assert not watch.observe(D("0.4"), D("0.1")).confirmed
    assert watch.observe(D("0.4"), D("0.1")).alert


def test_a_liquidated_position_is_a_full_drift() -> None:
    watch = PositionWatch()
    watch.observe(D("0"), D("0.25"))
    verdict = watch.observe(D("0"), D("0.25"))
    assert verdict.reading.ratio == 1
    assert verdict.alert


def test_no_position_on_either_side_is_no_drift() -> None:
    watch = PositionWatch()
    watch.observe(D("0"), D("0"))
    verdict = watch.observe(D("0"), D("0"))
    assert (verdict.confirmed, verdict.alert, verdict.reading.ratio) == (False, False, 0)


def test_a_seeded_reading_confirms_on_the_first_observation() -> None:
    watch = PositionWatch()
    watch.seed(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert


def test_an_acknowledged_drift_does_not_alert_again_but_a_different_one_does() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert
    watch.acknowledge()
    again = watch.observe(D("0.5"), D("0.3"))
    assert again.confirmed
    assert again.acknowledged
    assert not again.alert
    watch.observe(D("0.6"), D("0.3"))  # the account moved again
    assert watch.observe(D("0.6"), D("0.3")).alert


def test_the_same_drift_alerts_again_once_it_had_gone() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert
    watch.acknowledge()
    watch.observe(D("0.3"), D("0.3"))  # fixed by the operator
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert


def test_acknowledging_without_a_drift_accepts_nothing() -> None:
    watch = PositionWatch()
    watch.acknowledge()
    watch.observe(D("0.2"), D("0"))
    assert watch.observe(D("0.2"), D("0")).alert


@pytest.mark.parametrize("ratio", ["0", "-0.1", "1.5"])
def test_the_alert_ratio_must_be_a_fraction(ratio: str) -> None:
    with pytest.raises(ValueError, match="alert_ratio"):
        PositionWatch(D(ratio))


def test_unsettled_readings_are_skipped_not_taken_as_the_previous_one() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    lagging = watch.observe(D("0.7"), D("0.3"), settled=False)  # a fill on its way
    assert not lagging.settled
    assert not lagging.confirmed
    assert watch.observe(D("0.5"), D("0.3")).alert


def test_the_same_drift_across_the_grids_own_fills_is_confirmed() -> None:
    watch = PositionWatch()
    watch.observe(D("1.0"), D("0.5"))
    verdict = watch.observe(D("1.2"), D("0.7"))  # the grid bought 0.2 in between: both sides moved
    assert verdict.confirmed
    assert verdict.alert


def test_a_resume_that_followed_no_alert_acknowledges_nothing() -> None:
    watch = PositionWatch()
    watch.observe(D("0"), D("1"))  # liquidated while paused: seen once
    watch.acknowledge()  # the operator lifts the pause
    assert watch.observe(D("0"), D("1")).alert


def test_an_acknowledged_drift_stays_accepted_across_a_later_pause_and_resume() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert
    watch.acknowledge()
    watch.acknowledge()  # a pause lifted later
    assert watch.observe(D("0.5"), D("0.3")).acknowledged


def test_an_alert_is_raised_once_until_acknowledged_then_a_new_drift_alerts() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert
    assert not watch.observe(D("0.5"), D("0.3")).alert  # outstanding
    watch.observe(D("0.7"), D("0.3"))
    moved = watch.observe(D("0.7"), D("0.3"))
    assert moved.confirmed
    assert not moved.alert  # still the same episode: the agent already reduces
    watch.acknowledge()  # accepts the drift that alerted (0.2), not the latest (0.4)
    assert watch.observe(D("0.7"), D("0.3")).alert


def test_a_seeded_alert_is_outstanding_and_is_what_resume_acknowledges() -> None:
    watch = PositionWatch()
    watch.seed(D("0.5"), D("0.3"), alerted=True)  # reconciliation at start alerted on it
    first = watch.observe(D("0.5"), D("0.3"))
    assert first.confirmed
    assert not first.alert
    watch.acknowledge()
    assert watch.observe(D("0.5"), D("0.3")).acknowledged


def slot(price: str, cid: str = "", filled: str = "0", xid: str = "") -> InventorySlot:
    return InventorySlot(
        agent="mm1",
        symbol="ETHUSDT",
        slot_price=D(price),
        order_side=Side.BUY if cid else None,
        order_price=D(price) if cid else None,
        order_qty=D("0.010") if cid else D(0),
        client_order_id=cid,
        exchange_order_id=xid,
        order_filled_qty=D(filled),
    )


def listed(cid: str, filled: str = "0", xid: str = "") -> Order:
    return Order(
        symbol="ETHUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"), price=D("3000"),
        client_order_id=cid, exchange_order_id=xid, filled_qty=D(filled), status=OrderStatus.NEW,
    )  # fmt: skip


def test_slot_orders_the_venue_lists_with_the_same_fills_are_settled() -> None:
    slots = [slot("3000", "a"), slot("2990", "b", filled="0.004"), slot("2980")]
    assert unsettled_orders(slots, [listed("a"), listed("b", filled="0.004"), listed("foreign")]) == []


def test_a_slot_order_the_venue_no_longer_lists_or_filled_further_is_unsettled() -> None:
    slots = [slot("3000", "a"), slot("2990", "b"), slot("2980", "c", filled="0.004")]
    assert unsettled_orders(slots, [listed("b", filled="0.002"), listed("c", filled="0.002")]) == [
        "a",
        "b",
        "c",
    ]


def test_a_slot_order_is_matched_by_exchange_id_when_the_client_id_differs() -> None:
    assert unsettled_orders([slot("3000", "a", xid="77")], [listed("", xid="77")]) == []
