"""DBOS workflows (real DBOS on SQLite) against the matching-core test venue."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from dbos import DBOS, SetWorkflowID

from opensqt.errors import InsufficientFunds, Retryable
from opensqt.execution import durable, workflows
from opensqt.execution.gate import TradingStateGate
from opensqt.execution.order_executor import OrderExecutor
from opensqt.model import Order, OrderStatus, OrderType, Side, TimeInForce
from tests.support.servers import dbos_database_url
from tests.support.sim_exchange import ACCOUNT, BTC, ETH, VENUE, Fault, SimExchange
from tests.unit.execution.test_order_executor import Budget, Marks

pytestmark = pytest.mark.integration


@dataclass
class Harness:
    venue: SimExchange
    executor_id: str

    async def place(self, order: Order) -> workflows.StepResult:
        with SetWorkflowID(workflows.order_workflow_id(VENUE, ACCOUNT, order.client_order_id)):
            handle = await DBOS.start_workflow_async(workflows.place_order_workflow, self.executor_id, order)
        return await handle.get_result()

    async def sequence(
        self, sequence_id: str, steps: list[workflows.StepSpec], parallel: bool = False
    ) -> workflows.SequenceOutcome:
        with SetWorkflowID(workflows.sequence_workflow_id(VENUE, ACCOUNT, sequence_id)):
            handle = await DBOS.start_workflow_async(
                workflows.sequence_workflow, self.executor_id, sequence_id, steps, parallel
            )
        return await handle.get_result()

    def position(self, symbol: str) -> Decimal:
        return self.venue.core.position(ACCOUNT, VENUE, symbol).size


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    venue = SimExchange()

    async def no_sleep(seconds: float) -> None:
        return None

    executor = OrderExecutor(
        venue, Budget(), TradingStateGate(), Marks(), sleep=no_sleep, rng=random.Random(1)
    )  # type: ignore[arg-type]
    executor_id = f"test-{tmp_path.name}"
    workflows.register(
        workflows.ExecutionContext(executor_id, VENUE, ACCOUNT, executor, {BTC.symbol: BTC, ETH.symbol: ETH})
    )
    durable.acquire(
        durable.dbos_config(executor_id=executor_id, system_database_url=dbos_database_url(tmp_path))
    )
    try:
        yield Harness(venue, executor_id)
    finally:
        durable.release()
        workflows.unregister(executor_id)


def market(cid: str, side: Side, qty: str, symbol: str = BTC.symbol) -> Order:
    return Order(
        symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=Decimal(qty), client_order_id=cid
    )


async def test_the_workflow_id_makes_a_placement_idempotent(harness: Harness) -> None:
    order = Order(
        symbol=BTC.symbol,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("59000.0"),
        client_order_id="wf-1",
    )
    first = await harness.place(order)
    second = await harness.place(order)
    assert first.ok
    assert first == second
    assert harness.venue.accepted == ["wf-1"]
    assert harness.venue.create_calls == 1


async def test_a_refused_order_is_reported_with_its_error_class(harness: Harness) -> None:
    harness.venue.faults.append(Fault(InsufficientFunds("margin is insufficient")))
    result = await harness.place(market("wf-2", Side.BUY, "0.010"))
    assert not result.ok
    assert result.error_type == "InsufficientFunds"
    assert isinstance(workflows.error_from_result(result), InsufficientFunds)


async def test_second_leg_follows_the_first_legs_executed_quantity(harness: Harness) -> None:
    steps = [
        workflows.StepSpec("spot", market("s1-a", Side.BUY, "0.050")),
        workflows.StepSpec("perp", market("s1-b", Side.SELL, "1", symbol=BTC.symbol), size_from_step="spot"),
    ]
    outcome = await harness.sequence("s1", steps)
    assert outcome.status is workflows.SequenceStatus.COMPLETED
    assert [o.result.order.filled_qty for o in outcome.steps if o.result.order] == [Decimal("0.050")] * 2
    assert harness.position(BTC.symbol) == 0


async def test_a_failed_second_leg_compensates_the_first_by_what_filled(harness: Harness) -> None:
    harness.venue.faults.extend([Fault(None), Fault(InsufficientFunds("no margin"))])
    steps = [
        workflows.StepSpec("leg1", market("s2-a", Side.BUY, "0.020", symbol=ETH.symbol)),
        workflows.StepSpec("leg2", market("s2-b", Side.SELL, "0.010")),
    ]
    outcome = await harness.sequence("s2", steps)
    assert outcome.status is workflows.SequenceStatus.COMPENSATED
    assert "leg2 failed: InsufficientFunds" in outcome.reason
    leg1 = outcome.steps[0]
    assert leg1.compensation is not None
    assert leg1.compensation.side is Side.SELL
    assert leg1.compensation.filled_qty == Decimal("0.020")
    assert leg1.compensation.client_order_id == "s2-a-c0"
    assert harness.position(ETH.symbol) == 0
    assert harness.position(BTC.symbol) == 0
    assert harness.venue.accepted == ["s2-a", "s2-a-c0"]


async def test_a_first_leg_that_fills_nothing_aborts_before_the_second(harness: Harness) -> None:
    far = Order(
        symbol=BTC.symbol,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("1000.0"),
        client_order_id="s3-a",
        time_in_force=TimeInForce.IOC,
    )
    steps = [
        workflows.StepSpec("leg1", far),
        workflows.StepSpec("leg2", market("s3-b", Side.SELL, "1"), size_from_step="leg1"),
    ]
    outcome = await harness.sequence("s3", steps)
    assert outcome.status is workflows.SequenceStatus.ABORTED
    assert len(outcome.steps) == 1
    assert outcome.steps[0].result.order is not None
    assert outcome.steps[0].result.order.status is OrderStatus.EXPIRED
    assert harness.venue.accepted == ["s3-a"]


async def test_a_sequence_runs_once_per_sequence_id(harness: Harness) -> None:
    steps = [workflows.StepSpec("only", market("s4-a", Side.BUY, "0.010"))]
    first = await harness.sequence("s4", steps)
    again = await harness.sequence("s4", steps)
    assert first == again
    assert harness.venue.accepted == ["s4-a"]
    assert harness.position(BTC.symbol) == Decimal("0.010")


async def test_parallel_steps_that_partly_fail_unwind_the_ones_that_filled(harness: Harness) -> None:
    harness.venue.faults.extend([Fault(None), Fault(InsufficientFunds("no margin"))])
    steps = [
        workflows.StepSpec("a", market("s5-a", Side.BUY, "0.010")),
        workflows.StepSpec("b", market("s5-b", Side.BUY, "0.010", symbol=ETH.symbol)),
    ]
    outcome = await harness.sequence("s5", steps, parallel=True)
    assert outcome.status is workflows.SequenceStatus.COMPENSATED
    assert harness.position(BTC.symbol) == 0
    assert harness.position(ETH.symbol) == 0


def lost_answer() -> Retryable:
    error = Retryable("RequestTimeout: read timed out")
    error.ambiguous = True
    return error


async def test_a_leg_that_filled_though_its_send_failed_is_unwound_too(harness: Harness) -> None:
    # leg2 reaches the venue and fills, its answer is lost and every lookup after it fails, so
    # the step fails without an order. Before, the unwind sized it as 0 and reported the
    # sequence COMPENSATED with a 0.010 short left at the venue.
    lookups_fail = [Fault(Retryable("NetworkError: lookup")) for _ in range(6)]
    harness.venue.faults.extend([Fault(None), Fault(lost_answer(), after=True), *lookups_fail])
    steps = [
        workflows.StepSpec("leg1", market("s6-a", Side.BUY, "0.020", symbol=ETH.symbol)),
        workflows.StepSpec("leg2", market("s6-b", Side.SELL, "0.010")),
    ]
    outcome = await harness.sequence("s6", steps)
    assert "leg2 failed: Retryable" in outcome.reason
    assert outcome.status is workflows.SequenceStatus.COMPENSATED
    leg2 = outcome.steps[1]
    assert leg2.result.order is not None
    assert leg2.result.order.filled_qty == Decimal("0.010")
    assert leg2.compensation is not None
    assert leg2.compensation.side is Side.BUY
    assert harness.position(ETH.symbol) == 0
    assert harness.position(BTC.symbol) == 0


async def test_a_failed_leg_whose_state_cannot_be_learned_leaves_the_sequence_failed(
    harness: Harness,
) -> None:
    lookups_fail = [Fault(Retryable("NetworkError: lookup")) for _ in range(7)]  # and the resolve's
    harness.venue.faults.extend([Fault(None), Fault(lost_answer(), after=True), *lookups_fail])
    steps = [
        workflows.StepSpec("leg1", market("s7-a", Side.BUY, "0.020", symbol=ETH.symbol)),
        workflows.StepSpec("leg2", market("s7-b", Side.SELL, "0.010")),
    ]
    outcome = await harness.sequence("s7", steps)
    assert outcome.status is workflows.SequenceStatus.FAILED  # never COMPENSATED with a leg unknown
    assert outcome.steps[1].compensation_error.startswith("not unwound: Retryable")
    assert harness.position(ETH.symbol) == 0  # what is known is unwound
