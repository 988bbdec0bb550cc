"""The matching core: fills, fees, order types, positions, funding, liquidation, snapshots."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.exchange import (
    FeeSchedule,
    FillRule,
    MarketRules,
    MatchingCore,
    OrderRejected,
    OrderRequest,
    RejectReason,
    UnknownOrder,
    apply_perp_fill,
)
from opensqt.model import Instrument, MarketType, OrderStatus, OrderType, Side, TimeInForce

D = Decimal
PERP = Instrument(
    "sim", "BTCUSDT", MarketType.PERPETUAL, "BTC", "USDT", D("0.1"), D("0.001"), D("0.001"), D(5), 8
)
SPOT = Instrument(
    "sim-spot", "BTCUSDT", MarketType.SPOT, "BTC", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D(5)
)
FEES = FeeSchedule(maker=D("0.0002"), taker=D("0.0005"))


def make_core(
    fill_rule: FillRule = FillRule.THROUGH, balance: str = "10000", price: str = "30000"
) -> MatchingCore:
    core = MatchingCore(fill_rule=fill_rule)
    core.add_market(PERP, MarketRules(fees=FEES))
    core.add_market(SPOT, MarketRules(fees=FEES))
    core.open_account("a", {"USDT": D(balance)})
    core.set_leverage("a", "sim", "BTCUSDT", D(5))
    core.set_mark("sim", "BTCUSDT", D(price))
    core.set_mark("sim-spot", "BTCUSDT", D(price))
    return core


def limit(side: Side, qty: str, price: str, cid: str, **kwargs: object) -> OrderRequest:
    return OrderRequest("a", "sim", "BTCUSDT", side, OrderType.LIMIT, D(qty), D(price), cid, **kwargs)  # type: ignore[arg-type]


def market(side: Side, qty: str, venue: str = "sim", **kwargs: object) -> OrderRequest:
    return OrderRequest("a", venue, "BTCUSDT", side, OrderType.MARKET, D(qty), **kwargs)  # type: ignore[arg-type]


def test_resting_buy_fills_only_when_the_price_trades_through_it() -> None:
    core = make_core()
    (event,) = core.submit(limit(Side.BUY, "0.01", "29900", "b1", post_only=True), 1)
    assert event.order.status is OrderStatus.NEW
    assert core.sweep("sim", "BTCUSDT", D("29900"), 2) == []
    (fill,) = core.sweep("sim", "BTCUSDT", D("29899.9"), 3)
    assert fill.order.status is OrderStatus.FILLED
    assert fill.trade is not None
    assert (fill.trade.price, fill.trade.quantity, fill.trade.is_maker) == (D("29900"), D("0.01"), True)
    assert fill.trade.fee == D("29900") * D("0.01") * D("0.0002")


def test_touch_rule_fills_a_resting_order_at_its_price() -> None:
    core = make_core(FillRule.TOUCH)
    core.submit(limit(Side.BUY, "0.01", "29900", "b1"), 1)
    assert len(core.sweep("sim", "BTCUSDT", D("29900"), 2)) == 1


def test_rising_price_fills_sells_in_price_order() -> None:
    core = make_core()
    core.submit(market(Side.BUY, "0.02"), 1)
    core.submit(limit(Side.SELL, "0.01", "30200", "s2", reduce_only=True), 2)
    core.submit(limit(Side.SELL, "0.01", "30100", "s1", reduce_only=True), 3)
    fills = core.sweep("sim", "BTCUSDT", D("30300"), 4)
    assert [f.order.client_order_id for f in fills] == ["s1", "s2"]


def test_post_only_order_that_would_take_expires_instead() -> None:
    core = make_core()
    (event,) = core.submit(limit(Side.BUY, "0.01", "30100", "b1", post_only=True), 1)
    assert event.order.status is OrderStatus.EXPIRED
    assert event.trade is None
    assert core.open_orders("a") == []


def test_marketable_limit_fills_at_once_as_taker_at_the_market_price() -> None:
    core = make_core()
    (event,) = core.submit(limit(Side.BUY, "0.01", "30100", "b1"), 1)
    assert event.trade is not None
    assert (event.trade.price, event.trade.is_maker) == (D("30000"), False)
    assert event.trade.fee == D("30000") * D("0.01") * D("0.0005")


def test_ioc_and_fok_that_cannot_fill_expire() -> None:
    core = make_core()
    for tif in (TimeInForce.IOC, TimeInForce.FOK):
        (event,) = core.submit(limit(Side.BUY, "0.01", "29000", f"x-{tif}", time_in_force=tif), 1)
        assert event.order.status is OrderStatus.EXPIRED


def test_perp_position_averages_entry_and_realizes_pnl_on_close() -> None:
    core = make_core()
    core.submit(market(Side.BUY, "0.01"), 1)
    core.set_mark("sim", "BTCUSDT", D("31000"))
    core.submit(market(Side.BUY, "0.01"), 2)
    position = core.position("a", "sim", "BTCUSDT")
    assert (position.size, position.entry_price) == (D("0.02"), D("30500"))
    core.set_mark("sim", "BTCUSDT", D("32000"))
    assert core.position("a", "sim", "BTCUSDT").unrealized_pnl == D("30")
    (event,) = core.submit(market(Side.SELL, "0.01", reduce_only=True), 3)
    assert event.realized_pnl == D("15")
    assert core.position("a", "sim", "BTCUSDT").size == D("0.01")


def test_apply_perp_fill_flips_at_the_fill_price() -> None:
    assert apply_perp_fill(D(1), D(100), Side.SELL, D(3), D(110)) == (D(-2), D(110), D(10))
    assert apply_perp_fill(D(-1), D(100), Side.BUY, D(1), D(90)) == (D(0), D(0), D(10))


def test_reduce_only_is_refused_without_a_position_to_reduce() -> None:
    core = make_core()
    with pytest.raises(OrderRejected) as refused:
        core.submit(limit(Side.SELL, "0.01", "30100", "s1", reduce_only=True), 1)
    assert refused.value.reason is RejectReason.REDUCE_ONLY_REJECTED


def test_reduce_only_fill_is_clamped_to_the_position_and_the_rest_expires() -> None:
    core = make_core()
    core.submit(market(Side.BUY, "0.02"), 1)
    core.submit(limit(Side.SELL, "0.02", "30100", "s1", reduce_only=True), 2)
    core.submit(market(Side.SELL, "0.01", reduce_only=True), 3)
    (event,) = core.sweep("sim", "BTCUSDT", D("30200"), 4)
    assert event.order.status is OrderStatus.EXPIRED
    assert event.order.filled_qty == D("0.01")
    assert core.position("a", "sim", "BTCUSDT").size == 0


def test_insufficient_margin_is_refused_and_changes_nothing() -> None:
    core = make_core(balance="100")
    before = core.to_state()
    with pytest.raises(OrderRejected) as refused:
        core.submit(limit(Side.BUY, "0.1", "29000", "big"), 1)
    assert refused.value.reason is RejectReason.INSUFFICIENT_MARGIN
    assert core.to_state() == before


def test_open_orders_hold_margin() -> None:
    core = make_core(balance="1000")  # 5x: 5000 of notional
    core.submit(limit(Side.BUY, "0.1", "29000", "b1"), 1)  # 2900 notional = 580 margin
    with pytest.raises(OrderRejected):
        core.submit(limit(Side.BUY, "0.1", "28000", "b2"), 2)


def test_spot_buy_locks_quote_and_a_sell_needs_the_base() -> None:
    core = make_core(balance="1000")
    spot_buy = OrderRequest(
        "a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("29000"), "sb"
    )
    core.submit(spot_buy, 1)
    account = core.account("a")
    assert account.free("USDT") < D(1000) - D(870)
    with pytest.raises(OrderRejected) as refused:
        core.submit(market(Side.SELL, "0.01", venue="sim-spot"), 2)
    assert refused.value.reason is RejectReason.INSUFFICIENT_BALANCE
    core.sweep("sim-spot", "BTCUSDT", D("28999"), 3)
    assert account.balance("BTC") == D("0.03")
    assert account.locked == {}


def test_margin_order_on_spot_may_borrow() -> None:
    core = make_core()
    core.submit(market(Side.SELL, "0.01", venue="sim-spot", market_type=MarketType.MARGIN), 1)
    assert core.account("a").balance("BTC") == D("-0.01")


def test_funding_is_paid_by_longs_when_the_rate_is_positive() -> None:
    core = make_core()
    core.submit(market(Side.BUY, "0.1"), 1)
    (payment,) = core.settle_funding("sim", "BTCUSDT", D("0.0001"), 2, D("30000"))
    assert payment.amount == D("-0.3")
    assert core.account("a").funding_paid == D("-0.3")


def test_long_is_liquidated_where_the_price_crosses_its_liquidation_price() -> None:
    core = make_core(balance="1000")
    core.submit(market(Side.BUY, "0.15"), 1)
    core.submit(limit(Side.BUY, "0.001", "10000", "deep"), 2)
    liq = core.liquidation_price("a", "sim", "BTCUSDT")
    assert D(23000) < liq < D(24000)
    low, _ = core.quiet_range("sim", "BTCUSDT")
    assert low is not None
    assert low > liq
    assert core.sweep("sim", "BTCUSDT", low, 3) == []
    events = core.sweep("sim", "BTCUSDT", D(20000), 4)
    assert [e.order.status for e in events] == [OrderStatus.CANCELED, OrderStatus.FILLED]
    assert events[-1].liquidation
    assert core.position("a", "sim", "BTCUSDT").size == 0


def test_quote_fills_a_buy_the_ask_crosses() -> None:
    core = make_core()
    core.submit(limit(Side.BUY, "0.01", "29900", "b1"), 1)
    assert core.on_quote("sim", "BTCUSDT", D("29899.9"), D("29900"), 2) == []
    (event,) = core.on_quote("sim", "BTCUSDT", D("29899.8"), D("29899.9"), 3)
    assert event.order.status is OrderStatus.FILLED


def test_cancel_of_an_unknown_order_raises_and_a_duplicate_client_id_is_refused() -> None:
    core = make_core()
    with pytest.raises(UnknownOrder):
        core.cancel("a", "sim", "BTCUSDT", 1, client_order_id="nope")
    core.submit(limit(Side.BUY, "0.01", "29000", "same"), 1)
    with pytest.raises(OrderRejected) as refused:
        core.submit(limit(Side.BUY, "0.01", "28000", "same"), 2)
    assert refused.value.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    event = core.cancel("a", "sim", "BTCUSDT", 3, client_order_id="same")
    assert event.order.status is OrderStatus.CANCELED
    assert core.get_order("a", "same") == event.order


def test_invalid_price_or_quantity_is_refused() -> None:
    core = make_core()
    for request in (limit(Side.BUY, "0.01", "29000.05", "tick"), limit(Side.BUY, "0.0105", "29000", "step")):
        with pytest.raises(OrderRejected) as refused:
            core.submit(request, 1)
        assert refused.value.reason is RejectReason.INVALID_ORDER


def test_market_order_without_a_price_is_refused() -> None:
    core = MatchingCore()
    core.add_market(PERP)
    core.open_account("a", {"USDT": D(1000)})
    with pytest.raises(OrderRejected) as refused:
        core.submit(market(Side.BUY, "0.01"), 1)
    assert refused.value.reason is RejectReason.NO_PRICE


def test_snapshot_restores_a_core_that_continues_identically() -> None:
    core = make_core()
    core.submit(market(Side.BUY, "0.02"), 1)
    core.submit(limit(Side.BUY, "0.01", "29500", "b1"), 2)
    core.submit(limit(Side.SELL, "0.01", "30500", "s1", reduce_only=True), 3)
    copy = MatchingCore()
    copy.add_market(PERP, MarketRules(fees=FEES))
    copy.add_market(SPOT, MarketRules(fees=FEES))
    copy.restore(core.to_state())
    for price in ("29000", "31000"):
        assert core.sweep("sim", "BTCUSDT", D(price), 4) == copy.sweep("sim", "BTCUSDT", D(price), 4)
    assert core.to_state() == copy.to_state()


# -- partial fills: a busy book's trades, and a trade against part of a resting order --------


def split_core(most: str, *, fee_in_base: bool = False) -> MatchingCore:
    core = MatchingCore()
    core.add_market(PERP, MarketRules(fees=FEES, max_trade_qty=D(most)))
    core.add_market(SPOT, MarketRules(fees=FEES, max_trade_qty=D(most), buy_fee_in_base=fee_in_base))
    core.open_account("a", {"USDT": D(10000)})
    core.set_leverage("a", "sim", "BTCUSDT", D(5))
    core.set_mark("sim", "BTCUSDT", D(30000))
    core.set_mark("sim-spot", "BTCUSDT", D(30000))
    return core


def test_a_fill_larger_than_the_trade_size_is_several_trades() -> None:
    core = split_core("0.004")
    core.submit(limit(Side.BUY, "0.01", "29900", "b1"), 1)
    fills = core.sweep("sim", "BTCUSDT", D("29800"), 2)
    assert [f.trade.quantity for f in fills if f.trade] == [D("0.004"), D("0.004"), D("0.002")]
    assert [f.order.status for f in fills] == [OrderStatus.PARTIALLY_FILLED] * 2 + [OrderStatus.FILLED]
    assert [f.order.filled_qty for f in fills] == [D("0.004"), D("0.008"), D("0.01")]
    assert len({f.trade.trade_id for f in fills if f.trade}) == 3
    assert core.position("a", "sim", "BTCUSDT").size == D("0.01")
    assert core.open_orders("a") == []
    # a taker fills in trades too, each paying its own fee
    takes = core.submit(market(Side.SELL, "0.01"), 3)
    assert [t.trade.quantity for t in takes if t.trade] == [D("0.004"), D("0.004"), D("0.002")]
    assert sum(t.trade.fee for t in takes if t.trade) == D("29800") * D("0.01") * D("0.0005")


def test_split_reduce_only_fill_stops_at_the_position() -> None:
    core = split_core("0.004")
    core.submit(market(Side.BUY, "0.006"), 1)
    fills = core.submit(market(Side.SELL, "0.01", reduce_only=True), 2)
    assert [f.trade.quantity for f in fills if f.trade] == [D("0.004"), D("0.002")]
    assert fills[-1].order.status is OrderStatus.EXPIRED
    assert core.position("a", "sim", "BTCUSDT").size == 0


def test_a_partial_fill_keeps_the_order_resting_with_a_smaller_lock() -> None:
    core = make_core(balance="1000")
    spot_buy = OrderRequest(
        "a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("29000"), "sb"
    )
    core.submit(spot_buy, 1)
    account = core.account("a")
    locked = account.locked["USDT"]
    (event,) = core.fill_partially("a", "sim-spot", "BTCUSDT", D("0.01"), 2, client_order_id="sb")
    assert event.order.status is OrderStatus.PARTIALLY_FILLED
    assert event.order.filled_qty == D("0.01")
    assert event.trade is not None
    assert (event.trade.is_maker, event.trade.price) == (True, D("29000"))
    assert account.balance("BTC") == D("0.01")
    assert account.locked["USDT"] == locked * 2 / 3
    (resting,) = core.open_orders("a", "sim-spot")
    assert resting.status is OrderStatus.PARTIALLY_FILLED
    assert core.get_order("a", "sb") == resting
    # the price then trades through it: the rest fills; nothing stays locked
    (rest,) = core.sweep("sim-spot", "BTCUSDT", D("28999"), 3)
    assert (rest.order.status, rest.order.filled_qty, rest.trade and rest.trade.quantity) == (
        OrderStatus.FILLED, D("0.03"), D("0.02")
    )  # fmt: skip
    assert account.balance("BTC") == D("0.03")
    assert account.locked == {}
    assert account.balance("USDT") == D(1000) - D("0.03") * D(29000) * (1 + D("0.0002"))


def test_a_partially_filled_order_cancels_with_its_fill_and_unlocks_the_rest() -> None:
    core = make_core(balance="1000")
    core.submit(
        OrderRequest("a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("29000"), "sb"), 1
    )
    core.fill_partially("a", "sim-spot", "BTCUSDT", D("0.0125"), 2, client_order_id="sb")
    event = core.cancel("a", "sim-spot", "BTCUSDT", 3, client_order_id="sb")
    assert (event.order.status, event.order.filled_qty) == (OrderStatus.CANCELED, D("0.0125"))
    assert core.account("a").locked == {}
    assert core.account("a").free("USDT") == D(1000) - D("0.0125") * D(29000) * (1 + D("0.0002"))


def test_fill_partially_refuses_a_bad_quantity_and_changes_nothing() -> None:
    core = make_core()
    core.submit(limit(Side.BUY, "0.01", "29900", "b1"), 1)
    before = core.to_state()
    for qty in ("0", "-0.001", "0.0105", "0.011"):
        with pytest.raises(ValueError):
            core.fill_partially("a", "sim", "BTCUSDT", D(qty), 2, client_order_id="b1")
    with pytest.raises(UnknownOrder):
        core.fill_partially("a", "sim", "BTCUSDT", D("0.001"), 2, client_order_id="nope")
    assert core.to_state() == before
    # all it has left: an ordinary fill
    (event,) = core.fill_partially("a", "sim", "BTCUSDT", D("0.01"), 3, client_order_id="b1")
    assert event.order.status is OrderStatus.FILLED
    assert core.open_orders("a") == []


def test_snapshot_keeps_a_partially_filled_order_and_its_lock() -> None:
    core = make_core(balance="1000")
    core.submit(
        OrderRequest("a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("29000"), "sb"), 1
    )
    core.fill_partially("a", "sim-spot", "BTCUSDT", D("0.01"), 2, client_order_id="sb")
    copy = MatchingCore()
    copy.add_market(PERP, MarketRules(fees=FEES))
    copy.add_market(SPOT, MarketRules(fees=FEES))
    copy.restore(core.to_state())
    assert copy.to_state() == core.to_state()
    assert core.sweep("sim-spot", "BTCUSDT", D("28000"), 3) == copy.sweep(
        "sim-spot", "BTCUSDT", D("28000"), 3
    )
    assert copy.account("a").locked == {}


@pytest.mark.parametrize("name", ["max_trade_qty", "book_depth"])
def test_trade_size_and_book_depth_must_be_positive(name: str) -> None:
    for bad in ("0", "-1", "NaN"):
        with pytest.raises(ValueError, match=f"{name} must be a positive quantity"):
            MarketRules(**{name: D(bad)})  # type: ignore[arg-type]


def test_paper_settings_refuse_a_trade_size_off_the_step() -> None:
    from pydantic import ValidationError

    from opensqt.paper.settings import PerpSettings, SpotSettings

    assert SpotSettings(max_trade_qty=D("0.004")).max_trade_qty == D("0.004")
    for settings in (SpotSettings, PerpSettings):
        with pytest.raises(ValidationError, match="multiple of the step size"):
            settings(max_trade_qty=D("0.0000005"))
        with pytest.raises(ValidationError, match="greater than 0"):
            settings(max_trade_qty=D(0))


def test_a_split_reduce_only_fill_whose_position_ends_on_a_trade_expires_without_a_trade() -> None:
    core = split_core("0.004")
    core.submit(market(Side.BUY, "0.008"), 1)
    fills = core.submit(market(Side.SELL, "0.012", reduce_only=True), 2)
    assert [(f.order.status, f.trade and f.trade.quantity) for f in fills] == [
        (OrderStatus.PARTIALLY_FILLED, D("0.004")),
        (OrderStatus.PARTIALLY_FILLED, D("0.004")),
        (OrderStatus.EXPIRED, None),
    ]
    assert fills[-1].order.filled_qty == D("0.008")
    assert core.position("a", "sim", "BTCUSDT").size == 0


def test_a_liquidation_on_a_busy_book_is_several_trades_each_marked() -> None:
    core = split_core("0.004")
    core.open_account("b", {"USDT": D(300)})
    core.set_leverage("b", "sim", "BTCUSDT", D(100))
    core.submit(OrderRequest("b", "sim", "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.01")), 1)
    liquidation = core.liquidation_price("b", "sim", "BTCUSDT")
    events = core.sweep("sim", "BTCUSDT", liquidation - 100, 2)
    closes = [e for e in events if e.order.account == "b" and e.trade is not None]
    assert [e.trade.quantity for e in closes if e.trade] == [D("0.004"), D("0.004"), D("0.002")]
    assert all(e.liquidation for e in closes)
    assert closes[-1].order.status is OrderStatus.FILLED
    assert core.position("b", "sim", "BTCUSDT").size == 0


def thin_core(depth: str, *, most: str | None = None, balance: str = "10000") -> MatchingCore:
    """Both markets with ``depth`` on the book at the touch (trades of at most ``most``)."""
    core = MatchingCore()
    trade = D(most) if most else None
    core.add_market(PERP, MarketRules(fees=FEES, book_depth=D(depth), max_trade_qty=trade))
    core.add_market(SPOT, MarketRules(fees=FEES, book_depth=D(depth), max_trade_qty=trade))
    core.open_account("a", {"USDT": D(balance)})
    core.set_leverage("a", "sim", "BTCUSDT", D(5))
    core.set_mark("sim", "BTCUSDT", D(30000))
    core.set_mark("sim-spot", "BTCUSDT", D(30000))
    return core


def test_a_market_order_larger_than_the_book_fills_its_depth_and_expires_with_the_rest() -> None:
    core = thin_core("0.006", most="0.004")
    events = core.submit(market(Side.SELL, "0.01"), 1)
    assert [(e.order.status, e.trade and e.trade.quantity) for e in events] == [
        (OrderStatus.PARTIALLY_FILLED, D("0.004")),
        (OrderStatus.PARTIALLY_FILLED, D("0.002")),
        (OrderStatus.EXPIRED, None),
    ]
    final = events[-1].order
    assert (final.filled_qty, final.remaining_qty) == (D("0.006"), D("0.004"))
    assert core.get_order("a", final.client_order_id) == final
    assert core.position("a", "sim", "BTCUSDT").size == D("-0.006")
    assert core.open_orders("a") == []
    # only what traded paid a fee
    assert core.account("a").fees_paid == D("0.006") * D(30000) * D("0.0005")


def test_an_order_within_the_depth_fills_whole() -> None:
    core = thin_core("0.006")
    (event,) = core.submit(market(Side.BUY, "0.006"), 1)
    assert (event.order.status, event.order.filled_qty) == (OrderStatus.FILLED, D("0.006"))


def test_a_marketable_ioc_fills_the_depth_and_a_larger_fok_expires_unfilled() -> None:
    core = thin_core("0.006")
    ioc = core.submit(limit(Side.BUY, "0.01", "30100", "ioc", time_in_force=TimeInForce.IOC), 1)
    assert [e.order.status for e in ioc] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED]
    assert ioc[-1].order.filled_qty == D("0.006")
    before = core.to_state()
    (fok,) = core.submit(limit(Side.BUY, "0.01", "30100", "fok", time_in_force=TimeInForce.FOK), 2)
    assert (fok.order.status, fok.order.filled_qty, fok.trade) == (OrderStatus.EXPIRED, 0, None)
    assert "holds only 0.006" in fok.update.reason
    assert core.position("a", "sim", "BTCUSDT").size == D("0.006")
    assert core.account("a").balances == {"USDT": D(10000) - D("0.006") * D(30000) * D("0.0005")}
    assert core.to_state()["accounts"] == before["accounts"]
    (whole,) = core.submit(limit(Side.BUY, "0.006", "30100", "fok2", time_in_force=TimeInForce.FOK), 3)
    assert whole.order.status is OrderStatus.FILLED


def test_a_marketable_gtc_limit_on_a_thin_book_rests_the_rest_at_its_price_locked_there() -> None:
    core = thin_core("0.01", balance="1000")
    buy = OrderRequest("a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("30100"), "sb")
    (taken,) = core.submit(buy, 1)
    assert taken.order.status is OrderStatus.PARTIALLY_FILLED
    assert taken.trade is not None
    assert (taken.trade.price, taken.trade.quantity, taken.trade.is_maker) == (D(30000), D("0.01"), False)
    (resting,) = core.open_orders("a", "sim-spot")
    assert (resting.status, resting.filled_qty, resting.price) == (
        OrderStatus.PARTIALLY_FILLED, D("0.01"), D("30100")
    )  # fmt: skip
    account = core.account("a")
    # the rest is locked at its limit price, with the larger of the two fee rates
    assert account.locked == {"USDT": D("0.02") * D("30100") * (1 + D("0.0005"))}
    assert account.balance("BTC") == D("0.01")
    # it fills at its price when the market trades through it, as any resting buy: as maker
    assert core.sweep("sim-spot", "BTCUSDT", D("30200"), 2) == []
    (rest,) = core.sweep("sim-spot", "BTCUSDT", D("30050"), 3)
    assert (rest.order.status, rest.trade and rest.trade.price, rest.trade and rest.trade.is_maker) == (
        OrderStatus.FILLED, D("30100"), True
    )  # fmt: skip
    assert account.locked == {}


def test_a_thin_book_checks_a_gtc_limit_s_funds_at_its_limit_price() -> None:
    # 0.03 BTC costs 900 USDT at the ask but 903 at the limit: a thin book makes the limit count
    buy = OrderRequest("a", "sim-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"), D("30100"), "sb")
    deep = make_core(balance="902")
    (filled,) = deep.submit(buy, 1)
    assert filled.order.status is OrderStatus.FILLED
    thin = thin_core("0.01", balance="902")
    before = thin.to_state()
    with pytest.raises(OrderRejected) as refused:
        thin.submit(buy, 1)
    assert refused.value.reason is RejectReason.INSUFFICIENT_BALANCE
    assert thin.to_state() == before


def test_a_reduce_only_market_order_on_a_thin_book_stops_at_the_smaller_of_depth_and_position() -> None:
    core = thin_core("0.006")
    core.submit(market(Side.BUY, "0.004"), 1)
    core.submit(market(Side.BUY, "0.004"), 2)
    capped = core.submit(market(Side.SELL, "0.01", reduce_only=True), 3)  # depth 0.006 < position
    assert [e.order.status for e in capped] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED]
    assert core.position("a", "sim", "BTCUSDT").size == D("0.002")
    rest = core.submit(market(Side.SELL, "0.01", reduce_only=True), 4)  # position 0.002 < depth
    assert [(e.order.status, e.order.filled_qty) for e in rest] == [(OrderStatus.EXPIRED, D("0.002"))]
    assert core.position("a", "sim", "BTCUSDT").size == 0


def test_book_depth_can_change_for_the_orders_that_follow() -> None:
    core = make_core()
    assert core.rules("sim", "BTCUSDT").book_depth is None
    core.set_book_depth("sim", "BTCUSDT", D("0.002"))
    assert [e.order.status for e in core.submit(market(Side.BUY, "0.005"), 1)][-1] is OrderStatus.EXPIRED
    with pytest.raises(ValueError, match="book_depth must be a positive quantity"):
        core.set_book_depth("sim", "BTCUSDT", D(0))
    assert core.rules("sim", "BTCUSDT").book_depth == D("0.002")
    core.set_book_depth("sim", "BTCUSDT", None)
    (whole,) = core.submit(market(Side.BUY, "0.005"), 2)
    assert whole.order.status is OrderStatus.FILLED
    # the other market kept its own
    assert core.rules("sim-spot", "BTCUSDT").book_depth is None
