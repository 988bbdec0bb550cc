"""Neutral mode: opening SELLs mirror the buys above the price; short inventory lives on the slot
keyed by its SELL price and is closed by a BUY one interval lower."""

from __future__ import annotations

from dataclasses import replace

from opensqt.grid import GridMode, PlaceOrder
from opensqt.model import PositionStatus, Side, TradingStateKind
from tests.unit.grid import Book, D, cancels, make_strategy, places, step

NEUTRAL = GridMode.NEUTRAL


def test_neutral_opens_buys_below_and_sells_above_nearest_first() -> None:
    actions = step(make_strategy(mode=NEUTRAL), Book(), "3000.00")
    # 3000 itself is inside the buffer on both sides; 30 / 3002 = 0.00999 -> 0.010
    assert places(actions) == [
        ("BUY", "2998.00", "2998.00", "0.010"),
        ("SELL", "3002.00", "3002.00", "0.010"),
        ("BUY", "2996.00", "2996.00", "0.010"),
        ("SELL", "3004.00", "3004.00", "0.010"),
    ]
    assert all(isinstance(a, PlaceOrder) and a.post_only and not a.reduce_only for a in actions)
    assert [a.client_order_id for a in actions if isinstance(a, PlaceOrder)][1] == "ETHUSDT-mm-300200-S-0"


def test_neutral_sells_at_centre_when_price_is_below_its_buffer() -> None:
    actions = step(make_strategy(mode=NEUTRAL), Book(), "2999.70")  # G 3000 > 2999.90
    assert ("SELL", "3000.00", "3000.00", "0.010") in places(actions)
    assert ("BUY", "3000.00", "3000.00", "0.010") not in places(actions)


def test_filled_opening_sell_leaves_short_inventory_on_its_slot() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")
    book.fill("3002")
    slot = book.slot("3002")
    assert slot.position_qty == D("-0.010")
    assert slot.position_status is PositionStatus.FILLED


def test_short_slot_is_closed_by_a_buy_one_interval_below_on_the_same_slot() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")
    book.fill("3002")
    actions = step(strategy, book, "3002.50")
    close = next(a for a in actions if isinstance(a, PlaceOrder) and a.slot_price == D("3002"))
    assert (close.side, close.price, close.qty) == (Side.BUY, D("3000.00"), D("0.010"))
    assert close.client_order_id == "ETHUSDT-mm-300200-B-1"
    assert not close.post_only
    # closing the short frees the slot: 0.010 x (3002 - 3000) = 0.020 gross
    book.fill("3002")
    assert book.slot("3002").position_qty == 0
    assert book.slot("3002").cycle == 2


def test_no_opening_buy_where_a_short_close_buy_already_sits() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")
    book.fill("3002")
    actions = places(step(strategy, book, "3001.00"))  # G 3002: 3000 is a buy level
    assert ("BUY", "3002.00", "3000.00", "0.010") in actions  # the short's close
    assert ("BUY", "3000.00", "3000.00", "0.010") not in actions  # no opening on top of it


def test_no_opening_sell_where_a_long_close_sell_already_sits() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("2998", "0.010")
    actions = places(step(strategy, book, "2999.50"))  # G 3000 > 2999.70: 3000 is a sell level
    assert ("SELL", "2998", "3000.00", "0.010") in actions
    assert ("SELL", "3000.00", "3000.00", "0.010") not in actions
    assert ("SELL", "3002.00", "3002.00", "0.010") in actions


def test_neutral_closes_are_not_reduce_only_while_active() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("2998", "0.010")
    book.holding("3002", "-0.009")
    actions = step(strategy, book, "3000.00", apply=False)
    closes = [a for a in actions if isinstance(a, PlaceOrder) and a.slot_price in (D("2998"), D("3002"))]
    assert {(a.side, a.price) for a in closes} == {(Side.SELL, D("3000.00")), (Side.BUY, D("3000.00"))}
    assert not any(a.reduce_only for a in closes)


def test_short_close_waits_until_slot_is_within_sell_window_below_price() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("3010", "-0.009")
    assert ("BUY", "3010", "3008.00", "0.009") not in places(step(strategy, book, "3016.01", apply=False))
    assert ("BUY", "3010", "3008.00", "0.009") in places(step(strategy, book, "3016.00", apply=False))


def test_short_dust_below_min_order_value_stays() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("3002", "-0.001")  # 3000 x 0.001 = 3 < 6
    actions = places(step(strategy, book, "3001.00", apply=False))
    assert all(p[1] != "3002" for p in actions)
    assert ("SELL", "3002.00", "3002.00", "0.009") not in actions


def test_trailing_cancels_opening_sells_far_above_centre() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")  # SELL 3002, 3004 and BUY 2998, 2996
    actions = step(strategy, book, "2994.00")  # G 2994: 3004 is 5 levels above, 3002 is 4
    assert ("ETHUSDT-mm-300400-S-0", "TRAILING") in cancels(actions)
    assert ("ETHUSDT-mm-300200-S-0", "TRAILING") not in cancels(actions)


