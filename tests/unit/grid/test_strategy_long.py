"""behaviour.md §1 rules in long mode: centre, buffer, budget, closes, trailing, post-only,
margin lock, trading states."""

from __future__ import annotations

from dataclasses import replace

import pytest

from opensqt.grid import CancelOrder, PlaceOrder, Strategy
from opensqt.grid.slots import record_post_only_reject
from opensqt.model import Instrument, MarketType, OrderStatus, Side, TradingStateKind
from tests.unit.grid import ETH, Book, D, cancels, make_config, make_strategy, places, step

ACTIVE = TradingStateKind.ACTIVE
REDUCING = TradingStateKind.REDUCING
HALTED = TradingStateKind.HALTED


# -- centre and buffer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "centre"),
    [
        ("3000.00", "3000"),
        ("2997.50", "2998"),  # -1.25 -> -1
        ("2997.00", "2996"),  # -1.5 -> -2 (half away from zero)
        ("3003.00", "3004"),  # +1.5 -> +2
        ("3002.99", "3002"),  # +1.495 -> +1
        ("3000.99", "3000"),
        ("3001.00", "3002"),  # +0.5 -> +1
    ],
)
def test_centre_rounds_steps_half_away_from_zero(price: str, centre: str) -> None:
    assert make_strategy().centre(D(price)) == D(centre)


def test_anchor_is_fixed_at_first_price_and_then_never_moves() -> None:
    strategy = Strategy(make_config(), ETH)
    step(strategy, Book(), "3001.37")
    step(strategy, Book(), "2950.00")
    assert strategy.anchor == D("3001.37")


def test_restored_anchor_gives_the_same_levels() -> None:
    strategy = Strategy(make_config(), ETH, anchor=D("3001.37"))
    assert places(step(strategy, Book(), "2990.00"))[0] == ("BUY", "2989.37", "2989.37", "0.010")


def test_centre_without_anchor_is_an_error() -> None:
    with pytest.raises(ValueError, match="anchor"):
        Strategy(make_config(), ETH).centre(D("3000"))


@pytest.mark.parametrize(
    ("price", "first_buy"),
    [("3000.20", "2998.00"), ("3000.21", "3000.00"), ("3000.19", "2998.00")],
)
def test_buy_level_must_be_strictly_below_price_minus_tenth_interval(price: str, first_buy: str) -> None:
    assert places(step(make_strategy(), Book(), price))[0][1] == first_buy


# -- opening buys -----------------------------------------------------------------------------


def test_buys_go_high_to_low_within_window() -> None:
    actions = step(make_strategy(buy_window=5), Book(), "3000.50")
    assert [p[1] for p in places(actions)] == ["3000.00", "2998.00", "2996.00", "2994.00", "2992.00"]


def test_no_buy_on_slot_holding_inventory() -> None:
    strategy, book = make_strategy(), Book()
    book.holding("2998", "0.010")
    assert places(step(strategy, book, "3000.00")) == [
        ("SELL", "2998", "3000.00", "0.010"),  # its close instead
        ("BUY", "2996.00", "2996.00", "0.010"),
    ]


def test_no_second_order_on_slot_with_a_working_order() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    assert step(strategy, book, "3000.00") == []


def test_no_buy_on_slot_whose_order_is_pending() -> None:
    strategy, book = make_strategy(), Book()
    first = strategy.on_price(D("3000.00"), book.slots, now_ms=0)
    for action in first:
        assert isinstance(action, PlaceOrder)
        book.place(action, acknowledge=False)
    assert strategy.on_price(D("3000.00"), book.slots, now_ms=1) == []


def test_qty_is_notional_over_level_rounded_half_away_from_zero_to_step() -> None:
    # 32 / 2998 = 0.010674 -> 0.011 and 32 / 2996 = 0.010681 -> 0.011 (rounding down: 0.010)
    actions = step(make_strategy(order_notional=D("32")), Book(), "3000.00")
    assert [p[3] for p in places(actions)] == ["0.011", "0.011"]
    # 45 / 2998 = 0.01501 -> 0.015
    actions = step(make_strategy(order_notional=D("45")), Book(), "3000.00")
    assert [p[3] for p in places(actions)] == ["0.015", "0.015"]
    # 31.479 / 2998 = 0.0105 exactly: half away from zero is 0.011 (half to even: 0.010);
    # 31.479 / 2996 = 0.010507 -> 0.011
    actions = step(make_strategy(order_notional=D("31.479")), Book(), "3000.00")
    assert [p[3] for p in places(actions)] == ["0.011", "0.011"]


