"""arbitrage.Strategy: the rules of behaviour.md section 3 and the liquidation guard of section 4.

Unless a test says otherwise: fees 0.1% spot + 0.05% perp over 30 days (fee APR 0.0365), so the
entry threshold is 0.10 + 0.0365 = 0.1365; an 8 h rate r has APR r * 1095.
"""

from __future__ import annotations

import ast
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opensqt.arbitrage import (
    Action,
    Decision,
    Direction,
    Done,
    EntryPlan,
    ExitPlan,
    LegBook,
    Outcome,
    Strategy,
    StrategyState,
    basis,
    funding_apr,
    liquidation_distance,
)
from opensqt.model import FundingUpdate, PositionUpdate, PriceChange, TradingStateKind

from . import (
    PERIOD_MS,
    PERP,
    PERP_VENUE,
    SPOT_VENUE,
    T0,
    funding,
    make_config,
    perp_price,
    position,
    run_plan,
    scripted,
    spot_price,
)

SPOT_KEY = "binance:BTCUSDT"
PERP_KEY = "binanceusdm:BTCUSDT"
NEXT = T0 + PERIOD_MS


def strategy(**overrides: Any) -> Strategy:
    return Strategy(make_config(**overrides))


def prices(s: Strategy, ms: int, spot: str = "50000", perp: str = "50010") -> None:
    s.on_price(spot_price(spot, ms), ms)
    s.on_price(perp_price(perp, ms), ms)


def opened(direction: Direction = Direction.POSITIVE, **overrides: Any) -> Strategy:
    """A strategy that entered at T0 with 0.02 BTC per leg, fully filled, at rest at T0 + 1."""
    s = strategy(use_margin=True, **overrides)
    prices(s, T0)
    rate = "0.0003" if direction is Direction.POSITIVE else "-0.0003"
    decision = s.on_funding(funding(rate, NEXT), T0)
    assert isinstance(decision.plan, EntryPlan)
    _, done = run_plan(decision.plan)
    s.on_execution_result(done, T0 + 1)
    assert not s.in_flight
    return s


def exit_sizes(decision: Decision) -> tuple[Decimal, Decimal]:
    assert isinstance(decision.plan, ExitPlan), decision
    return decision.plan.spot_size, decision.plan.perp_size


# -- formulas ------------------------------------------------------------------------------------


def test_apr_annualises_the_rate_by_the_venues_funding_interval() -> None:
    assert funding_apr(Decimal("0.0003"), 8) == Decimal("0.3285")  # 0.0003 * 3 * 365
    assert funding_apr(Decimal("0.0003"), 4) == Decimal("0.657")  # a 4 h venue doubles it
    assert funding_apr(Decimal("0.0003"), 1) == Decimal("2.628")
    assert funding_apr(Decimal("-0.0001"), 8) == Decimal("-0.1095")
    with pytest.raises(ValueError, match="positive number of hours"):
        funding_apr(Decimal("0.0003"), 0)


def test_basis_is_the_perp_premium_over_spot() -> None:
    assert basis(Decimal(50000), Decimal(49700)) == Decimal("-0.006")
    assert basis(Decimal(50000), Decimal(50250)) == Decimal("0.005")


def test_liquidation_distance_is_measured_on_the_losing_side() -> None:
    long = position(PERP_VENUE, "0.02", mark="50000", liquidation="46000")
    short = position(PERP_VENUE, "-0.02", mark="50000", liquidation="54000")
    assert liquidation_distance(long) == Decimal("0.08")  # (50000 - 46000) / 50000
    assert liquidation_distance(short) == Decimal("0.08")  # (54000 - 50000) / 50000
    assert liquidation_distance(long, Decimal(40000)) == Decimal("-0.15")  # past it: (40000 - 46000) / 40000
    assert liquidation_distance(position(PERP_VENUE, "0.02", mark="50000")) is None
    assert liquidation_distance(position(PERP_VENUE, "0", mark="50000", liquidation="46000")) is None


# -- entry ---------------------------------------------------------------------------------------


def test_a_high_positive_rate_when_flat_enters_long_spot_short_perp() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(FundingUpdate(funding("0.0003", NEXT)), T0)  # APR 0.3285 > 0.1365
    assert decision.action is Action.ENTER_POSITIVE
    assert isinstance(decision.plan, EntryPlan)
    assert decision.plan.direction is Direction.POSITIVE
    assert decision.plan.spot_qty == Decimal("0.020")
    assert decision.plan.sequence_id == T0
    assert "APR 0.3285" in decision.reason
    assert s.in_flight


def test_a_rate_below_min_spread_plus_fees_holds() -> None:
    # 0.0001 per 8 h = APR 0.1095: above min 0.10, but not above 0.10 + fees 0.0365.
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("0.0001", NEXT), T0)
    assert decision.action is Action.HOLD
    assert "threshold 0.1365" in decision.reason
    # Without fees the same rate clears min 0.10.
    free = strategy(spot_taker_fee=Decimal(0), perp_taker_fee=Decimal(0))
    prices(free, T0)
    assert free.on_funding(funding("0.0001", NEXT), T0).action is Action.ENTER_POSITIVE


def test_a_4h_funding_venue_doubles_the_apr_and_enters_where_8h_would_not() -> None:
    # 0.0001 every 4 h = APR 0.219 > 0.1365; every 8 h it was 0.1095.
    s = strategy()
    prices(s, T0)
    assert s.on_funding(funding("0.0001", NEXT, interval_hours=4), T0).action is Action.ENTER_POSITIVE