def test_neutral_reducing_places_only_closes_that_shrink_the_net_position() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("2990", "0.010")
    book.holding("3010", "-0.009")
    book.holding("3012", "-0.009")
    book.holding("3014", "-0.009")  # net -0.017: only BUY closes, at most 0.017 of them
    actions = step(strategy, book, "3004.00", state=TradingStateKind.REDUCING, apply=False)
    assert places(actions) == [("BUY", "3010", "3008.00", "0.009")]
    assert all(a.reduce_only for a in actions if isinstance(a, PlaceOrder))


def test_neutral_reducing_cancels_opening_orders_on_both_sides_but_keeps_closes() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")
    book.fill("3002")
    step(strategy, book, "3001.00")  # close BUY 3000 for the short on 3002
    actions = step(strategy, book, "3001.00", state=TradingStateKind.REDUCING, apply=False)
    assert sorted(cancels(actions)) == [
        ("ETHUSDT-mm-299600-B-0", "REDUCING"),
        ("ETHUSDT-mm-299800-B-0", "REDUCING"),
        ("ETHUSDT-mm-300400-S-0", "REDUCING"),
        ("ETHUSDT-mm-300600-S-0", "REDUCING"),
    ]
    assert book.slot("3002").order_side is Side.BUY


def test_neutral_halted_cancels_everything() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "3000.00")
    actions = step(strategy, book, "3000.00", state=TradingStateKind.HALTED, apply=False)
    assert len(cancels(actions)) == 4
    assert places(actions) == []


def test_opening_sell_makes_way_for_a_close_at_its_price() -> None:
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    step(strategy, book, "2999.50")  # G 3000 > 2999.70: opening SELL 3000, BUY 2998, ...
    assert book.slot("3000").order_side is Side.SELL
    book.fill("2998")  # long on 2998: its close belongs at 3000
    actions = step(strategy, book, "2999.50", apply=False)
    assert cancels(actions) == [("ETHUSDT-mm-300000-S-0", "SUPERSEDED")]
    assert all(p[1] != "2998.00" for p in places(actions))  # the close waits for the cancel
    book.apply(actions)
    actions = step(strategy, book, "2999.50", now_ms=1)
    assert ("SELL", "2998.00", "3000.00", "0.010") in places(actions)
    assert ("SELL", "3000.00", "3000.00", "0.010") not in places(actions)


def working_close(book: Book, slot: str, side: Side, price: str, qty: str, *, reduce_only: bool) -> str:
    """A close working on ``slot`` (acknowledged), sent with or without reduce-only."""
    cycle = book.slots[D(slot)].cycle
    book.place(
        PlaceOrder(
            slot_price=D(slot),
            side=side,
            price=D(price),
            qty=D(qty),
            post_only=False,
            reduce_only=reduce_only,
            client_order_id=f"ETHUSDT-mm-{int(D(slot) * 100)}-{side.value[0]}-{cycle}",
        )
    )
    book.put(replace(book.slot(slot), order_reduce_only=reduce_only))
    return book.slot(slot).client_order_id


def test_neutral_reducing_cancels_a_close_sent_without_reduce_only_that_would_grow_the_net() -> None:
    # net +0.005 long; the short's close BUY (sent while ACTIVE, no flag) would make it +0.010
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("2996", "0.010")
    book.holding("3004", "-0.005")
    cid = working_close(book, "3004", Side.BUY, "3002.00", "0.005", reduce_only=False)
    actions = step(strategy, book, "3003.00", state=TradingStateKind.REDUCING, apply=False)
    assert cancels(actions) == [(cid, "REDUCING")]
    assert places(actions) == []  # the long's close (0.010) is more than the net


def test_neutral_reducing_cancels_unflagged_closes_that_would_take_the_net_past_flat() -> None:
    # net -0.008: each short close BUYs 0.009, which alone would leave the net long
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    book.holding("2990", "0.010")
    book.holding("3010", "-0.009")
    book.holding("3012", "-0.009")
    first = working_close(book, "3010", Side.BUY, "3008.00", "0.009", reduce_only=False)
    second = working_close(book, "3012", Side.BUY, "3010.00", "0.009", reduce_only=False)
    actions = step(strategy, book, "3009.00", state=TradingStateKind.REDUCING, apply=False)
    assert sorted(cancels(actions)) == sorted([(first, "REDUCING"), (second, "REDUCING")])


def test_neutral_reducing_keeps_unflagged_closes_within_the_net_after_the_reduce_only_ones() -> None:
    # net -0.026 short: a reduce-only close of 0.009 stands; of the unflagged ones the nearest
    # fit in the 0.017 left, the farthest does not
    strategy, book = make_strategy(mode=NEUTRAL), Book()
    for slot in ("3010", "3012", "3014"):
        book.holding(slot, "-0.009")
    book.holding("3016", "-0.008")  # 0.035 short
    book.holding("2990", "0.009")
    working_close(book, "3016", Side.BUY, "3014.00", "0.008", reduce_only=True)
    working_close(book, "3010", Side.BUY, "3008.00", "0.009", reduce_only=False)
    working_close(book, "3012", Side.BUY, "3010.00", "0.009", reduce_only=False)
    far = working_close(book, "3014", Side.BUY, "3012.00", "0.009", reduce_only=False)
    actions = step(strategy, book, "3009.00", state=TradingStateKind.REDUCING, apply=False)
    # room 0.026 - 0.008 = 0.018: the two nearest (0.018) stay, the farthest goes
    assert cancels(actions) == [(far, "REDUCING")]