def test_levels_below_min_order_value_are_skipped() -> None:
    # 0.010 x 3000 = 30 passes; 0.010 x 2998 = 29.98 does not
    actions = step(make_strategy(min_order_value=D("30")), Book(), "3000.30")
    assert places(actions) == [("BUY", "3000.00", "3000.00", "0.010")]


def test_levels_below_instrument_min_notional_or_min_qty_are_skipped() -> None:
    strict = replace(ETH, min_notional=D("29.97"))
    actions = step(Strategy(make_config(), strict, anchor=D("3000")), Book(), "3000.30")
    assert [p[1] for p in places(actions)] == ["3000.00", "2998.00"]  # 2996 x 0.010 = 29.96
    lots = replace(ETH, step_size=D("0.01"), min_qty=D("0.02"))
    assert step(Strategy(make_config(), lots, anchor=D("3000")), Book(), "3000.30") == []


def test_every_order_is_on_tick_and_step() -> None:
    coarse = Instrument(
        venue="v",
        symbol="SOLUSDT",
        market_type=MarketType.PERPETUAL,
        base="SOL",
        quote="USDT",
        tick_size=D("0.05"),
        step_size=D("0.1"),
        min_qty=D("0.1"),
        min_notional=D("5"),
    )
    strategy = Strategy(make_config(price_interval=D("0.35"), order_notional=D("25")), coarse)
    actions = step(strategy, Book(symbol="SOLUSDT"), "143.20")
    assert places(actions) == [
        ("BUY", "142.85", "142.85", "0.2"),  # 25 / 142.85 = 0.175 -> 0.2
        ("BUY", "142.50", "142.50", "0.2"),
    ]
    for action in actions:
        assert isinstance(action, PlaceOrder)
        coarse.check_order(action.price, action.qty)


def test_budget_limits_new_buys_to_max_open_orders_minus_working() -> None:
    strategy, book = make_strategy(max_open_orders=3, buy_window=5), Book()
    step(strategy, book, "3000.00")
    assert len(book.working()) == 3
    assert [p[1] for p in places(step(strategy, book, "2995.00"))] == []  # budget spent


def test_budget_counts_every_working_order_including_closes() -> None:
    strategy, book = make_strategy(max_open_orders=2), Book()
    step(strategy, book, "3000.00")  # BUY 2998, 2996
    book.fill("2998")
    actions = step(strategy, book, "2997.50")  # one slot free: the close wins it
    assert places(actions) == [("SELL", "2998.00", "3000.00", "0.010")]
    assert len(book.working()) == 2


# -- closes -----------------------------------------------------------------------------------


def test_close_is_reduce_only_sell_at_slot_plus_interval_for_the_slot_qty() -> None:
    strategy, book = make_strategy(), Book()
    book.holding("2998", "0.013")
    actions = step(strategy, book, "2999.00", apply=False)
    close = actions[0]
    assert isinstance(close, PlaceOrder)
    assert (close.side, close.slot_price, close.price, close.qty) == (
        Side.SELL,
        D("2998"),
        D("3000"),
        D("0.013"),
    )
    assert close.reduce_only
    assert not close.post_only


def test_close_waits_until_slot_is_within_sell_window_above_price() -> None:
    strategy, book = make_strategy(), Book()
    book.holding("3010", "0.010")
    assert ("SELL", "3010", "3012.00", "0.010") not in places(step(strategy, book, "3003.99", apply=False))
    assert ("SELL", "3010", "3012.00", "0.010") in places(step(strategy, book, "3004.00", apply=False))


def test_close_below_price_is_placed_to_take_profit_now() -> None:
    strategy, book = make_strategy(), Book()
    book.holding("2980", "0.010")
    assert places(step(strategy, book, "3000.00", apply=False))[0] == ("SELL", "2980", "2982.00", "0.010")


