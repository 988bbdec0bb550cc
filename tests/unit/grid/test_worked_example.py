"""behaviour.md §1 worked example, step by step (anchor 3000, I 2, notional 30, windows 3/3,
tick 0.01, step 0.001, min value 6)."""

from __future__ import annotations

from opensqt.grid import PlaceOrder
from opensqt.model import LockStatus, PositionStatus, Side
from tests.unit.grid import Book, D, make_strategy, places, step


def test_step1_price_at_anchor_skips_3000_and_buys_2998_and_2996() -> None:
    strategy, book = make_strategy(), Book()
    actions = step(strategy, book, "3000.00")
    assert places(actions) == [
        ("BUY", "2998.00", "2998.00", "0.010"),
        ("BUY", "2996.00", "2996.00", "0.010"),
    ]
    assert all(isinstance(a, PlaceOrder) and a.post_only and not a.reduce_only for a in actions)
    assert [a.client_order_id for a in actions] == ["ETHUSDT-mm-299800-B-0", "ETHUSDT-mm-299600-B-0"]


def test_step1_at_3000_30_also_buys_3000() -> None:
    # "Had the first price been 3000.30": anchor 3000, G 3000, and 3000 < 3000.30 - 0.2
    actions = step(make_strategy(anchor=D("3000")), Book(), "3000.30")
    assert places(actions) == [
        ("BUY", "3000.00", "3000.00", "0.010"),
        ("BUY", "2998.00", "2998.00", "0.010"),
        ("BUY", "2996.00", "2996.00", "0.010"),
    ]


def test_step2_buy_fill_makes_slot_2998_filled() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    book.fill("2998")
    slot = book.slot("2998")
    assert slot.position_status is PositionStatus.FILLED
    assert slot.position_qty == D("0.010")
    assert not slot.has_order
    assert slot.lock_status is LockStatus.FREE
    assert slot.cycle == 1


def test_step3_price_2997_50_rounds_centre_to_2998_adds_buy_2994_and_close_3000() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    book.fill("2998")
    assert strategy.centre(D("2997.50")) == D("2998")  # (2997.50 - 3000) / 2 = -1.25 -> -1
    actions = step(strategy, book, "2997.50")
    assert sorted(places(actions)) == [
        ("BUY", "2994.00", "2994.00", "0.010"),
        ("SELL", "2998.00", "3000.00", "0.010"),
    ]
    close = next(a for a in actions if isinstance(a, PlaceOrder) and a.side is Side.SELL)
    assert close.reduce_only
    assert close.client_order_id == "ETHUSDT-mm-299800-S-1"
    # the close is tracked on the slot of its buy, not on slot 3000
    assert book.slot("2998").order_side is Side.SELL
    assert D("3000") not in book.slots


def test_step4_close_fill_empties_slot_and_rebuys_2998_with_next_cycle_id() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    book.fill("2998")
    step(strategy, book, "2997.50")
    book.fill("2998")
    slot = book.slot("2998")
    assert slot.position_status is PositionStatus.EMPTY
    assert slot.position_qty == 0
    assert slot.cycle == 2
    actions = step(strategy, book, "3000.10")  # G 3000; 3000 >= 2999.9 skipped, 2998 < 2999.9
    assert places(actions) == [("BUY", "2998.00", "2998.00", "0.010")]
    assert actions[0].client_order_id == "ETHUSDT-mm-299800-B-2"


def test_worked_example_cycle_grosses_0_02_usdt() -> None:
    strategy, book = make_strategy(), Book()
    buys = step(strategy, book, "3000.00")
    book.fill("2998")
    sells = step(strategy, book, "2997.50")
    buy = next(a for a in buys if isinstance(a, PlaceOrder) and a.slot_price == D("2998"))
    sell = next(a for a in sells if isinstance(a, PlaceOrder) and a.side is Side.SELL)
    assert sell.qty == buy.qty
    assert sell.price * sell.qty - buy.price * buy.qty == D("0.02")