def test_entry_needs_the_apr_strictly_above_the_threshold() -> None:
    s = strategy(min_spread_apr=Decimal("0.1095"), spot_taker_fee=Decimal(0), perp_taker_fee=Decimal(0))
    prices(s, T0)
    assert s.on_funding(funding("0.0001", NEXT), T0).action is Action.HOLD  # APR == 0.1095
    assert s.on_funding(funding("0.00010001", NEXT + PERIOD_MS), T0).action is Action.ENTER_POSITIVE


def test_a_high_negative_rate_enters_short_spot_on_margin_long_perp() -> None:
    s = strategy(use_margin=True)
    prices(s, T0)
    decision = s.on_funding(funding("-0.0003", NEXT), T0)
    assert decision.action is Action.ENTER_NEGATIVE
    assert isinstance(decision.plan, EntryPlan)
    assert decision.plan.direction is Direction.NEGATIVE


def test_a_high_negative_rate_without_margin_holds_and_says_why() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("-0.0003", NEXT), T0)
    assert decision.action is Action.HOLD
    assert decision.plan is None
    assert "use_margin is off: cannot short spot" in decision.reason
    assert not s.in_flight


def test_the_interval_falls_back_to_the_instrument_and_is_never_assumed() -> None:
    s = strategy()
    prices(s, T0)
    # The update omits its interval: the perp instrument's 8 h applies (APR 0.3285).
    assert s.on_funding(funding("0.0003", NEXT, interval_hours=0), T0).action is Action.ENTER_POSITIVE
    unknown = strategy(perp=dataclasses.replace(PERP, funding_interval_hours=0))
    prices(unknown, T0)
    decision = unknown.on_funding(funding("0.0003", NEXT, interval_hours=0), T0)
    assert decision.action is Action.IGNORE
    assert "without a funding interval" in decision.reason


