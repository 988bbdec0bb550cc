"""Reconciliation of slots with the exchange's open orders and position (pure decisions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from opensqt.grid import ClientOrderIdCodec, Strategy
from opensqt.grid import slots as slot_ops
from opensqt.grid.reconcile import ReconcileReport, reconcile
from opensqt.model import (
    InventorySlot,
    LockStatus,
    Order,
    OrderStatus,
    OrderType,
    PositionStatus,
    Side,
    TradingStateKind,
)

from . import ETH, make_config, places

D = Decimal
CONFIG = make_config()
CODEC = ClientOrderIdCodec(symbol="ETHUSDT", agent="mm", tick_size=D("0.01"))


def cid(slot_price: str, side: Side = Side.BUY, cycle: int = 0) -> str:
    return CODEC.encode(D(slot_price), side, cycle)


def holding(price: str, qty: str, *, cycle: int = 0) -> InventorySlot:
    slot = slot_ops.new_slot("mm", "ETHUSDT", D(price))
    status = PositionStatus.FILLED if D(qty) else PositionStatus.EMPTY
    return replace(slot, position_qty=D(qty), position_status=status, cycle=cycle, version=1)


def working(
    price: str,
    side: Side = Side.BUY,
    *,
    qty: str = "0.010",
    held: str = "0",
    cycle: int = 0,
    exchange_id: str | None = None,
) -> InventorySlot:
    """A slot holding ``held`` with a working order (acknowledged when ``exchange_id`` is given)."""
    slot = holding(price, held, cycle=cycle)
    order_price = D(price) + 2 if side is Side.SELL and D(held) > 0 else D(price)
    slot = slot_ops.request_order(
        slot, side=side, price=order_price, qty=D(qty), client_order_id=cid(price, side, cycle)
    )
    if exchange_id:
        slot = slot_ops.acknowledge_order(slot, slot.client_order_id, exchange_id)
    return slot


def open_order(
    client_order_id: str,
    side: Side,
    price: str,
    *,
    qty: str = "0.010",
    filled: str = "0",
    exchange_id: str = "ex-1",
    symbol: str = "ETHUSDT",
) -> Order:
    return Order(
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        client_order_id=client_order_id,
        exchange_order_id=exchange_id,
        status=OrderStatus.PARTIALLY_FILLED if D(filled) else OrderStatus.NEW,
        filled_qty=D(filled),
    )


def run(
    slots: Iterable[InventorySlot],
    orders: Iterable[Order] = (),
    position: str = "0",
    *,
    anchor: str | None = None,
) -> tuple[ReconcileReport, dict[Decimal, InventorySlot]]:
    """Reconcile, then apply the writes: returns the report and the slots afterwards."""
    before = {slot.slot_price: slot for slot in slots}
    report = reconcile(
        before,
        orders,
        D(position),
        config=CONFIG,
        instrument=ETH,
        anchor=None if anchor is None else D(anchor),
    )
    after = dict(before)
    for write in report.writes:
        stored = before.get(write.slot.slot_price)
        assert write.expected_version == (stored.version if stored else 0)
        assert write.slot.version > write.expected_version
        after[write.slot.slot_price] = write.slot
    return report, after


# -- binding open orders --------------------------------------------------------------------------


def test_open_order_binds_to_its_pending_slot_and_locks_it() -> None:
    slot = working("2998")
    report, after = run([slot], [open_order(slot.client_order_id, Side.BUY, "2998", exchange_id="ex-7")])
    assert report.bound == (slot.client_order_id,)
    bound = after[D("2998")]
    assert bound.lock_status is LockStatus.LOCKED
    assert bound.exchange_order_id == "ex-7"
    assert report.orders_to_cancel == ()
    assert not report.drift_alert


def test_bound_order_takes_the_fill_the_exchange_reports() -> None:
    slot = working("2998", exchange_id="ex-1")
    order = open_order(slot.client_order_id, Side.BUY, "2998", filled="0.004")
    report, after = run([slot], [order], "0.004")
    assert after[D("2998")].position_qty == D("0.004")
    assert after[D("2998")].order_filled_qty == D("0.004")
    assert after[D("2998")].has_order
    assert report.drift == 0


def test_order_known_only_by_exchange_id_still_binds() -> None:
    slot = working("2998", exchange_id="ex-1")
    report, _ = run([slot], [open_order("", Side.BUY, "2998", exchange_id="ex-1")])
    assert report.bound == (slot.client_order_id,)
    assert report.orders_to_cancel == ()


# -- vanished orders: fill or not, by the position -------------------------------------------------


def test_vanished_buy_covered_by_the_position_is_a_ghost_fill() -> None:
    report, after = run([working("2998", exchange_id="ex-1")], [], "0.010")
    assert report.filled == (D("2998"),)
    slot = after[D("2998")]
    assert slot.position_status is PositionStatus.FILLED
    assert slot.position_qty == D("0.010")
    assert not slot.has_order
    assert slot.lock_status is LockStatus.FREE
    assert slot.cycle == 1
    assert report.drift == 0


def test_vanished_buy_without_position_empties_its_slot() -> None:
    report, after = run([working("2998", exchange_id="ex-1")], [], "0")
    assert report.vanished == (D("2998"),)
    slot = after[D("2998")]
    assert slot.position_status is PositionStatus.EMPTY
    assert not slot.has_order
    assert slot.cycle == 1


def test_position_explains_the_highest_vanished_buys_first() -> None:
    slots = [working(p, exchange_id=f"ex-{p}") for p in ("2994", "2996", "2998")]
    report, after = run(slots, [], "0.020")
    assert report.filled == (D("2996"), D("2998"))
    assert report.vanished == (D("2994"),)
    assert after[D("2994")].position_status is PositionStatus.EMPTY


def test_partly_explained_vanished_buy_keeps_the_partial_fill() -> None:
    report, after = run([working("2998", exchange_id="ex-1")], [], "0.004")
    assert report.filled == (D("2998"),)
    assert after[D("2998")].position_qty == D("0.004")
    assert not after[D("2998")].has_order


def test_vanished_close_with_a_lower_position_empties_its_slot() -> None:
    close = working("2998", Side.SELL, held="0.010", exchange_id="ex-1")
    assert close.order_price == D("3000")
    report, after = run([close], [], "0")
    assert report.filled == (D("2998"),)
    assert after[D("2998")].position_status is PositionStatus.EMPTY


def test_vanished_close_with_an_unchanged_position_keeps_the_inventory() -> None:
    close = working("2998", Side.SELL, held="0.010", exchange_id="ex-1")
    report, after = run([close], [], "0.010")
    assert report.vanished == (D("2998"),)
    assert after[D("2998")].position_qty == D("0.010")
    assert not after[D("2998")].has_order


def test_unacknowledged_order_not_open_leaves_the_position_unread() -> None:
    # The order may have been placed and filled while unacknowledged: the position (which a
    # fill of it would explain) must not be read as the acknowledged buy's fill.
    unsent = working("2998")
    cancelled = working("2996", exchange_id="ex-2")
    report, after = run([unsent, cancelled], [], "0.010")
    assert not report.position_checked
    assert report.unresolved == (D("2996"), D("2998"))
    assert report.filled == report.vanished == ()
    assert not report.drift_alert
    assert report.drift == 0
    assert report.writes == ()
    assert after[D("2998")] == unsent
    assert after[D("2996")] == cancelled


def test_unacknowledged_order_found_open_binds_and_the_position_is_read() -> None:
    slot = working("2998")
    gone = working("2996", exchange_id="ex-2")
    report, after = run([slot, gone], [open_order(slot.client_order_id, Side.BUY, "2998")], "0.010")
    assert report.position_checked
    assert report.bound == (slot.client_order_id,)
    assert report.filled == (D("2996"),)
    assert after[D("2996")].position_qty == D("0.010")


def test_without_the_position_vanished_orders_and_drift_are_left_alone() -> None:
    gone = working("2996", exchange_id="ex-2")
    held = holding("2990", "0.030")
    before = {s.slot_price: s for s in (gone, held)}
    report = reconcile(before, [], None, config=CONFIG, instrument=ETH, anchor=D("3000"))
    assert not report.position_checked
    assert report.unresolved == (D("2996"),)
    assert report.exchange_position is None
    assert report.local_position == D("0.030")
    assert report.drift == 0
    assert not report.drift_alert
    assert report.writes == ()


def test_without_the_position_open_orders_still_bind_and_adopt() -> None:
    slot = working("2998")
    lost = open_order(cid("2994"), Side.BUY, "2994", exchange_id="ex-9")
    report = reconcile(
        {slot.slot_price: slot},
        [open_order(slot.client_order_id, Side.BUY, "2998"), lost],
        None,
        config=CONFIG,
        instrument=ETH,
    )
    assert report.bound == (slot.client_order_id,)
    assert report.adopted == (lost.client_order_id,)
    assert {w.slot.slot_price for w in report.writes} == {D("2994"), D("2998")}


# -- exchange orders no slot tracks ---------------------------------------------------------------


def test_exchange_order_without_a_grid_id_is_reported_for_cancel() -> None:
    manual = open_order("manual-1", Side.BUY, "2990")
    report, _ = run([], [manual])
    assert report.orders_to_cancel == (manual,)


def test_exchange_order_of_an_older_cycle_is_reported_for_cancel() -> None:
    stale = open_order(cid("2998", cycle=1), Side.BUY, "2998")
    report, after = run([holding("2998", "0", cycle=3)], [stale])
    assert report.orders_to_cancel == (stale,)
    assert not after[D("2998")].has_order
    assert after[D("2998")].cycle == 3  # already past the stale id
    assert report.writes == ()


def test_exchange_order_on_a_busy_slot_is_reported_for_cancel() -> None:
    slot = working("2998", cycle=2, exchange_id="ex-1")
    other = open_order(cid("2998", cycle=3), Side.BUY, "2998", exchange_id="ex-2")
    ours = open_order(slot.client_order_id, Side.BUY, "2998", exchange_id="ex-1")
    report, after = run([slot], [ours, other])
    assert report.orders_to_cancel == (other,)
    # the slot keeps its order, and its cycles go on past the cancelled one's id
    kept = after[D("2998")]
    assert kept.client_order_id == slot.client_order_id
    assert kept.cycle == 4
    again, _ = run([kept], [ours, other])
    assert again.writes == ()


def test_exchange_order_of_another_agent_is_left_alone() -> None:
    theirs = open_order("ETHUSDT-other-299800-B-0", Side.BUY, "2998")
    report, after = run([], [theirs])
    assert report.orders_to_cancel == ()
    assert report.adopted == ()
    assert after == {}


def test_orders_for_other_symbols_are_ignored() -> None:
    report, _ = run([], [open_order("manual-1", Side.BUY, "60000", symbol="BTCUSDT")])
    assert report.orders_to_cancel == ()


def test_lost_opening_order_is_adopted_by_the_slot_its_id_names() -> None:
    order = open_order(cid("2998", cycle=2), Side.BUY, "2998", exchange_id="ex-9")
    report, after = run([], [order])
    assert report.adopted == (order.client_order_id,)
    slot = after[D("2998")]
    assert slot.client_order_id == order.client_order_id
    assert slot.exchange_order_id == "ex-9"
    assert slot.lock_status is LockStatus.LOCKED
    assert slot.cycle == 2
    assert report.orders_to_cancel == ()


def test_lost_close_is_adopted_with_the_inventory_it_closes() -> None:
    order = open_order(cid("2998", Side.SELL), Side.SELL, "3000", qty="0.010", filled="0.004")
    report, after = run([], [order], "0.006")
    assert report.adopted == (order.client_order_id,)
    slot = after[D("2998")]
    assert slot.order_side is Side.SELL
    assert slot.position_qty == D("0.006")
    assert report.drift == 0
    assert report.rebuilt == ()


# -- drift ----------------------------------------------------------------------------------------


def test_small_excess_is_absorbed_by_the_largest_holding_without_an_order() -> None:
    slots = [holding("2996", "0.010"), working("2998", Side.SELL, held="0.010", exchange_id="ex-1")]
    orders = [open_order(slots[1].client_order_id, Side.SELL, "3000")]
    report, after = run(slots, orders, "0.021")
    assert report.drift_ratio < D("0.05")
    assert report.corrected == (D("2996"),)
    assert after[D("2996")].position_qty == D("0.011")
    assert sum(s.position_qty for s in after.values()) == D("0.021")
    assert not report.drift_alert


def test_small_shortfall_is_taken_from_the_holdings() -> None:
    slots = [holding("2994", "0.010"), holding("2996", "0.010"), holding("2998", "0.010")]
    report, after = run(slots, [], "0.029")
    assert len(report.corrected) == 1
    assert sum(s.position_qty for s in after.values()) == D("0.029")
    assert not report.drift_alert


def test_drift_of_five_percent_or_more_raises_the_alert_and_changes_nothing() -> None:
    slots = [holding("2996", "0.010"), holding("2998", "0.010")]
    report, _ = run(slots, [], "0.019")
    assert report.drift_ratio == D("0.05")
    assert report.drift_alert
    assert report.required_trading_state is TradingStateKind.REDUCING
    assert report.writes == ()


def test_bare_position_is_rebuilt_into_slots_above_the_anchor() -> None:
    report, after = run([], [], "0.025", anchor="3000")
    assert report.rebuilt == (D("3000"), D("3002"), D("3004"))
    # 30 / 3000 = 0.010 and 30 / 3002 = 0.00999 -> 0.010 each; the rest, 0.005, on the third
    assert [after[p].position_qty for p in report.rebuilt] == [D("0.010"), D("0.010"), D("0.005")]
    assert not report.drift_alert
    # ... so take-profit closes are placed as price rises.
    strategy = Strategy(CONFIG, ETH, anchor=D("3000"))
    closes = [p for p in places(strategy.on_price(D("3000.50"), after, now_ms=0)) if p[0] == "SELL"]
    assert closes == [
        ("SELL", "3000.00", "3002.00", "0.010"),
        ("SELL", "3002.00", "3004.00", "0.010"),
        ("SELL", "3004.00", "3006.00", "0.005"),
    ]


def test_rebuild_merges_a_remainder_too_small_to_close_into_its_neighbour() -> None:
    report, after = run([], [], "0.011", anchor="3000")
    assert report.rebuilt == (D("3000"),)
    assert after[D("3000")].position_qty == D("0.011")


def test_bare_short_position_is_rebuilt_below_the_anchor() -> None:
    report, after = run([], [], "-0.020", anchor="3000")
    assert report.rebuilt == (D("2998"), D("3000"))
    assert sum(after[p].position_qty for p in report.rebuilt) == D("-0.020")


def test_bare_position_without_an_anchor_raises_the_alert() -> None:
    report, _ = run([], [], "0.025")
    assert report.drift_alert
    assert report.writes == ()


def test_reconciling_a_reconciled_state_changes_nothing() -> None:
    slots = [
        working("2998", exchange_id="ex-1"),
        working("2996", exchange_id="ex-2"),
        holding("2990", "0.010"),
        holding("2992", "0.010"),
    ]
    orders = [open_order(slots[0].client_order_id, Side.BUY, "2998", exchange_id="ex-1")]
    first, after = run(slots, orders, "0.0195")
    assert first.writes
    assert first.filled == ()
    assert first.vanished == (D("2996"),)
    assert first.corrected
    second, again = run(after.values(), orders, "0.0195")
    assert second.writes == ()
    assert again == after
    assert not second.drift_alert


def test_bare_position_with_an_unusable_anchor_raises_the_alert() -> None:
    report, _ = run([], [], "0.025", anchor="0")
    assert report.rebuilt == ()
    assert report.drift_alert