def test_dust_below_min_order_value_stays_without_close() -> None:
    strategy, book = make_strategy(), Book()
    book.holding("2998", "0.001")  # 3000 x 0.001 = 3 < 6
    actions = step(strategy, book, "2999.00", apply=False)
    assert all(p[0] == "BUY" for p in places(actions))
    assert ("BUY", "2998.00", "2998.00", "0.010") not in places(actions)  # the slot is not empty


def test_closes_go_nearest_to_price_first_when_budget_is_short() -> None:
    strategy, book = make_strategy(max_open_orders=2), Book()
    for price in ("2990", "2994", "2998"):
        book.holding(price, "0.010")
    actions = step(strategy, book, "2995.00", apply=False)
    assert places(actions) == [
        ("SELL", "2994", "2996.00", "0.010"),
        ("SELL", "2998", "3000.00", "0.010"),
    ]


def test_falling_price_does_not_cancel_closes() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    book.fill("2998")
    step(strategy, book, "2997.50")
    for price in ("2990.00", "2970.00", "2950.00"):
        assert cancels(step(strategy, book, price)) == []
    assert book.slot("2998").order_side is Side.SELL


# -- trailing ---------------------------------------------------------------------------------


def test_trailing_cancels_buys_more_than_window_plus_hysteresis_below_centre() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")  # BUY 2998, 2996
    actions = step(strategy, book, "3006.00")  # G 3006: 2998 is 4 levels below (kept), 2996 is 5
    assert cancels(actions) == [("ETHUSDT-mm-299600-B-0", "TRAILING")]
    # 30 / 3004 = 0.00998 rounds to 0.010
    assert places(actions) == [("BUY", "3004.00", "3004.00", "0.010"), ("BUY", "3002.00", "3002.00", "0.010")]


def test_trailing_hysteresis_zero_cancels_right_outside_the_window() -> None:
    strategy, book = make_strategy(trail_hysteresis=0), Book()
    step(strategy, book, "3000.00")
    assert cancels(step(strategy, book, "3004.00")) == [("ETHUSDT-mm-299600-B-0", "TRAILING")]


def test_price_oscillating_around_a_level_does_not_flap_orders() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    step(strategy, book, "3006.00")
    step(strategy, book, "3004.90")
    churn = []
    for _ in range(10):
        churn += step(strategy, book, "3006.00")
        churn += step(strategy, book, "3004.90")
        churn += step(strategy, book, "3005.40")
    assert churn == []


def test_window_follows_price_up_level_by_level() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    for price in ("3002.00", "3004.00", "3006.00", "3008.00", "3010.00"):
        step(strategy, book, price)
    assert sorted(str(p) for p in book.working()) == ["3002.00", "3004.00", "3006.00", "3008.00"]


def test_pending_order_is_cancelled_only_once_acknowledged() -> None:
    strategy, book = make_strategy(), Book()
    for action in strategy.on_price(D("3000.00"), book.slots, now_ms=0):
        assert isinstance(action, PlaceOrder)
        book.place(action, acknowledge=False)
    assert cancels(strategy.on_price(D("3020.00"), book.slots, now_ms=1)) == []
    assert cancels(strategy.on_price(D("3020.00"), book.slots, now_ms=2, trading_state=HALTED)) == []


# -- post-only degradation --------------------------------------------------------------------


def test_after_three_post_only_rejects_the_slot_buys_without_post_only() -> None:
    strategy, book = make_strategy(buy_window=1), Book()
    ids = []
    flags = []
    for attempt in range(5):
        actions = step(strategy, book, "3000.50", now_ms=attempt)
        (buy,) = actions
        assert isinstance(buy, PlaceOrder)
        ids.append(buy.client_order_id)
        flags.append(buy.post_only)
        book.put(record_post_only_reject(book.slot("3000"), buy.client_order_id))
    assert flags == [True, True, True, False, False]
    assert ids == [f"ETHUSDT-mm-300000-B-{n}" for n in range(5)]