def test_a_size_below_the_instrument_minimums_holds_with_the_reason() -> None:
    s = strategy(order_base_qty=Decimal("0.0015"))  # 0.001 perp = 50.01 USDT < 100
    prices(s, T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert decision.action is Action.HOLD
    assert "cannot enter" in decision.reason
    assert not s.in_flight


def test_a_quote_notional_entry_is_sized_at_the_spot_price() -> None:
    s = strategy(order_base_qty=None, order_quote_notional=Decimal(1000))
    prices(s, T0, spot="30000", perp="30000")
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert isinstance(decision.plan, EntryPlan)
    assert decision.plan.spot_qty == Decimal("0.033")  # 1000 / 30000 rounded down to 0.001


# -- exit ----------------------------------------------------------------------------------------


def test_an_open_position_exits_when_the_apr_falls_below_exit_spread() -> None:
    s = opened()
    prices(s, T0 + 10)
    decision = s.on_funding(funding("0.000005", NEXT + PERIOD_MS), T0 + 10)  # APR 0.005475 < 0.01
    assert decision.action is Action.EXIT
    assert exit_sizes(decision) == (Decimal("0.020"), Decimal("-0.020"))


def test_an_open_position_holds_while_the_apr_stays_above_exit_spread() -> None:
    s = opened()
    prices(s, T0 + 10)
    decision = s.on_funding(funding("0.00001", NEXT + PERIOD_MS), T0 + 10)  # APR 0.01095 >= 0.01
    assert decision.action is Action.HOLD
    assert "carry 0.01095" in decision.reason


def test_a_funding_rate_that_flipped_against_the_position_exits() -> None:
    # |APR| = 0.3285 is far above the exit spread, but a short perp now pays it.
    s = opened()
    prices(s, T0 + 10)
    assert s.on_funding(funding("-0.0003", NEXT + PERIOD_MS), T0 + 10).action is Action.EXIT


def test_a_negative_position_holds_on_negative_funding_and_exits_when_it_fades() -> None:
    s = opened(Direction.NEGATIVE)
    prices(s, T0 + 10)
    assert s.on_funding(funding("-0.0003", NEXT + PERIOD_MS), T0 + 10).action is Action.HOLD
    decision = s.on_funding(funding("-0.000005", NEXT + 2 * PERIOD_MS), T0 + 10)  # carry 0.005475
    assert decision.action is Action.EXIT
    assert exit_sizes(decision) == (Decimal("-0.020"), Decimal("0.020"))


def test_exit_is_sized_from_the_positions_not_the_configured_quantity() -> None:
    s = opened()
    s.on_position(position(SPOT_VENUE, "0.01834", updated_ms=T0 + 5), T0 + 5)
    s.on_position(PositionUpdate("e1", position(PERP_VENUE, "-0.018", updated_ms=T0 + 5)), T0 + 5)
    prices(s, T0 + 10)
    decision = s.on_funding(funding("0.000005", NEXT + PERIOD_MS), T0 + 10)
    assert exit_sizes(decision) == (Decimal("0.01834"), Decimal("-0.018"))


def funding_exit(s: Strategy, ms: int) -> Decision:
    prices(s, ms)
    decision = s.on_funding(funding("-0.0003", NEXT + PERIOD_MS), ms)  # flipped against the position
    assert decision.action is Action.EXIT
    return decision


def test_an_exit_a_thin_book_fills_in_part_goes_on_until_the_legs_are_flat() -> None:
    s = opened()
    first = funding_exit(s, T0 + 10)
    assert first.plan is not None
    # the perp buys back 0.008 of 0.020 (the book ran out); the spot sells as much
    _, done = run_plan(first.plan, scripted("0.008", "all"))
    result = s.on_execution_result(done, T0 + 20)
    assert (s.state.legs.size(SPOT_KEY), s.state.legs.size(PERP_KEY)) == (Decimal("0.012"), Decimal("-0.012"))
    assert "the exit goes on after 1000 ms" in result.reason
    # not before the wait: a price then is only a basis reading
    assert s.on_price(perp_price("50010", T0 + 500), T0 + 500).plan is None
    second = s.on_price(perp_price("50010", T0 + 1_020), T0 + 1_020)
    assert second.action is Action.EXIT
    assert exit_sizes(second) == (Decimal("0.012"), Decimal("-0.012"))
    assert "attempt 2: spot 0.01200, perp -0.012 still open" in second.reason
    assert second.reason.startswith(first.reason)
    # nothing fills at all this time (a zero first leg aborts, both legs hedged): the wait doubles
    _, nothing = run_plan(second.plan, scripted("0"))  # type: ignore[arg-type]
    assert "after 2000 ms" in s.on_execution_result(nothing, T0 + 1_030).reason
    assert s.on_price(perp_price("50010", T0 + 2_000), T0 + 2_000).plan is None
    third = s.on_price(perp_price("50010", T0 + 3_030), T0 + 3_030)
    assert "attempt 3" in third.reason
    _, flat = run_plan(third.plan)  # type: ignore[arg-type]
    assert "still open" not in s.on_execution_result(flat, T0 + 3_040).reason
    assert s.is_flat()
    assert s.state.exiting is None
    # flat: later prices exit nothing more
    assert s.on_price(perp_price("50010", T0 + 90_000), T0 + 90_000).plan is None


def spot_short_near_liquidation(s: Strategy) -> Decision:
    """The spot short's margin position 0.020 at mark 50000, liquidated at 54500 (9% away)."""
    return s.on_position(
        position(SPOT_VENUE, "-0.020", mark="50000", liquidation="54500", updated_ms=T0 + 10), T0 + 10
    )


def test_an_emergency_exit_goes_on_as_an_emergency_with_its_leg_first() -> None:
    s = opened(Direction.NEGATIVE)
    prices(s, T0 + 10)
    danger = spot_short_near_liquidation(s)
    assert danger.action is Action.EMERGENCY_EXIT
    assert danger.plan is not None
    assert danger.plan.spot_first
    _, done = run_plan(danger.plan, scripted("0.005", "all"))
    s.on_execution_result(done, T0 + 20)
    s.set_gate(TradingStateKind.ACTIVE, paused=True)  # paused: an emergency exit still goes
    again = s.on_price(spot_price("50000", T0 + 1_100), T0 + 1_100)
    assert again.action is Action.EMERGENCY_EXIT
    assert isinstance(again.plan, ExitPlan)
    assert (again.plan.spot_first, again.plan.emergency) == (True, True)
    assert exit_sizes(again) == (Decimal("-0.015"), Decimal("0.015"))


def test_a_new_funding_period_that_says_hold_drops_an_unfinished_funding_exit() -> None:
    s = opened()
    first = funding_exit(s, T0 + 10)
    _, done = run_plan(first.plan, scripted("0.008", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    hold = s.on_funding(funding("0.0003", NEXT + 2 * PERIOD_MS), T0 + 30)  # the carry is back
    assert hold.action is Action.HOLD
    assert "unfinished exit" in hold.reason
    assert s.on_price(perp_price("50010", T0 + 5_000), T0 + 5_000).plan is None


def test_an_unfinished_exit_waits_for_the_gate_and_goes_when_it_opens() -> None:
    s = opened()
    first = funding_exit(s, T0 + 10)
    _, done = run_plan(first.plan, scripted("0.008", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    s.set_gate(TradingStateKind.HALTED, paused=False)
    held = s.on_price(perp_price("50010", T0 + 2_000), T0 + 2_000)
    assert held.waits
    assert held.plan is None
    s.set_gate(TradingStateKind.ACTIVE, paused=False)
    assert s.on_price(perp_price("50010", T0 + 2_100), T0 + 2_100).action is Action.EXIT


def test_a_perp_rest_below_the_minimum_notional_is_still_closed_reduce_only() -> None:
    # the perp buys back all but 0.001 (50 USDT, below the perp's 100 minimum notional), and
    # the spot sells as much: a reduce-only order is exempt from it, so the rest is not left
    s = opened()
    first = funding_exit(s, T0 + 10)
    _, done = run_plan(first.plan, scripted("0.019", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    assert (s.state.legs.size(SPOT_KEY), s.state.legs.size(PERP_KEY)) == (Decimal("0.001"), Decimal("-0.001"))
    again = s.on_price(perp_price("50010", T0 + 2_000), T0 + 2_000)
    assert exit_sizes(again) == (Decimal("0.001"), Decimal("-0.001"))
    steps, _ = run_plan(again.plan)  # type: ignore[arg-type]
    assert [(step.kind.value, step.quantity) for step in steps] == [("xp", Decimal("0.001"))] + [
        ("xs", step.quantity) for step in steps[1:]
    ]


def test_an_unfinished_exit_whose_rest_cannot_be_traded_ends_there() -> None:
    s = opened(dust_qty=Decimal("0.00001"))
    first = funding_exit(s, T0 + 10)
    # the perp closes whole, the spot sells all but 0.00009 (4.5 USDT: below its minimum
    # notional, so the plan stops there, but above this bot's dust)
    _, done = run_plan(first.plan, scripted("all", "0.01991"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    assert s.state.legs.size(SPOT_KEY) == Decimal("0.00009")
    ended = s.on_price(perp_price("50010", T0 + 2_000), T0 + 2_000)
    assert ended.plan is None
    assert "the exit ends here" in ended.reason
    assert s.state.exiting is None


def test_an_exit_left_open_and_then_flattened_by_positions_does_not_close_the_next_entry() -> None:
    s = opened()
    first = funding_exit(s, T0 + 10)
    _, done = run_plan(first.plan, scripted("0.008", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    # the rest is closed elsewhere (an operator): the positions say flat before the retry
    s.on_position(position(SPOT_VENUE, "0", updated_ms=T0 + 30), T0 + 30)
    s.on_position(position(PERP_VENUE, "0", updated_ms=T0 + 30), T0 + 30)
    prices(s, T0 + 40)
    entry = s.on_funding(funding("0.0003", NEXT + 2 * PERIOD_MS), T0 + 40)
    assert entry.action is Action.ENTER_POSITIVE
    _, entered = run_plan(entry.plan)  # type: ignore[arg-type]
    assert "still open" not in s.on_execution_result(entered, T0 + 50).reason
    assert s.on_price(perp_price("50010", T0 + 90_000), T0 + 90_000).plan is None


def test_an_unfinished_emergency_exit_is_never_weakened_nor_dropped() -> None:
    s = opened(Direction.NEGATIVE)
    prices(s, T0 + 10)
    danger = spot_short_near_liquidation(s)
    _, done = run_plan(danger.plan, scripted("0.005", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 20)
    # a funding period that would exit anyway starts no plan of its own, and one that says
    # hold does not drop the emergency
    assert s.on_funding(funding("-0.000001", NEXT + PERIOD_MS), T0 + 30).plan is None
    assert "dropped" not in s.on_funding(funding("-0.0003", NEXT + 2 * PERIOD_MS), T0 + 40).reason
    again = s.on_price(spot_price("50000", T0 + 1_100), T0 + 1_100)
    assert again.action is Action.EMERGENCY_EXIT
    assert isinstance(again.plan, ExitPlan)
    assert (again.plan.spot_first, again.plan.emergency) == (True, True)


def test_a_hedge_check_exit_left_open_is_not_dropped_by_a_funding_hold() -> None:
    s = restarted("0.020", "-0.010")
    s.on_price(spot_price("50000", T0), T0)
    close = s.on_price(perp_price("50010", T0), T0)
    assert close.action is Action.EXIT
    assert "legs unhedged after a restart" in close.reason
    # the perp buys back 0.004 of 0.010, the spot sells as much: spot 0.016 / perp -0.006
    _, done = run_plan(close.plan, scripted("0.004", "all"))  # type: ignore[arg-type]
    s.on_execution_result(done, T0 + 10)
    hold = s.on_funding(funding("0.0003", NEXT), T0 + 20)  # a carry worth keeping
    assert "dropped" not in hold.reason
    again = s.on_price(perp_price("50010", T0 + 1_100), T0 + 1_100)
    assert again.action is Action.EXIT
    assert exit_sizes(again) == (Decimal("0.016"), Decimal("-0.006"))


# -- gating --------------------------------------------------------------------------------------


def test_a_funding_period_is_handled_once() -> None:
    s = strategy()
    prices(s, T0)
    assert s.on_funding(funding("0.0001", NEXT), T0).action is Action.HOLD
    repeat = s.on_funding(funding("0.0003", NEXT), T0 + 3_000)
    assert repeat.action is Action.IGNORE
    assert "already handled" in repeat.reason
    assert s.on_funding(funding("0.0003", NEXT - PERIOD_MS), T0 + 3_000).action is Action.IGNORE
    assert s.on_funding(funding("0.0003", NEXT + PERIOD_MS), T0 + 3_000).action is Action.ENTER_POSITIVE


def test_funding_is_ignored_while_an_execution_is_in_flight() -> None:
    s = strategy()
    prices(s, T0)
    entry = s.on_funding(funding("0.0003", NEXT), T0)
    assert entry.plan is not None
    skipped = s.on_funding(funding("0.000001", NEXT + PERIOD_MS), T0 + 1)
    assert skipped.action is Action.IGNORE
    assert f"sequence {T0} in flight" in skipped.reason
    _, done = run_plan(entry.plan)
    s.on_execution_result(done, T0 + 2)
    # The skipped period was not consumed: it is evaluated once the flight lands.
    assert s.on_funding(funding("0.000001", NEXT + PERIOD_MS), T0 + 3).action is Action.EXIT


@pytest.mark.parametrize(
    ("spot_ms", "perp_ms", "funding_ms", "reason"),
    [
        (T0 - 60_001, T0, 0, "spot price is 60001 ms old (limit 60000)"),
        (T0, T0 - 60_001, 0, "perp price is 60001 ms old (limit 60000)"),
        (T0, T0, T0 - 60_001, "funding update is 60001 ms old (limit 60000)"),
    ],
)
def test_funding_is_ignored_when_either_legs_data_is_stale(
    spot_ms: int, perp_ms: int, funding_ms: int, reason: str
) -> None:
    s = strategy()
    s.on_price(spot_price("50000", spot_ms), spot_ms)
    s.on_price(perp_price("50010", perp_ms), perp_ms)
    decision = s.on_funding(funding("0.0003", NEXT, time_ms=funding_ms), T0)
    assert decision.action is Action.IGNORE
    assert reason in decision.reason
    # Data exactly at the limit is still fresh, and the ignored period was not consumed.
    prices(s, T0 - 60_000)
    assert s.on_funding(funding("0.0003", NEXT, time_ms=T0 - 60_000), T0).action is Action.ENTER_POSITIVE


def test_funding_is_ignored_before_both_legs_have_a_price() -> None:
    s = strategy()
    s.on_price(spot_price("50000", T0), T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert decision.action is Action.IGNORE
    assert "no perp price yet" in decision.reason


def test_events_for_other_instruments_are_ignored() -> None:
    s = strategy()
    prices(s, T0)
    other = funding("0.0003", NEXT)
    other_symbol = type(other)(symbol="ETHUSDT", rate=other.rate, interval_hours=8, next_funding_ms=NEXT)
    assert s.on_funding(other_symbol, T0).action is Action.IGNORE
    assert s.on_position(position("okx", "1"), T0).action is Action.IGNORE
    assert (
        s.on_price(PriceChange(venue="okx", symbol="BTCUSDT", price=Decimal(1)), T0).action is Action.IGNORE
    )


def test_an_older_price_never_replaces_a_newer_one() -> None:
    s = strategy()
    s.on_price(spot_price("50000", T0), T0)
    assert s.on_price(spot_price("40000", T0 - 1), T0).action is Action.IGNORE
    assert s.state.spot_price == Decimal(50000)


# -- toxic basis ---------------------------------------------------------------------------------


def test_three_consecutive_toxic_basis_readings_exit() -> None:
    s = opened()
    s.on_price(spot_price("50000", T0 + 10), T0 + 10)
    first = s.on_price(perp_price("49700", T0 + 11), T0 + 11)  # basis -0.006 < -0.005
    assert first.action is Action.HOLD
    assert "toxic reading 1 of 3" in first.reason
    assert s.on_price(perp_price("49690", T0 + 12), T0 + 12).action is Action.HOLD
    third = s.on_price(perp_price("49700", T0 + 13), T0 + 13)
    assert third.action is Action.EXIT
    assert "toxic reading 3 of 3" in third.reason
    assert exit_sizes(third) == (Decimal("0.020"), Decimal("-0.020"))


def test_a_normal_basis_reading_resets_the_toxic_count() -> None:
    s = opened()
    s.on_price(spot_price("50000", T0 + 10), T0 + 10)
    s.on_price(perp_price("49700", T0 + 11), T0 + 11)
    s.on_price(perp_price("49700", T0 + 12), T0 + 12)
    assert s.on_price(perp_price("49800", T0 + 13), T0 + 13).action is Action.HOLD  # -0.004
    assert s.state.toxic_readings == 0
    again = s.on_price(perp_price("49700", T0 + 14), T0 + 14)
    assert again.action is Action.HOLD
    assert "toxic reading 1 of 3" in again.reason


def test_a_basis_exactly_at_the_threshold_is_not_toxic() -> None:
    s = opened()
    s.on_price(spot_price("50000", T0 + 10), T0 + 10)
    for ms in (T0 + 11, T0 + 12, T0 + 13):
        decision = s.on_price(perp_price("49750", ms), ms)  # basis -0.005 exactly
        assert decision.action is Action.HOLD
        assert "not toxic" in decision.reason


def test_the_toxic_basis_of_a_negative_position_is_the_mirror_image() -> None:
    s = opened(Direction.NEGATIVE)
    s.on_price(spot_price("50000", T0 + 10), T0 + 10)
    assert s.on_price(perp_price("49700", T0 + 11), T0 + 11).action is Action.HOLD  # good for it
    assert s.state.toxic_readings == 0
    for ms in (T0 + 12, T0 + 13):
        assert s.on_price(perp_price("50300", ms), ms).action is Action.HOLD  # +0.006 > 0.005
    assert s.on_price(perp_price("50300", T0 + 14), T0 + 14).action is Action.EXIT


def test_basis_readings_closer_than_the_check_interval_do_not_count() -> None:
    s = opened(toxic_check_interval_ms=1_000)
    assert s.on_price(spot_price("50000", T0 + 10), T0 + 10).action is Action.HOLD  # a normal reading
    assert s.on_price(perp_price("49700", T0 + 500), T0 + 500).action is Action.IGNORE
    assert s.on_price(perp_price("49700", T0 + 1_010), T0 + 1_010).action is Action.HOLD
    assert s.state.toxic_readings == 1
    assert s.on_price(perp_price("49700", T0 + 1_500), T0 + 1_500).action is Action.IGNORE
    assert s.state.toxic_readings == 1
    assert s.on_price(perp_price("49700", T0 + 2_010), T0 + 2_010).action is Action.HOLD
    assert s.state.toxic_readings == 2


def test_no_basis_is_counted_while_flat() -> None:
    s = strategy()
    prices(s, T0, perp="40000")
    assert s.on_price(perp_price("40000", T0 + 1), T0 + 1).reason == "flat; no basis check"
    assert s.state.toxic_readings == 0


# -- liquidation guard ---------------------------------------------------------------------------


def test_a_short_perp_near_liquidation_exits_it_and_its_spot_hedge() -> None:
    s = opened()
    decision = s.on_position(
        position(PERP_VENUE, "-0.02", mark="50000", liquidation="54000", updated_ms=T0 + 5), T0 + 5
    )
    assert decision.action is Action.EMERGENCY_EXIT
    assert "liquidation distance 0.08 < threshold 0.1" in decision.reason
    assert isinstance(decision.plan, ExitPlan)
    assert decision.plan.emergency
    assert not decision.plan.spot_first
    assert exit_sizes(decision) == (Decimal("0.020"), Decimal("-0.02"))


def test_a_long_perp_near_liquidation_exits_it_and_its_spot_hedge() -> None:
    s = opened(Direction.NEGATIVE)
    decision = s.on_position(
        position(PERP_VENUE, "0.02", mark="50000", liquidation="46000", updated_ms=T0 + 5), T0 + 5
    )
    assert decision.action is Action.EMERGENCY_EXIT
    assert exit_sizes(decision) == (Decimal("-0.020"), Decimal("0.02"))


def test_a_margin_short_spot_near_liquidation_is_closed_first_then_its_perp_hedge() -> None:
    s = opened(Direction.NEGATIVE)
    decision = s.on_position(
        position(SPOT_VENUE, "-0.02", mark="50000", liquidation="54500", updated_ms=T0 + 5), T0 + 5
    )
    assert decision.action is Action.EMERGENCY_EXIT  # (54500 - 50000) / 50000 = 0.09
    assert isinstance(decision.plan, ExitPlan)
    assert decision.plan.spot_first
    assert exit_sizes(decision) == (Decimal("-0.02"), Decimal("0.020"))


@pytest.mark.parametrize(
    ("size", "liquidation"),
    [("-0.02", "55000"), ("0.02", "45000")],  # distance 0.10 exactly: not below the threshold
)
def test_a_position_at_the_threshold_distance_holds(size: str, liquidation: str) -> None:
    s = opened(Direction.POSITIVE if size.startswith("-") else Direction.NEGATIVE)
    decision = s.on_position(position(PERP_VENUE, size, mark="50000", liquidation=liquidation), T0 + 5)
    assert decision.action is Action.HOLD
    assert "liquidation distance 0.1 >= threshold 0.1" in decision.reason


@pytest.mark.parametrize(("size", "liquidation"), [("-0.02", "0"), ("0", "54000")])
def test_no_liquidation_price_or_no_size_means_no_guard_action(size: str, liquidation: str) -> None:
    s = opened()
    decision = s.on_position(position(PERP_VENUE, size, mark="50000", liquidation=liquidation), T0 + 5)
    assert decision.action is Action.HOLD
    assert decision.plan is None
    assert "no liquidation risk" in decision.reason


def test_the_guard_uses_the_last_price_when_a_position_has_no_mark() -> None:
    s = opened()
    prices(s, T0 + 5, perp="50000")
    decision = s.on_position(position(PERP_VENUE, "-0.02", liquidation="54000", updated_ms=T0 + 5), T0 + 5)
    assert decision.action is Action.EMERGENCY_EXIT


def test_a_liquidation_emergency_during_a_flight_exits_as_soon_as_it_lands() -> None:
    s = opened()
    prices(s, T0 + 10)
    regular = s.on_funding(funding("0.000005", NEXT + PERIOD_MS), T0 + 10)
    assert isinstance(regular.plan, ExitPlan)
    deferred = s.on_position(position(PERP_VENUE, "-0.02", mark="50000", liquidation="54000"), T0 + 11)
    assert deferred.action is Action.EMERGENCY_EXIT
    assert deferred.plan is None
    assert "deferred until sequence" in deferred.reason
    # The regular exit closes only the perp (the spot leg fails for good, say): still open.
    perp_only = Done(
        regular.plan.sequence_id,
        Outcome.PARTIAL,
        "spot failed",
        (run_plan(regular.plan)[1].fills[0],),
    )
    follow_up = s.on_execution_result(perp_only, T0 + 12)
    assert follow_up.action is Action.EMERGENCY_EXIT
    assert exit_sizes(follow_up) == (Decimal("0.020"), Decimal("0.000"))


def test_positions_do_not_resync_legs_while_a_plan_is_in_flight() -> None:
    s = opened()
    prices(s, T0 + 10)
    s.on_funding(funding("0.000005", NEXT + PERIOD_MS), T0 + 10)
    s.on_position(position(PERP_VENUE, "0", updated_ms=T0 + 11), T0 + 11)
    assert s.state.legs.size(PERP_KEY) == Decimal("-0.020")


# -- execution results and state -----------------------------------------------------------------


def test_an_execution_result_applies_its_fills_and_ends_the_flight() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert decision.plan is not None
    _, done = run_plan(decision.plan)
    answer = s.on_execution_result(done, T0 + 1)
    assert answer.action is Action.HOLD
    assert f"sequence {T0} ENTERED" in answer.reason
    assert s.state.legs.size(SPOT_KEY) == Decimal("0.020")
    assert s.state.legs.size(PERP_KEY) == Decimal("-0.020")
    assert s.direction() is Direction.POSITIVE
    assert not s.in_flight


def test_a_result_for_a_sequence_not_in_flight_is_ignored() -> None:
    s = strategy()
    decision = s.on_execution_result(Done(42, Outcome.ENTERED, "late duplicate"), T0)
    assert decision.action is Action.IGNORE
    assert s.is_flat()


def test_an_aborted_entry_leaves_the_strategy_flat_and_free() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert decision.plan is not None
    s.on_execution_result(Done(decision.plan.sequence_id, Outcome.ABORTED, "halted"), T0 + 1)
    assert s.is_flat()
    assert not s.in_flight


def test_sequence_ids_increase_even_within_one_millisecond() -> None:
    s = strategy()
    prices(s, T0)
    first = s.on_funding(funding("0.0003", NEXT), T0)
    assert first.plan is not None
    s.on_execution_result(Done(first.plan.sequence_id, Outcome.ABORTED, "halted"), T0)
    second = s.on_funding(funding("0.0003", NEXT + PERIOD_MS), T0)
    assert second.plan is not None
    assert (first.plan.sequence_id, second.plan.sequence_id) == (T0, T0 + 1)


# -- after a restart -----------------------------------------------------------------------------


def restarted(spot: str, perp: str, *, last_sequence_id: int = 0, **overrides: Any) -> Strategy:
    """A strategy built after a restart with legs of the given signed sizes (as loaded from Redis)."""
    config = make_config(**overrides)
    sizes = {SPOT_KEY: Decimal(spot), PERP_KEY: Decimal(perp)}
    book = LegBook.for_instruments(config.agent, (config.spot, config.perp))
    legs = LegBook(config.agent, tuple(dataclasses.replace(leg, size=sizes[leg.key]) for leg in book.legs))
    return Strategy.after_restart(config, legs, last_sequence_id=last_sequence_id)


def test_unhedged_legs_after_a_restart_are_closed_once_both_prices_are_known() -> None:
    s = restarted("0.02", "0")  # the spot entry filled, the perp hedge never did
    waiting = s.on_price(spot_price("50000", T0), T0)
    assert waiting.plan is None
    assert not s.in_flight
    decision = s.on_price(perp_price("50010", T0), T0)
    assert decision.action is Action.EXIT
    assert decision.reason == "legs unhedged after a restart: spot 0.02, perp 0; closing both"
    assert exit_sizes(decision) == (Decimal("0.02"), Decimal("0"))
    assert s.in_flight
    assert isinstance(decision.plan, ExitPlan)
    steps, done = run_plan(decision.plan)
    assert [(step.kind.value, step.side.value, step.quantity) for step in steps] == [
        ("xs", "SELL", Decimal("0.02"))
    ]
    s.on_execution_result(done, T0 + 1)
    assert s.is_flat()


def test_a_partly_hedged_position_after_a_restart_closes_both_legs_to_flat() -> None:
    s = restarted("0.02", "-0.01")  # the perp hedge filled partially before the kill
    s.on_price(spot_price("50000", T0), T0)
    decision = s.on_price(perp_price("50010", T0), T0)
    assert decision.reason == "legs unhedged after a restart: spot 0.02, perp -0.01; closing both"
    assert isinstance(decision.plan, ExitPlan)
    steps, done = run_plan(decision.plan)
    assert [(step.kind.value, step.side.value, step.quantity, step.reduce_only) for step in steps] == [
        ("xp", "BUY", Decimal("0.010"), True),
        ("xs", "SELL", Decimal("0.02000"), False),
    ]
    s.on_execution_result(done, T0 + 1)
    assert s.is_flat()


def test_hedged_legs_after_a_restart_are_kept_and_managed_as_before() -> None:
    s = restarted("0.02", "-0.02")
    s.on_price(spot_price("50000", T0), T0)
    decision = s.on_price(perp_price("50010", T0), T0)
    assert decision.action is Action.HOLD
    assert decision.plan is None
    assert decision.reason == "legs hedged after a restart: spot 0.02, perp -0.02; kept"
    assert not s.in_flight
    # managed normally afterwards: the next price reads the basis, a fading rate exits
    assert "not toxic" in s.on_price(perp_price("50010", T0 + 1), T0 + 1).reason
    assert s.on_funding(funding("0.0003", NEXT), T0 + 1).action is Action.HOLD
    assert exit_sizes(s.on_funding(funding("0.000005", NEXT + PERIOD_MS), T0 + 2)) == (
        Decimal("0.02"),
        Decimal("-0.02"),
    )


def test_a_difference_below_dust_counts_as_hedged_after_a_restart() -> None:
    s = restarted("0.02005", "-0.020")  # |net| 0.00005 < dust 0.0001
    prices(s, T0)
    assert not s.in_flight
    assert s.state.hedge_check == ""


def test_flat_legs_after_a_restart_need_nothing_and_trade_as_usual() -> None:
    s = restarted("0", "0")
    s.on_price(spot_price("50000", T0), T0)
    decision = s.on_price(perp_price("50010", T0), T0)
    assert decision.action is Action.HOLD
    assert decision.plan is None
    assert decision.reason == "legs flat after a restart (spot 0, perp 0)"
    assert s.on_funding(funding("0.0003", NEXT), T0).action is Action.ENTER_POSITIVE


def test_the_restart_check_waits_for_the_plan_in_flight() -> None:
    s = restarted("0.02", "-0.01")
    s.on_price(spot_price("50000", T0), T0)
    # a liquidation emergency comes before the perp's price: its exit is in flight
    emergency = s.on_position(position(PERP_VENUE, "-0.01", mark="50000", liquidation="51000"), T0)
    assert emergency.action is Action.EMERGENCY_EXIT
    assert emergency.plan is not None
    assert s.on_price(perp_price("50010", T0 + 1), T0 + 1).plan is None
    assert s.state.hedge_check == "after a restart"
    # the emergency exit filled nothing (refused): the legs are still unhedged, so the check runs
    # as soon as the plan's result is in (both prices are known)
    decision = s.on_execution_result(Done(emergency.plan.sequence_id, Outcome.ABORTED, "refused"), T0 + 2)
    # closing both, still as the emergency it is (never weakened to an ordinary exit)
    assert decision.action is Action.EMERGENCY_EXIT
    assert "legs unhedged after a restart" in decision.reason


def test_the_restart_check_runs_once() -> None:
    s = restarted("0.02", "0")
    prices(s, T0)
    exit_plan = s.state.in_flight_sequence
    assert exit_plan is not None
    s.on_execution_result(Done(exit_plan, Outcome.ABORTED, "agent paused"), T0 + 1)
    assert s.on_price(perp_price("50010", T0 + 2), T0 + 2).plan is None


def test_the_restart_exit_uses_a_fresh_sequence_id_after_the_cut_plan() -> None:
    cut = T0 + 5_000  # the plan cut by the kill, stamped by a clock now behind
    s = restarted("0.02", "0", last_sequence_id=cut)
    prices(s, T0)
    assert s.state.in_flight_sequence == cut + 1
    fresh = restarted("0.02", "0")
    prices(fresh, T0)
    assert fresh.state.in_flight_sequence == T0


def test_a_strategy_not_built_after_a_restart_never_runs_the_check() -> None:
    unhedged = restarted("0.02", "0").state
    s = Strategy(make_config(), dataclasses.replace(unhedged, hedge_check=""))
    prices(s, T0)
    assert not s.in_flight


def test_a_restored_state_continues_where_it_left_off() -> None:
    s = opened()
    restored = Strategy(s.config, s.state)
    prices(restored, T0 + 10)
    assert restored.on_funding(funding("0.0003", NEXT), T0 + 10).action is Action.IGNORE  # handled
    assert restored.direction() is Direction.POSITIVE


def test_a_state_for_other_legs_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match the config"):
        Strategy(make_config(), StrategyState(legs=LegBook("arb1")))


def test_the_strategy_imports_no_io_transport_or_clock_module() -> None:
    forbidden = {"grpc", "nats", "redis", "ccxt", "dbos", "google", "asyncio", "time", "datetime", "random"}
    package = Path(__file__).resolve().parents[3] / "src" / "opensqt" / "arbitrage"
    sources = sorted(package.glob("*.py"))
    assert sources
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{source.name} imports {roots & forbidden}"


# -- legs that changed outside a plan ------------------------------------------------------------


def book(s: Strategy, spot: str, perp: str) -> LegBook:
    """The legs as recorded (Redis), with the given signed sizes."""
    sizes = {SPOT_KEY: Decimal(spot), PERP_KEY: Decimal(perp)}
    return LegBook(
        s.config.agent, tuple(dataclasses.replace(leg, size=sizes[leg.key]) for leg in s.state.legs.legs)
    )


def test_a_late_fill_outside_a_plan_is_followed_and_an_unhedged_leg_closed() -> None:
    s = opened()  # 0.02 / -0.02
    decision = s.sync_legs(book(s, "0.02", "-0.03"), T0 + 2)  # a late perp fill of an earlier plan
    assert decision.action is Action.EXIT
    assert "after a fill outside a plan" in decision.reason
    assert exit_sizes(decision) == (Decimal("0.02"), Decimal("-0.03"))


def test_legs_that_did_not_change_arm_nothing_and_a_plan_in_flight_keeps_its_legs() -> None:
    s = opened()
    assert s.sync_legs(book(s, "0.02", "-0.02"), T0 + 2).action is Action.IGNORE
    assert s.state.hedge_check == ""
    decision = s.on_funding(funding("-0.0003", NEXT + PERIOD_MS), T0 + 3)  # the exit is in flight
    assert decision.action is Action.EXIT
    assert s.sync_legs(book(s, "0", "0"), T0 + 4).action is Action.IGNORE
    assert s.state.legs.size(SPOT_KEY) == Decimal("0.02")


def test_a_result_whose_recorded_legs_differ_from_its_fills_checks_the_hedge() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert isinstance(decision.plan, EntryPlan)
    _, done = run_plan(decision.plan)  # both legs 0.02
    # the order stream also brought a perp fill of an order no plan reported
    result = s.on_execution_result(done, T0 + 1, legs=book(s, "0.02", "-0.025"))
    assert result.action is Action.EXIT
    assert "after a fill outside the plan" in result.reason


def test_a_failed_plan_with_an_unknown_order_waits_before_the_hedge_check() -> None:
    s = strategy()
    prices(s, T0)
    decision = s.on_funding(funding("0.0003", NEXT), T0)
    assert decision.plan is not None
    failed = Done(decision.plan.sequence_id, Outcome.FAILED, "StepUnknownError: lost answer")
    held = s.on_execution_result(failed, T0 + 1, legs=book(s, "0.02", "0"), orders_unknown=True)
    assert held.action is Action.HOLD
    settle = s.config.unknown_order_settle_ms
    prices(s, T0 + settle)
    assert not s.in_flight  # still waiting: the order's fill may yet arrive
    assert s.on_funding(funding("0.0003", NEXT + PERIOD_MS), T0 + settle).action is Action.IGNORE
    decision = s.on_price(perp_price("50010", T0 + 1 + settle), T0 + 1 + settle)
    assert decision.action is Action.EXIT
    assert "after a failed plan" in decision.reason
