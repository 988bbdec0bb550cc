"""The pure rules of running a plan: orders for steps, results from orders, refusals, own fills."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.arbitrage import (
    Action,
    Direction,
    ExitPlan,
    OrderStep,
    StepKind,
    StepResult,
    build_entry_plan,
)
from opensqt.arbitrage.execution import (
    agent_of,
    fill_of_own_order,
    order_for_step,
    retry_delay_s,
    step_result,
)
from opensqt.arbitrage.strategy import plan_refusal
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side, TradingStateKind

from . import AGENT, PERP, SPOT, T0

D = Decimal
KEYS = frozenset({f"{SPOT.venue}:{SPOT.symbol}", f"{PERP.venue}:{PERP.symbol}"})


def entry_spot_step() -> OrderStep:
    plan = build_entry_plan(
        agent=AGENT,
        sequence_id=T0,
        direction=Direction.POSITIVE,
        spot=SPOT,
        perp=PERP,
        spot_price=D(50000),
        perp_price=D(50010),
        base_qty=D("0.02"),
    )
    step = plan.next_step([])
    assert isinstance(step, OrderStep)
    return step


def exit_steps() -> tuple[OrderStep, OrderStep]:
    plan = ExitPlan(AGENT, T0, SPOT, PERP, spot_size=D("0.02"), perp_size=D("-0.02"))
    perp = plan.next_step([])
    assert isinstance(perp, OrderStep)
    spot = plan.next_step([StepResult(perp.client_order_id, D("0.02"))])
    assert isinstance(spot, OrderStep)
    return perp, spot


def venue_order(step: OrderStep, filled: str, status: OrderStatus = OrderStatus.FILLED) -> Order:
    return Order(
        symbol=step.symbol,
        side=step.side,
        order_type=OrderType.MARKET,
        quantity=step.quantity,
        client_order_id=step.client_order_id,
        venue=step.venue,
        market_type=step.market_type,
        status=status,
        filled_qty=D(filled),
        average_price=D(50000) if D(filled) else D(0),
        created_ms=T0,
        updated_ms=T0 + 5,
    )


def test_entry_order_is_a_plain_market_order_with_the_steps_client_id() -> None:
    step = entry_spot_step()
    order = order_for_step(step, "main")
    assert (order.order_type, order.side, order.quantity) == (OrderType.MARKET, Side.BUY, D("0.02"))
    assert (order.client_order_id, order.venue, order.account) == (step.client_order_id, SPOT.venue, "main")
    assert order.reduce_only is False


def test_exit_orders_of_both_legs_are_reduce_only_so_reducing_lets_them_through() -> None:
    perp, spot = exit_steps()
    assert (perp.kind, spot.kind) == (StepKind.EXIT_PERP, StepKind.EXIT_SPOT)
    assert order_for_step(perp).reduce_only
    assert order_for_step(spot).reduce_only
    compensation = replace(entry_spot_step(), kind=StepKind.COMPENSATE_SPOT, side=Side.SELL)
    assert order_for_step(compensation).reduce_only


def test_step_result_reports_the_venues_executed_quantity_and_price() -> None:
    step = entry_spot_step()
    result = step_result(step, venue_order(step, "0.015", OrderStatus.CANCELED))
    assert (result.filled_qty, result.average_price, result.time_ms) == (D("0.015"), D(50000), T0 + 5)
    assert "CANCELED with 0.015 of 0.02" in result.error


def test_step_result_without_an_order_is_a_zero_fill_with_the_reason() -> None:
    result = step_result(entry_spot_step(), None, "InsufficientFunds: no USDT")
    assert (result.filled_qty, result.error) == (D(0), "InsufficientFunds: no USDT")


def test_step_result_and_the_streams_fill_are_what_a_buy_received_after_a_base_asset_commission() -> None:
    step = entry_spot_step()
    order = replace(venue_order(step, "0.02"), base_commission=D("0.00002"))
    assert step_result(step, order).filled_qty == D("0.01998")
    fill = fill_of_own_order(order, AGENT, KEYS)
    assert fill is not None
    assert fill.quantity == D("0.01998")
    # unreported fees, and the buy pays none in the base asset: the executed quantity
    assert step_result(step, venue_order(step, "0.02")).filled_qty == D("0.02")
    # unreported, and it does (a REST resync, trades that could not be read): taken at the
    # configured rate, rounded up, so the leg never counts more than the account holds
    assert step_result(step, venue_order(step, "0.02"), buy_fee=D("0.00075")).filled_qty == D("0.019985")
    unreported = replace(venue_order(step, "0.02003"), quantity=D("0.02003"))
    fill = fill_of_own_order(unreported, AGENT, KEYS, buy_fee=D("0.00075"))
    assert fill is not None
    assert fill.quantity == D("0.02001497")  # 0.02003 - 0.0000150225 rounded up to 0.00001503
    # a sell's commission is never in the base asset it gives
    _, spot_exit = exit_steps()
    sold = replace(venue_order(spot_exit, "0.02"), base_commission=D(0))
    assert step_result(spot_exit, sold).filled_qty == D("0.02")


def test_step_result_never_reports_more_than_the_step_ordered() -> None:
    step = entry_spot_step()
    assert step_result(step, venue_order(step, "0.03")).filled_qty == step.quantity


@pytest.mark.parametrize(
    ("action", "state", "paused", "refused"),
    [
        (Action.ENTER_POSITIVE, TradingStateKind.ACTIVE, False, ""),
        (Action.ENTER_NEGATIVE, TradingStateKind.REDUCING, False, "REDUCING"),
        (Action.ENTER_POSITIVE, TradingStateKind.ACTIVE, True, "paused"),
        (Action.EXIT, TradingStateKind.REDUCING, False, ""),
        (Action.EXIT, TradingStateKind.ACTIVE, True, "paused"),
        (Action.EMERGENCY_EXIT, TradingStateKind.REDUCING, True, ""),
        (Action.EXIT, TradingStateKind.HALTED, False, "HALTED"),
        (Action.EMERGENCY_EXIT, TradingStateKind.HALTED, False, "HALTED"),
    ],
)
def test_refusal_follows_the_trading_state_and_the_pause(
    action: Action, state: TradingStateKind, paused: bool, refused: str
) -> None:
    reason = plan_refusal(action, state, paused=paused)
    assert (refused in reason) if refused else reason == ""
    assert bool(reason) == bool(refused)


@pytest.mark.parametrize(
    ("client_order_id", "agent"),
    [
        ("arb1-loyw3v28-es0", "arb1"),
        ("arb-2-loyw3v28-xsa", "arb-2"),
        ("arb1-loyw3v28-c0", ""),  # not a step code
        ("BTCUSDT-mm1-299000-B-0", ""),  # a grid id
        ("plain", ""),
    ],
)
def test_agent_of_reads_the_agent_even_with_dashes_in_its_name(client_order_id: str, agent: str) -> None:
    assert agent_of(client_order_id) == agent


def test_a_final_filled_order_of_the_agent_is_one_fill_on_its_leg() -> None:
    step = entry_spot_step()
    fill = fill_of_own_order(venue_order(step, "0.02"), AGENT, KEYS)
    assert fill is not None
    assert (fill.key, fill.side, fill.quantity, fill.price) == (
        f"{SPOT.venue}:{SPOT.symbol}",
        Side.BUY,
        D("0.02"),
        D(50000),
    )


def test_working_foreign_and_empty_orders_are_no_fill() -> None:
    step = entry_spot_step()
    assert fill_of_own_order(venue_order(step, "0.01", OrderStatus.PARTIALLY_FILLED), AGENT, KEYS) is None
    assert fill_of_own_order(venue_order(step, "0", OrderStatus.EXPIRED), AGENT, KEYS) is None
    other = replace(venue_order(step, "0.02"), client_order_id=step.client_order_id.replace(AGENT, "arb"))
    assert fill_of_own_order(other, AGENT, KEYS) is None
    elsewhere = replace(venue_order(step, "0.02"), venue="other", market_type=MarketType.SPOT)
    assert fill_of_own_order(elsewhere, AGENT, KEYS) is None


def test_retry_delay_doubles_from_half_a_second_up_to_the_cap() -> None:
    assert [retry_delay_s(a) for a in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