def test_post_only_max_rejects_zero_never_asks_for_post_only() -> None:
    actions = step(make_strategy(post_only_max_rejects=0), Book(), "3000.00")
    assert actions
    assert all(isinstance(a, PlaceOrder) and not a.post_only for a in actions)


# -- margin lock ------------------------------------------------------------------------------


def test_margin_error_cancels_buys_and_places_nothing_until_lock_expires() -> None:
    strategy, book = make_strategy(margin_lock_ms=60_000), Book()
    step(strategy, book, "3000.00", now_ms=0)
    book.fill("2998")
    step(strategy, book, "2997.50", now_ms=10)  # close SELL 3000 on slot 2998, BUY 2994
    book.fill("2996")
    strategy.on_margin_error(now_ms=1_000)
    assert strategy.margin_locked_until_ms == 61_000
    actions = step(strategy, book, "2995.00", now_ms=1_001)
    assert sorted(cancels(actions)) == [("ETHUSDT-mm-299400-B-0", "MARGIN_LOCK")]
    assert places(actions) == []  # not even the close of 2996
    assert step(strategy, book, "2995.00", now_ms=60_999) == []
    resumed = places(step(strategy, book, "2995.00", now_ms=61_000))
    assert ("SELL", "2996.00", "2998.00", "0.010") in resumed
    assert ("BUY", "2994.00", "2994.00", "0.010") in resumed


def test_restored_margin_lock_is_honoured() -> None:
    strategy = Strategy(make_config(), ETH, anchor=D("3000"), margin_locked_until_ms=5_000)
    assert step(strategy, Book(), "3000.00", now_ms=4_999) == []
    assert step(strategy, Book(), "3000.00", now_ms=5_000) != []


# -- trading states ---------------------------------------------------------------------------


def _book_with_buys_and_a_close() -> tuple[Strategy, Book]:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    book.fill("2998")
    step(strategy, book, "2997.50")  # close on 2998; buys on 2996 and 2994
    book.fill("2996")
    return strategy, book


def test_reducing_cancels_working_buys_once_and_places_only_reduce_only_closes() -> None:
    strategy, book = _book_with_buys_and_a_close()
    actions = step(strategy, book, "2995.50", now_ms=100, state=REDUCING, apply=False)
    assert cancels(actions) == [("ETHUSDT-mm-299400-B-0", "REDUCING")]
    assert places(actions) == [("SELL", "2996.00", "2998.00", "0.010")]
    assert all(a.reduce_only for a in actions if isinstance(a, PlaceOrder))
    for action in actions:
        if isinstance(action, PlaceOrder):
            book.place(action)
    # not confirmed yet: not asked again before the retry interval ...
    assert step(strategy, book, "2995.50", now_ms=200, state=REDUCING, apply=False) == []
    # ... and asked again once it passed
    retry = step(strategy, book, "2995.50", now_ms=5_100, state=REDUCING, apply=False)
    assert cancels(retry) == [("ETHUSDT-mm-299400-B-0", "REDUCING")]


def test_reducing_never_places_opening_buys() -> None:
    strategy, book = make_strategy(), Book()
    assert step(strategy, book, "3000.00", state=REDUCING) == []


def test_back_to_active_resumes_buys() -> None:
    strategy, book = _book_with_buys_and_a_close()
    step(strategy, book, "2995.50", state=REDUCING)  # cancels confirmed by the book
    assert "2994.00" not in {str(p) for p in book.working()}
    resumed = places(step(strategy, book, "2995.50", state=ACTIVE))
    assert ("BUY", "2994.00", "2994.00", "0.010") in resumed


def test_halted_cancels_every_working_order_and_places_nothing() -> None:
    strategy, book = _book_with_buys_and_a_close()
    actions = step(strategy, book, "2995.50", state=HALTED, apply=False)
    assert sorted(cancels(actions)) == [
        ("ETHUSDT-mm-299400-B-0", "HALTED"),
        ("ETHUSDT-mm-299800-S-1", "HALTED"),
    ]
    assert places(actions) == []
    assert step(strategy, book, "2995.50", now_ms=1, state=HALTED) == []


