"""Entry and exit plans: order, sizing from executed quantities, compensation, retries, client ids."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensqt.arbitrage import (
    ClientIdError,
    Direction,
    Done,
    EntryPlan,
    ExitPlan,
    OrderStep,
    Outcome,
    PlanError,
    StepKind,
    StepResult,
    build_entry_plan,
    client_order_id,
)
from opensqt.arbitrage.plans import common_step, tradeable_qty
from opensqt.model import Instrument, MarketType, OrderType, Side
from opensqt.model.money import round_to_step

from . import AGENT, PERP, SPOT, T0, full_fill, run_plan, scripted

SEQ = T0  # sequence ids are at least the decision time: 1_700_000_000_000 = "loyw3v28" in base 36
SPOT_PX = Decimal("50000")
PERP_PX = Decimal("50010")
CLIENT_ID_RE = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")


def entry(
    direction: Direction = Direction.POSITIVE,
    qty: str = "0.02",
    *,
    spot: Instrument = SPOT,
    perp: Instrument = PERP,
) -> EntryPlan:
    return build_entry_plan(
        agent=AGENT,
        sequence_id=SEQ,
        direction=direction,
        spot=spot,
        perp=perp,
        spot_price=SPOT_PX,
        perp_price=PERP_PX,
        base_qty=Decimal(qty),
    )


def exit_plan(spot_size: str, perp_size: str, *, spot_first: bool = False) -> ExitPlan:
    return ExitPlan(
        agent=AGENT,
        sequence_id=SEQ,
        spot=SPOT,
        perp=PERP,
        spot_size=Decimal(spot_size),
        perp_size=Decimal(perp_size),
        spot_price=SPOT_PX,
        perp_price=PERP_PX,
        spot_first=spot_first,
    )


def orders(steps: list[OrderStep]) -> list[tuple[str, str, str]]:
    """(client id suffix, side, quantity) of each step, for compact assertions."""
    return [(s.client_order_id.rsplit("-", 1)[1], s.side.value, str(s.quantity)) for s in steps]


def net(done: Done, venue: str) -> Decimal:
    return sum((f.signed_quantity for f in done.fills if f.venue == venue), Decimal(0))


# -- client order ids ----------------------------------------------------------------------------


def test_client_id_is_agent_sequence_step_and_attempt_in_base_36() -> None:
    assert client_order_id("arb1", 1_700_000_000_000, StepKind.ENTRY_SPOT, 0) == "arb1-loyw3v28-es0"
    assert client_order_id("arb1", 35, StepKind.COMPENSATE_SPOT, 36) == "arb1-z-cs10"
    assert client_order_id("arb1", 0, StepKind.EXIT_PERP, 1) == "arb1-0-xp1"


def test_client_id_that_cannot_fit_raises_a_clear_error() -> None:
    with pytest.raises(ClientIdError, match="is 37 characters; the limit is 36"):
        client_order_id("a" * 24, 1_700_000_000_000, StepKind.EXIT_SPOT, 0)
    with pytest.raises(ClientIdError, match="the limit is 16"):
        client_order_id("arb1", 1_700_000_000_000, StepKind.EXIT_SPOT, 0, max_length=16)
    with pytest.raises(ClientIdError, match=r"outside \[\.A-Za-z0-9:/_-\]"):
        client_order_id("arb 1", 1, StepKind.EXIT_SPOT, 0)


def test_a_plan_for_a_venue_with_short_client_ids_is_refused_up_front() -> None:
    short_ids = dataclasses.replace(PERP, max_client_order_id_length=16)
    with pytest.raises(ClientIdError, match="the limit is 16"):
        entry(perp=short_ids)


@settings(max_examples=80, deadline=None)
@given(
    st.sets(
        st.tuples(
            st.sampled_from(["arb1", "arb-1", "a", "x.y:z/w_v"]),
            st.integers(min_value=0, max_value=2**41),
            st.sampled_from(list(StepKind)),
            st.integers(min_value=0, max_value=5000),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_client_ids_are_unique_and_binance_safe_across_agents_sequences_steps_and_attempts(
    keys: set[tuple[str, int, StepKind, int]],
) -> None:
    ids = [client_order_id(*key) for key in keys]
    assert len(set(ids)) == len(keys)
    assert all(CLIENT_ID_RE.match(cid) for cid in ids)


# -- sizing --------------------------------------------------------------------------------------


def test_common_step_is_the_coarser_grid_both_instruments_accept() -> None:
    assert common_step(Decimal("0.00001"), Decimal("0.001")) == Decimal("0.001")
    assert common_step(Decimal("0.02"), Decimal("0.03")) == Decimal("0.06")
    assert common_step(Decimal("5"), Decimal("0.5")) == Decimal("5")


def test_tradeable_qty_rounds_down_and_drops_quantities_below_the_minimums() -> None:
    assert tradeable_qty(PERP, Decimal("0.0259"), PERP_PX) == Decimal("0.025")
    assert tradeable_qty(PERP, Decimal("0.0009"), PERP_PX) == 0  # rounds to 0
    assert tradeable_qty(PERP, Decimal("0.001"), PERP_PX) == 0  # 50.01 < min notional 100
    assert tradeable_qty(PERP, Decimal("0.001"), Decimal(0)) == Decimal("0.001")  # price unknown
    assert tradeable_qty(SPOT, Decimal("0.00009"), SPOT_PX) == 0  # 4.5 < min notional 5
    assert tradeable_qty(SPOT, Decimal("0.0001"), SPOT_PX) == Decimal("0.00010")


def test_quote_notional_entry_is_rounded_down_to_the_common_step() -> None:
    # 1000 / 30000 = 0.0333...; the common step of 0.00001 and 0.001 is 0.001: 0.033.
    plan = build_entry_plan(
        agent=AGENT,
        sequence_id=SEQ,
        direction=Direction.POSITIVE,
        spot=SPOT,
        perp=PERP,
        spot_price=Decimal(30000),
        perp_price=Decimal(30000),
        quote_notional=Decimal(1000),
    )
    assert plan.spot_qty == Decimal("0.033")


def test_an_entry_below_either_instruments_minimums_is_refused() -> None:
    with pytest.raises(PlanError, match="below the perp minimums"):
        entry(qty="0.0015")  # 0.001 perp * 50010 = 50.01 < 100
    with pytest.raises(PlanError, match="rounds to 0"):
        entry(qty="0.0004")
    with pytest.raises(PlanError, match="exactly one of base_qty and quote_notional"):
        build_entry_plan(
            agent=AGENT,
            sequence_id=SEQ,
            direction=Direction.POSITIVE,
            spot=SPOT,
            perp=PERP,
            spot_price=SPOT_PX,
            perp_price=PERP_PX,
        )


# -- entry ---------------------------------------------------------------------------------------


def test_positive_entry_buys_spot_first_then_sells_the_perp_for_the_spot_fill() -> None:
    steps, done = run_plan(entry())
    assert orders(steps) == [("es0", "BUY", "0.020"), ("ep0", "SELL", "0.020")]
    assert steps[0].client_order_id == "arb1-loyw3v28-es0"
    assert (steps[0].venue, steps[0].market_type) == ("binance", MarketType.SPOT)
    assert (steps[1].venue, steps[1].market_type, steps[1].reduce_only) == (
        "binanceusdm",
        MarketType.PERPETUAL,
        False,
    )
    assert done.outcome is Outcome.ENTERED
    assert net(done, "binance") == Decimal("0.020")
    assert net(done, "binanceusdm") == Decimal("-0.020")


def test_negative_entry_sells_spot_on_margin_and_buys_the_perp() -> None:
    steps, done = run_plan(entry(Direction.NEGATIVE))
    assert orders(steps) == [("es0", "SELL", "0.020"), ("ep0", "BUY", "0.020")]
    assert steps[0].market_type is MarketType.MARGIN
    assert done.outcome is Outcome.ENTERED


def test_a_zero_spot_fill_aborts_without_a_perp_order() -> None:
    steps, done = run_plan(entry(), scripted("0"))
    assert orders(steps) == [("es0", "BUY", "0.020")]
    assert done.outcome is Outcome.ABORTED
    assert done.fills == ()
    assert "filled nothing (rejected)" in done.reason


def test_a_partial_spot_fill_sizes_the_perp_to_the_executed_quantity() -> None:
    steps, done = run_plan(entry(), scripted("0.012", "all"))
    assert orders(steps) == [("es0", "BUY", "0.020"), ("ep0", "SELL", "0.012")]
    assert done.outcome is Outcome.ENTERED
    assert net(done, "binance") + net(done, "binanceusdm") == 0


def test_a_spot_fill_off_the_perp_step_is_hedged_down_and_the_remainder_unwound() -> None:
    # 0.01234 spot: the perp can hedge 0.012; the 0.00034 it cannot is sold back (17 USDT >= 5).
    steps, done = run_plan(entry(), scripted("0.01234", "all", "all"))
    assert orders(steps) == [("es0", "BUY", "0.020"), ("ep0", "SELL", "0.012"), ("cs0", "SELL", "0.00034")]
    assert steps[2].is_compensation
    assert done.outcome is Outcome.ENTERED
    assert net(done, "binance") == Decimal("0.012")
    assert net(done, "binanceusdm") == Decimal("-0.012")


def test_a_perp_failure_unwinds_exactly_the_spot_executed_quantity() -> None:
    steps, done = run_plan(entry(), scripted("0.015", "0", "all"))
    assert orders(steps) == [("es0", "BUY", "0.020"), ("ep0", "SELL", "0.015"), ("cs0", "SELL", "0.01500")]
    assert done.outcome is Outcome.COMPENSATED
    assert net(done, "binance") == 0
    assert net(done, "binanceusdm") == 0


def test_a_partial_perp_fill_unwinds_only_the_unhedged_spot() -> None:
    steps, done = run_plan(entry(), scripted("all", "0.008", "all"))
    assert orders(steps)[2] == ("cs0", "SELL", "0.01200")
    assert done.outcome is Outcome.ENTERED
    assert net(done, "binance") == Decimal("0.008")
    assert net(done, "binanceusdm") == Decimal("-0.008")


def test_compensation_is_retried_with_fresh_client_ids_until_the_spot_is_unwound() -> None:
    steps, done = run_plan(entry(), scripted("all", "0", "0.005", "0", "all"))
    assert orders(steps) == [
        ("es0", "BUY", "0.020"),
        ("ep0", "SELL", "0.020"),
        ("cs0", "SELL", "0.02000"),
        ("cs1", "SELL", "0.01500"),
        ("cs2", "SELL", "0.01500"),
    ]
    assert len({s.client_order_id for s in steps}) == len(steps)
    assert done.outcome is Outcome.COMPENSATED
    assert net(done, "binance") == 0
    assert "unwound 0.02000 spot in 3 attempt(s)" in done.reason


def test_a_negative_entry_compensates_by_buying_back_on_margin() -> None:
    steps, done = run_plan(entry(Direction.NEGATIVE), scripted("all", "0", "all"))
    assert orders(steps)[2] == ("cs0", "BUY", "0.02000")
    assert steps[2].market_type is MarketType.MARGIN
    assert done.outcome is Outcome.COMPENSATED


def test_a_spot_fill_too_small_for_the_perp_is_unwound_without_a_perp_order() -> None:
    # 0.0015 spot: 0.001 perp would be 50.01 USDT, below the perp's 100 minimum.
    steps, done = run_plan(entry(), scripted("0.0015", "all"))
    assert orders(steps) == [("es0", "BUY", "0.020"), ("cs0", "SELL", "0.00150")]
    assert done.outcome is Outcome.COMPENSATED


def test_an_untradeable_spot_remainder_is_reported_not_traded() -> None:
    # 0.00005 spot is 2.5 USDT: below the spot's 5 USDT minimum, it cannot be sold back.
    steps, done = run_plan(entry(), scripted("0.00005"))
    assert len(steps) == 1
    assert done.outcome is Outcome.COMPENSATED
    assert "0.00005 spot unhedged, below the tradeable minimum" in done.reason


def test_results_that_do_not_fit_the_plan_are_refused() -> None:
    plan = entry()
    with pytest.raises(PlanError, match="is for 'other', but the plan's step #0 is 'arb1-loyw3v28-es0'"):
        plan.next_step([StepResult("other", Decimal(0))])
    with pytest.raises(PlanError, match=r"more than the ordered 0\.020"):
        plan.next_step([StepResult("arb1-loyw3v28-es0", Decimal("0.021"))])
    with pytest.raises(PlanError, match="ended after 1 steps but got 2 results"):
        plan.next_step([StepResult("arb1-loyw3v28-es0", Decimal(0)), StepResult("x", Decimal(0))])
    with pytest.raises(PlanError, match="must not be negative"):
        StepResult("arb1-loyw3v28-es0", Decimal("-1"))


def test_a_plan_replays_to_the_same_step_after_a_restart() -> None:
    plan = entry()
    first = plan.next_step([])
    assert isinstance(first, OrderStep)
    assert plan.next_step([]) == first
    after_spot = plan.next_step([full_fill(first)])
    assert isinstance(after_spot, OrderStep)
    assert plan.next_step([full_fill(first)]) == after_spot
    assert plan.workflow_id == "arb1-loyw3v28"


def test_an_order_step_becomes_a_market_order_with_its_client_id() -> None:
    step = exit_plan("0.02", "-0.02").next_step([])
    assert isinstance(step, OrderStep)
    order = step.to_order()
    assert (order.order_type, order.side, order.quantity) == (OrderType.MARKET, Side.BUY, Decimal("0.020"))
    assert order.reduce_only
    assert order.client_order_id == "arb1-loyw3v28-xp0"
    assert (order.venue, order.symbol, order.market_type) == ("binanceusdm", "BTCUSDT", MarketType.PERPETUAL)


# -- exit ----------------------------------------------------------------------------------------


def test_exit_closes_the_perp_reduce_only_first_then_the_spot() -> None:
    steps, done = run_plan(exit_plan("0.02", "-0.02"))
    assert orders(steps) == [("xp0", "BUY", "0.020"), ("xs0", "SELL", "0.02000")]
    assert steps[0].reduce_only
    assert not steps[1].reduce_only
    assert done.outcome is Outcome.EXITED


def test_exit_is_sized_to_the_actual_leg_sizes() -> None:
    steps, _ = run_plan(exit_plan("0.01834", "-0.018"))
    assert orders(steps) == [("xp0", "BUY", "0.018"), ("xs0", "SELL", "0.01834")]


def test_a_failed_second_leg_is_retried_with_fresh_client_ids_until_flat() -> None:
    steps, done = run_plan(exit_plan("0.02", "-0.02"), scripted("all", "0.008", "0", "all"))
    assert orders(steps) == [
        ("xp0", "BUY", "0.020"),
        ("xs0", "SELL", "0.02000"),
        ("xs1", "SELL", "0.01200"),
        ("xs2", "SELL", "0.01200"),
    ]
    assert len({s.client_order_id for s in steps}) == 4
    assert done.outcome is Outcome.EXITED
    assert net(done, "binance") == Decimal("-0.02")


def test_a_zero_fill_on_the_first_exit_leg_aborts_with_both_legs_untouched() -> None:
    steps, done = run_plan(exit_plan("0.02", "-0.02"), scripted("0"))
    assert len(steps) == 1
    assert done.outcome is Outcome.ABORTED
    assert done.fills == ()


def test_a_partial_first_exit_leg_closes_the_same_quantity_of_the_second() -> None:
    steps, done = run_plan(exit_plan("0.02", "-0.02"), scripted("0.005", "all"))
    assert orders(steps) == [("xp0", "BUY", "0.020"), ("xs0", "SELL", "0.00500")]
    assert done.outcome is Outcome.PARTIAL


def test_spot_first_exit_closes_a_margin_short_before_the_perp() -> None:
    steps, done = run_plan(exit_plan("-0.02", "0.02", spot_first=True))
    assert orders(steps) == [("xs0", "BUY", "0.02000"), ("xp0", "SELL", "0.020")]
    assert steps[0].market_type is MarketType.MARGIN
    assert steps[1].reduce_only
    assert done.outcome is Outcome.EXITED


def test_a_dust_leg_is_skipped_and_the_other_closed() -> None:
    steps, done = run_plan(exit_plan("0.02", "-0.0004"))
    assert orders(steps) == [("xs0", "SELL", "0.02000")]
    assert done.outcome is Outcome.EXITED


def test_an_exit_with_nothing_tradeable_is_refused() -> None:
    with pytest.raises(PlanError, match="nothing to exit"):
        exit_plan("0.00001", "-0.0004")


# -- properties ----------------------------------------------------------------------------------

spot_steps = st.sampled_from(["0.00001", "0.0001", "0.01"])
perp_steps = st.sampled_from(["0.001", "0.01", "0.1"])
percent = st.integers(min_value=0, max_value=100)


def instruments(spot_step: str, perp_step: str) -> tuple[Instrument, Instrument]:
    spot = dataclasses.replace(SPOT, step_size=Decimal(spot_step), min_qty=Decimal(spot_step))
    perp = dataclasses.replace(PERP, step_size=Decimal(perp_step), min_qty=Decimal(perp_step))
    return spot, perp


def fractional_fills(
    percents: list[int], spot: Instrument, perp: Instrument
) -> Callable[[OrderStep], StepResult]:
    """Each order fills a drawn percentage (on the step); after the draws run out, fully."""
    remaining = list(percents)

    def fill(step: OrderStep) -> StepResult:
        grid = perp.step_size if step.market_type is MarketType.PERPETUAL else spot.step_size
        share = remaining.pop(0) if remaining else 100
        return StepResult(step.client_order_id, round_to_step(step.quantity * share / 100, grid, mode="down"))

    return fill


def assert_orders_are_sane(steps: list[OrderStep], spot: Instrument, perp: Instrument) -> None:
    for step in steps:
        instrument = perp if step.market_type is MarketType.PERPETUAL else spot
        assert step.quantity > 0
        assert instrument.is_on_step(step.quantity)
        assert step.quantity >= instrument.min_qty
    assert len({step.client_order_id for step in steps}) == len(steps)


@settings(max_examples=120, deadline=None)
@given(
    spot_steps,
    perp_steps,
    st.integers(min_value=1, max_value=500),
    st.sampled_from(list(Direction)),
    st.lists(percent, max_size=8),
)
def test_entry_plans_never_send_an_off_step_or_negative_quantity_and_end_hedged(
    spot_step: str, perp_step: str, tenths: int, direction: Direction, percents: list[int]
) -> None:
    spot, perp = instruments(spot_step, perp_step)
    qty = Decimal(tenths) * Decimal("0.1")
    plan = entry(direction, str(qty), spot=spot, perp=perp)
    steps, done = run_plan(plan, fractional_fills(percents, spot, perp))
    assert_orders_are_sane(steps, spot, perp)
    exposure = net(done, spot.venue) + net(done, perp.venue)
    # Whatever is left unhedged is too small to trade on the spot.
    assert tradeable_qty(spot, abs(exposure), SPOT_PX) == 0
    if done.outcome is Outcome.ENTERED:
        assert net(done, perp.venue) != 0


@settings(max_examples=120, deadline=None)
@given(
    spot_steps,
    perp_steps,
    st.integers(min_value=1, max_value=5_000_000),
    st.integers(min_value=1, max_value=5_000),
    st.booleans(),
    st.lists(percent, max_size=8),
)
def test_exit_plans_never_oversize_a_leg_and_leave_only_untradeable_dust(
    spot_step: str, perp_step: str, spot_units: int, perp_units: int, spot_first: bool, percents: list[int]
) -> None:
    spot, perp = instruments(spot_step, perp_step)
    spot_size = Decimal(spot_units) * Decimal("0.00001")
    perp_size = -Decimal(perp_units) * Decimal("0.001")
    try:
        plan = ExitPlan(AGENT, SEQ, spot, perp, spot_size, perp_size, SPOT_PX, PERP_PX, spot_first=spot_first)
    except PlanError:
        assert tradeable_qty(spot, spot_size, SPOT_PX) == 0
        assert tradeable_qty(perp, -perp_size, PERP_PX) == 0
        return
    steps, done = run_plan(plan, fractional_fills(percents, spot, perp))
    assert_orders_are_sane(steps, spot, perp)
    spot_closed, perp_closed = -net(done, spot.venue), net(done, perp.venue)
    assert 0 <= spot_closed <= spot_size
    assert 0 <= perp_closed <= -perp_size
    if done.outcome is Outcome.EXITED:
        assert tradeable_qty(spot, spot_size - spot_closed, SPOT_PX) == 0
        assert tradeable_qty(perp, -perp_size - perp_closed, PERP_PX) == 0


def test_spot_buys_are_sized_up_by_a_base_asset_commission_so_the_hedge_is_whole() -> None:
    fee = Decimal("0.001")
    plan = build_entry_plan(
        agent=AGENT, sequence_id=T0, direction=Direction.POSITIVE, spot=SPOT, perp=PERP,
        spot_price=Decimal(50000), perp_price=Decimal(50010), base_qty=Decimal("0.02"), spot_buy_fee=fee,
    )  # fmt: skip
    buy = plan.next_step([])
    assert isinstance(buy, OrderStep)
    assert buy.quantity == Decimal("0.02003")  # 0.02 / 0.999 = 0.0200200..., up to the step
    received = buy.quantity - buy.quantity * fee  # 0.02000997 after the commission in BTC
    hedge = plan.next_step([StepResult(buy.client_order_id, received)])
    assert isinstance(hedge, OrderStep)
    assert (hedge.side, hedge.quantity) == (Side.SELL, Decimal("0.020"))  # the whole position
    done = plan.next_step(
        [StepResult(buy.client_order_id, received), StepResult(hedge.client_order_id, hedge.quantity)]
    )
    assert isinstance(done, Done)
    assert done.outcome is Outcome.ENTERED


def test_a_margin_shorts_buy_back_is_sized_up_so_the_loan_is_repaid() -> None:
    plan = ExitPlan(
        AGENT, T0, SPOT, PERP, spot_size=Decimal("-0.02"), perp_size=Decimal("0.020"),
        spot_price=Decimal(50000), perp_price=Decimal(50010), spot_buy_fee=Decimal("0.001"),
    )  # fmt: skip
    perp = plan.next_step([])
    assert isinstance(perp, OrderStep)
    spot = plan.next_step([StepResult(perp.client_order_id, Decimal("0.020"))])
    assert isinstance(spot, OrderStep)
    assert (spot.side, spot.quantity) == (Side.BUY, Decimal("0.02003"))
    # a spot sell (closing a long) is not sized up: its commission is in USDT
    long_exit = ExitPlan(AGENT, T0, SPOT, PERP, spot_size=Decimal("0.02"), perp_size=Decimal("-0.020"),
                         spot_buy_fee=Decimal("0.001"))  # fmt: skip
    first = long_exit.next_step([])
    assert isinstance(first, OrderStep)
    sell = long_exit.next_step([StepResult(first.client_order_id, Decimal("0.020"))])
    assert isinstance(sell, OrderStep)
    assert (sell.side, sell.quantity) == (Side.SELL, Decimal("0.02"))