def test_cancel_requests_are_forgotten_once_the_order_is_gone() -> None:
    strategy, book = make_strategy(), Book()
    step(strategy, book, "3000.00")
    first = step(strategy, book, "3000.00", now_ms=1, state=HALTED, apply=False)
    assert len(cancels(first)) == 2
    for action in first:
        assert isinstance(action, CancelOrder)
        book.confirm_cancel(action)
    step(strategy, book, "3000.00", now_ms=2)  # new buys with new cycle ids
    again = step(strategy, book, "3000.00", now_ms=3, state=HALTED, apply=False)
    assert sorted(cancels(again)) == [
        ("ETHUSDT-mm-299600-B-1", "HALTED"),
        ("ETHUSDT-mm-299800-B-1", "HALTED"),
    ]


# -- hot path ---------------------------------------------------------------------------------


def test_with_slots_version_a_price_that_crosses_nothing_changes_nothing() -> None:
    strategy, book = make_strategy(), Book()
    book.apply(strategy.on_price(D("3000.00"), book.slots, now_ms=0, slots_version=book.version))
    for price in ("3000.01", "3000.10", "2999.20", "3000.19"):
        assert strategy.on_price(D(price), book.slots, now_ms=0, slots_version=book.version) == []
    crossed = strategy.on_price(D("3000.25"), book.slots, now_ms=0, slots_version=book.version)
    assert places(crossed) == [("BUY", "3000.00", "3000.00", "0.010")]


def test_with_slots_version_a_slot_change_is_seen() -> None:
    strategy, book = make_strategy(), Book()
    book.apply(strategy.on_price(D("3000.00"), book.slots, now_ms=0, slots_version=book.version))
    assert strategy.on_price(D("2999.20"), book.slots, now_ms=0, slots_version=book.version) == []
    book.update("2998", OrderStatus.FILLED, "0.010")
    actions = strategy.on_price(D("2999.20"), book.slots, now_ms=0, slots_version=book.version)
    assert places(actions) == [("SELL", "2998.00", "3000.00", "0.010")]


def test_with_slots_version_a_close_entering_the_window_is_seen() -> None:
    strategy, book = make_strategy(max_open_orders=2), Book()
    book.holding("3010", "0.010")
    book.apply(strategy.on_price(D("3000.00"), book.slots, now_ms=0, slots_version=book.version))
    assert strategy.on_price(D("3003.10"), book.slots, now_ms=0, slots_version=book.version) == []
    actions = strategy.on_price(D("3004.00"), book.slots, now_ms=0, slots_version=book.version)
    assert places(actions) == []  # budget spent by the two buys
    book.slots.pop(D("2996.00"))
    book.version += 1
    actions = strategy.on_price(D("3004.00"), book.slots, now_ms=0, slots_version=book.version)
    assert places(actions) == [("SELL", "3010", "3012.00", "0.010")]


def test_cancel_asked_once_is_not_asked_again_when_price_wobbles_back() -> None:
    strategy, book = make_strategy(cancel_retry_ms=10_000), Book()
    step(strategy, book, "3000.00")
    first = step(strategy, book, "3006.00", now_ms=1, apply=False)  # trailing cancel of 2996
    assert cancels(first) == [("ETHUSDT-mm-299600-B-0", "TRAILING")]
    book.apply([a for a in first if isinstance(a, PlaceOrder)])  # the cancel stays unconfirmed
    step(strategy, book, "3003.00", now_ms=2)  # G 3004: 2996 is inside the band again
    assert cancels(step(strategy, book, "3006.00", now_ms=3)) == []
    assert cancels(step(strategy, book, "3006.00", now_ms=10_001)) == [("ETHUSDT-mm-299600-B-0", "TRAILING")]


def test_unsent_placement_is_asked_again_with_the_same_client_id() -> None:
    strategy, book = make_strategy(), Book()
    first = strategy.on_price(D("3000.00"), book.slots, now_ms=0)
    again = strategy.on_price(D("3000.00"), book.slots, now_ms=1)  # engine never applied `first`
    assert first == again
    assert [a.client_order_id for a in again] == ["ETHUSDT-mm-299800-B-0", "ETHUSDT-mm-299600-B-0"]
