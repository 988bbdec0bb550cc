"""ArbitrageAgent on in-memory executors and legs: refusals answered, compensation, once-only fills,
pause. (The live constellation is pinned by tests/integration/test_arbitrage_live.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from opensqt.arbitrage import Direction, Fill, OrderStep, StepResult, build_entry_plan
from opensqt.arbitrage.execution import order_for_step
from opensqt.arbitrage.journal import InMemoryPlanJournal, RecordedStep
from opensqt.arbitrage.manager import InMemoryLegStore, LegManager
from opensqt.arbitrage.plans import EntryPlan
from opensqt.arbitrage.strategy import FAILED_PLAN_BACKOFF_MS
from opensqt.clock import TestClock
from opensqt.engine.arbitrage_live import ArbitrageAgent
from opensqt.engine.service import AgentFigures
from opensqt.errors import InsufficientFunds, Retryable
from opensqt.model import (
    FundingUpdate,
    MarketType,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
    TradingStateKind,
)
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventContext
from tests.unit.arbitrage import AGENT, PERP_VENUE, SPOT_VENUE, SYMBOL, T0, funding, make_config
from tests.unit.arbitrage import perp_price as perp_tick
from tests.unit.arbitrage import spot_price as spot_tick

D = Decimal
CTX = EventContext(subject="test", trace_id="")
SPOT_KEY, PERP_KEY = f"{SPOT_VENUE}:{SYMBOL}", f"{PERP_VENUE}:{SYMBOL}"


class Venue:
    """One executor over an in-memory venue: MARKET orders fill at ``price`` (idempotent by client
    id), unless the client id's step is in ``refuse``."""

    def __init__(self, price: str) -> None:
        self.price = D(price)
        self.orders: dict[str, Order] = {}
        self.sends: list[str] = []
        self.refuse: set[str] = set()

    async def place(self, order: Order) -> Order:
        self.sends.append(order.client_order_id)
        if order.client_order_id in self.orders:
            return self.orders[order.client_order_id]
        if order.client_order_id.rsplit("-", 1)[1] in self.refuse:
            raise InsufficientFunds("not enough margin")
        placed = replace(
            order,
            status=OrderStatus.FILLED,
            filled_qty=order.quantity,
            average_price=self.price,
            updated_ms=T0,
        )
        self.orders[order.client_order_id] = placed
        return placed

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)


@dataclass
class State:
    kind: TradingStateKind = TradingStateKind.ACTIVE

    def current_kind(self) -> TradingStateKind:
        return self.kind


@dataclass
class Rig:
    agent: ArbitrageAgent
    spot: Venue
    perp: Venue
    state: State
    clock: TestClock

    async def prices(self) -> None:
        now = self.clock.now_ms()
        await self.agent.on_price(spot_tick("50000", now), CTX)
        await self.agent.on_price(perp_tick("50010", now), CTX)

    async def funding(self, rate: str, period: int = 1) -> None:
        update = FundingUpdate(funding(rate, T0 + period * 8 * 3_600_000, time_ms=self.clock.now_ms()))
        await self.agent.on_funding(update, CTX)

    async def idle(self) -> None:
        for _ in range(200):
            await asyncio.sleep(0)
            if not self.agent.strategy.in_flight:
                return
        raise AssertionError("the plan did not finish")

    async def legs(self) -> dict[str, Decimal]:
        return {leg.key: leg.size for leg in await self.agent.legs()}


async def started(
    spot: Venue, perp: Venue, state: State, *, metrics: ServiceMetrics | None = None, send_attempts: int = 5
) -> tuple[ArbitrageAgent, TestClock, asyncio.Task[None]]:
    """An agent of 0.02 BTC entries over ``spot`` and ``perp`` with legs in memory, started and
    running its plans."""
    clock = TestClock(T0)
    config = make_config(order_base_qty=D("0.02"))
    agent = ArbitrageAgent(
        config=config,
        legs=LegManager(InMemoryLegStore(AGENT), dust=config.dust_qty),
        spot_gateway=spot,
        perp_gateway=perp,
        clock=clock,
        trading_state=state,
        metrics=metrics,
        settle_timeout_s=0.1,
        send_attempts=send_attempts,
    )
    await agent.start()
    return agent, clock, asyncio.create_task(agent.run())


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    spot, perp, state = Venue("50000"), Venue("50010"), State()
    agent, clock, task = await started(spot, perp, state)
    try:
        yield Rig(agent, spot, perp, state, clock)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_high_funding_enters_long_spot_short_perp(rig: Rig) -> None:
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}
    assert rig.agent.plans_done == {"ENTERED": 1}


async def test_an_entry_while_reducing_waits_sends_nothing_and_goes_once_trading_is_active(rig: Rig) -> None:
    rig.state.kind = TradingStateKind.REDUCING
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    assert rig.spot.sends == rig.perp.sends == []
    assert rig.agent.plans_started == 0
    assert "ENTER_POSITIVE waits: trading state REDUCING" in rig.agent.last_decision
    # the funding period was not used up: once trading is ACTIVE the next price enters
    rig.state.kind = TradingStateKind.ACTIVE
    await rig.prices()
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}


async def test_a_funding_exit_while_halted_waits_and_runs_after_the_halt(rig: Rig) -> None:
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    rig.state.kind = TradingStateKind.HALTED
    await rig.funding("-0.001", period=2)  # the carry flipped: an exit is due, HALTED refuses it
    await rig.idle()
    await rig.prices()
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}
    assert rig.agent.plans_started == 1
    rig.state.kind = TradingStateKind.ACTIVE  # Resume: the same funding update exits now
    await rig.prices()
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D(0), PERP_KEY: D(0)}
    assert rig.agent.plans_done == {"ENTERED": 1, "EXITED": 1}


async def test_a_funding_exit_refused_while_halted_runs_when_the_halt_lifts_without_a_new_price(
    rig: Rig,
) -> None:
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    rig.state.kind = TradingStateKind.HALTED
    await rig.funding("-0.001", period=2)
    await rig.idle()
    rig.agent.trading_state_changed()  # to HALTED: nothing it may do
    await rig.idle()
    assert rig.agent.plans_started == 1
    rig.state.kind = TradingStateKind.ACTIVE
    rig.agent.trading_state_changed()  # the service's registry calls this on the change
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D(0), PERP_KEY: D(0)}
    assert rig.agent.plans_done == {"ENTERED": 1, "EXITED": 1}


async def test_funding_before_prices_is_evaluated_when_both_prices_arrive(rig: Rig) -> None:
    await rig.funding("0.001")
    assert rig.spot.sends == []
    await rig.prices()
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}


async def test_a_refused_perp_leg_is_compensated_on_the_spot(rig: Rig) -> None:
    rig.perp.refuse.add("ep0")
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D(0), PERP_KEY: D(0)}
    assert [cid.rsplit("-", 1)[1] for cid in rig.spot.sends] == ["es0", "cs0"]
    assert rig.spot.orders[rig.spot.sends[1]].reduce_only
    assert rig.agent.plans_done == {"COMPENSATED": 1}


async def test_an_exit_runs_while_reducing_and_closes_both_legs(rig: Rig) -> None:
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    rig.state.kind = TradingStateKind.REDUCING
    await rig.funding("-0.001", period=2)
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D(0), PERP_KEY: D(0)}
    exits = [rig.perp.orders[rig.perp.sends[-1]], rig.spot.orders[rig.spot.sends[-1]]]
    assert all(order.reduce_only for order in exits)


async def test_the_order_stream_and_the_plan_count_one_order_once(rig: Rig) -> None:
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    for order in [*rig.spot.orders.values(), *rig.perp.orders.values()]:
        await rig.agent.on_order_update(OrderUpdate(event_id=f"monitor-{order.client_order_id}", order=order))
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}


async def test_a_paused_agent_keeps_the_funding_update_for_its_resume(rig: Rig) -> None:
    rig.agent.pause("operator")
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    assert rig.spot.sends == []
    rig.agent.resume()
    await rig.idle()
    assert await rig.legs() == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}


# --- crash recovery: a plan cut by a kill, resolved at the next start -----------------------------


@dataclass
class Cut:
    """What a killed process left behind: its legs, its plan record, the venues' orders."""

    store: InMemoryLegStore
    journal: InMemoryPlanJournal
    spot: Venue
    perp: Venue
    plan: EntryPlan
    perp_step: OrderStep

    async def restart(self) -> ArbitrageAgent:
        config = make_config(order_base_qty=D("0.02"))
        agent = ArbitrageAgent(
            config=config,
            legs=LegManager(self.store, dust=config.dust_qty),
            spot_gateway=self.spot,
            perp_gateway=self.perp,
            clock=TestClock(T0 + 60_000),
            trading_state=State(),
            settle_timeout_s=0.1,
            journal=self.journal,
        )
        await agent.start()
        return agent


async def cut_after_the_spot_fill() -> Cut:
    """An entry whose spot leg filled and was counted, and whose perp hedge was recorded (so it
    may have been sent) when the process died."""
    config = make_config(order_base_qty=D("0.02"))
    store, journal = InMemoryLegStore(AGENT), InMemoryPlanJournal(AGENT)
    spot, perp = Venue("50000"), Venue("50010")
    plan = build_entry_plan(
        agent=AGENT, sequence_id=T0, direction=Direction.POSITIVE, spot=config.spot, perp=config.perp,
        spot_price=D("50000"), perp_price=D("50010"), base_qty=D("0.02"),
    )  # fmt: skip
    spot_step = plan.next_step([])
    assert isinstance(spot_step, OrderStep)
    await journal.record_step(plan.workflow_id, plan.sequence_id, RecordedStep(0, spot_step, D("50000")))
    placed = await spot.place(order_for_step(spot_step))
    legs = LegManager(store, dust=config.dust_qty)
    fill = Fill(SPOT_VENUE, SYMBOL, Side.BUY, placed.filled_qty, placed.average_price, T0)
    await legs.apply_fill(fill, event_id=spot_step.client_order_id, market_type=MarketType.SPOT)
    perp_step = plan.next_step([StepResult(spot_step.client_order_id, placed.filled_qty)])
    assert isinstance(perp_step, OrderStep)
    await journal.record_step(plan.workflow_id, plan.sequence_id, RecordedStep(1, perp_step, D("50010")))
    spot.sends.clear()
    return Cut(store, journal, spot, perp, plan, perp_step)


async def run_until_idle(agent: ArbitrageAgent) -> None:
    now = T0 + 60_000
    task = asyncio.create_task(agent.run())
    try:
        await agent.on_price(spot_tick("50000", now), CTX)
        await agent.on_price(perp_tick("50010", now), CTX)
        for _ in range(200):
            await asyncio.sleep(0)
            if not agent.strategy.in_flight:
                break
        assert not agent.strategy.in_flight
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def sizes(agent: ArbitrageAgent) -> tuple[Decimal, Decimal]:
    legs = {leg.key: leg.size for leg in agent._legs.legs.values()}
    return legs[SPOT_KEY], legs[PERP_KEY]


async def test_a_hedge_that_filled_while_the_strategy_was_down_is_counted_once_at_start() -> None:
    cut = await cut_after_the_spot_fill()
    filled = await cut.perp.place(order_for_step(cut.perp_step))  # the executor finished it
    cut.perp.sends.clear()

    agent = await cut.restart()
    assert sizes(agent) == (D("0.02"), D("-0.02"))
    assert cut.perp.sends == cut.spot.sends == []  # found by lookup, nothing sent
    assert await cut.journal.load() is None
    # the order stream reports the same orders: already counted
    await agent.on_order_update(OrderUpdate(event_id="monitor-ep0", order=filled))
    assert sizes(agent) == (D("0.02"), D("-0.02"))
    await run_until_idle(agent)  # hedged: kept
    assert cut.perp.sends == cut.spot.sends == []
    assert agent.plans_started == 0


async def test_a_hedge_the_venue_does_not_have_is_sent_again_with_its_own_client_id() -> None:
    cut = await cut_after_the_spot_fill()
    agent = await cut.restart()
    assert [cid.rsplit("-", 1)[1] for cid in cut.perp.sends] == ["ep0"]
    assert cut.perp.sends[0].startswith(cut.plan.workflow_id)
    assert sizes(agent) == (D("0.02"), D("-0.02"))
    assert await cut.journal.load() is None


async def test_a_hedge_that_failed_leaves_the_spot_unhedged_and_the_restart_closes_it() -> None:
    cut = await cut_after_the_spot_fill()
    cut.perp.refuse.add("ep0")
    agent = await cut.restart()
    assert sizes(agent) == (D("0.02"), D(0))
    await run_until_idle(agent)
    assert sizes(agent) == (D(0), D(0))
    closing = [cid for cid in cut.spot.sends if cid.endswith("-xs0")]
    assert len(closing) == 1
    assert not closing[0].startswith(f"{cut.plan.workflow_id}-")  # a fresh sequence
    assert agent.plans_done == {"EXITED": 1}


async def test_every_step_is_recorded_before_it_is_sent_and_the_record_cleared_when_done(rig: Rig) -> None:
    journal = rig.agent._journal
    recorded_at_send: list[bool] = []
    place = rig.perp.place

    async def checked_place(order: Order) -> Order:
        record = await journal.load()
        recorded_at_send.append(
            record is not None and order.client_order_id in {r.step.client_order_id for r in record.steps}
        )
        return await place(order)

    rig.perp.place = checked_place  # type: ignore[method-assign]
    await rig.prices()
    await rig.funding("0.001")
    await rig.idle()
    assert recorded_at_send == [True]
    assert await journal.load() is None


async def test_figures_show_the_net_of_the_legs_at_the_perp_price_and_the_last_event(rig: Rig) -> None:
    assert rig.agent.figures() == AgentFigures(working_orders=0, exposure=None, last_event_ms=0)
    await rig.prices()
    rig.clock.advance(250)
    await rig.funding("0.001")
    await rig.idle()
    figures = rig.agent.figures()
    assert figures.exposure == 0  # long spot, short perp: hedged
    assert figures.last_event_ms == rig.clock.now_ms()


# --- a plan that failed: the strategy follows the recorded legs and checks their hedge ------------


class LossyVenue(Venue):
    """A venue behind an executor whose answers get lost: a step in ``lose`` is placed (and
    fills) but its sender hears only an ambiguous failure, and a look-up does not list it yet."""

    def __init__(self, price: str) -> None:
        super().__init__(price)
        self.lose: set[str] = set()
        self.broken: set[str] = set()  # steps whose send raises a bug, not an OpenSQT error

    async def place(self, order: Order) -> Order:
        step = order.client_order_id.rsplit("-", 1)[1]
        if step in self.broken:
            self.sends.append(order.client_order_id)
            raise RuntimeError("executor client bug")
        placed = await super().place(order)
        if step in self.lose:
            raise Retryable("deadline exceeded: the answer was lost")
        return placed

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        if client_order_id.rsplit("-", 1)[1] in self.lose:
            return None
        return await super().get_order(symbol, client_order_id)


async def lossy_agent() -> tuple[ArbitrageAgent, LossyVenue, LossyVenue, TestClock, asyncio.Task[None]]:
    spot, perp = LossyVenue("50000"), LossyVenue("50010")
    agent, clock, task = await started(spot, perp, State(), send_attempts=1)
    return agent, spot, perp, clock, task


async def settled(agent: ArbitrageAgent) -> None:
    """Until no plan is in flight or queued (real time: a failed send waits 0.5 s to retry)."""
    for _ in range(300):
        await asyncio.sleep(0.01)
        if not agent.strategy.in_flight and agent._plans.empty():
            return
    raise AssertionError("the plan did not finish")


async def tick(agent: ArbitrageAgent, now: int) -> None:
    await agent.on_price(spot_tick("50000", now), CTX)
    await agent.on_price(perp_tick("50010", now), CTX)


async def test_a_spot_order_whose_outcome_is_unknown_stops_the_plan_and_its_late_fill_is_closed() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    try:
        spot.lose.add("es0")
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        # the entry's spot order filled, but its sender never learned it: no perp hedge is sent
        # on a guess (nor a sale of spot it does not know it has)
        assert agent.plans_done == {"FAILED": 1}
        assert perp.sends == []
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0"]
        # the order stream brings the fill: the legs and the strategy follow it
        (filled,) = spot.orders.values()
        await agent.on_order_update(OrderUpdate(event_id="monitor-es0", order=filled))
        assert await agent_legs(agent) == {SPOT_KEY: D("0.02"), PERP_KEY: D(0)}
        assert agent.strategy.state.legs.size(SPOT_KEY) == D("0.02")
        # no new entry meanwhile, and the unhedged spot waits for the executor's horizon
        clock.advance(1_000)
        await tick(agent, clock.now_ms())
        await agent.on_funding(
            FundingUpdate(funding("0.001", T0 + 16 * 3_600_000, time_ms=clock.now_ms())), CTX
        )
        await settled(agent)
        assert agent.plans_started == 1
        clock.advance(agent.strategy.config.unknown_order_settle_ms)
        await tick(agent, clock.now_ms())
        await settled(agent)
        # then it is closed: sold back once, the perp never touched
        assert await agent_legs(agent) == {SPOT_KEY: D(0), PERP_KEY: D(0)}
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0", "xs0"]
        assert perp.sends == []
        assert agent.plans_done == {"FAILED": 1, "EXITED": 1}
    finally:
        task.cancel()


class FlakyJournal(InMemoryPlanJournal):
    """The plan journal over a Redis that fails: the records after the first ``good`` raise."""

    def __init__(self, good: int, failures: int = 1_000) -> None:
        super().__init__(AGENT)
        self.good, self.failures, self.records = good, failures, 0

    async def record_step(self, workflow_id: str, sequence_id: int, recorded: RecordedStep) -> None:
        self.records += 1
        if self.records > self.good and self.failures > 0:
            self.failures -= 1
            await asyncio.sleep(0)
            raise ConnectionError("redis: connection refused")
        await super().record_step(workflow_id, sequence_id, recorded)


async def test_a_plan_that_fails_before_the_hedge_is_sent_closes_the_spot_at_once() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    agent._journal = FlakyJournal(good=1, failures=1)  # the perp step's record fails, once
    try:
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        assert perp.sends == []  # never sent: nothing unknown, so no wait
        assert await agent_legs(agent) == {SPOT_KEY: D(0), PERP_KEY: D(0)}
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0", "xs0"]
        assert agent.plans_done == {"FAILED": 1, "EXITED": 1}
        assert not agent.strategy.state.hedge_check
    finally:
        task.cancel()


async def test_a_step_that_raised_after_its_send_counts_as_unknown_and_waits() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    try:
        perp.broken.add("ep0")  # the hedge's send raises a bug: it may have reached the venue
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        assert agent.plans_done == {"FAILED": 1}
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0"]  # not sold back yet
        clock.advance(agent.strategy.config.unknown_order_settle_ms)
        await tick(agent, clock.now_ms())
        await settled(agent)
        assert await agent_legs(agent) == {SPOT_KEY: D(0), PERP_KEY: D(0)}
        assert agent.plans_done == {"FAILED": 1, "EXITED": 1}
    finally:
        task.cancel()


async def test_plans_that_keep_failing_are_retried_with_a_growing_wait_not_in_a_loop() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    agent._journal = FlakyJournal(good=1)  # the spot entry goes; every record after it fails
    try:
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        # the entry failed before its hedge; its hedge check ran at once and failed too
        assert agent.plans_done == {"FAILED": 2}
        for _ in range(5):
            await tick(agent, clock.now_ms())
            await settled(agent)
        assert agent.plans_done == {"FAILED": 2}  # waiting, not looping
        clock.advance(FAILED_PLAN_BACKOFF_MS[0])
        await tick(agent, clock.now_ms())
        await settled(agent)
        assert agent.plans_done == {"FAILED": 3}
        clock.advance(FAILED_PLAN_BACKOFF_MS[0])  # the wait doubled
        await tick(agent, clock.now_ms())
        await settled(agent)
        assert agent.plans_done == {"FAILED": 3}
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0"]
        assert perp.sends == []
    finally:
        task.cancel()


class FlakyLegs(LegManager):
    """Legs in a Redis that refuses the next ``failures`` writes of a fill."""

    failures = 0

    async def apply_fill(self, fill: Fill, *, event_id: str, market_type: MarketType) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("redis: connection refused")
        return await super().apply_fill(fill, event_id=event_id, market_type=market_type)


async def test_a_fill_the_legs_could_not_record_still_counts_for_the_strategy() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    legs = FlakyLegs(agent._legs._store, dust=agent.strategy.config.dust_qty)
    await legs.load()
    agent._legs = legs
    original = legs.apply_fill
    perp_writes = 0

    async def failing_on_the_perp(fill: Fill, *, event_id: str, market_type: MarketType) -> Any:
        nonlocal perp_writes
        if fill.venue == PERP_VENUE:
            perp_writes += 1
            legs.failures = 1 if perp_writes == 1 else 0  # the plan's write fails, the stream's not
        return await original(fill, event_id=event_id, market_type=market_type)

    legs.apply_fill = failing_on_the_perp  # type: ignore[method-assign]
    try:
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        # both legs filled; Redis missed the perp's fill, the strategy did not: hedged, kept
        assert agent.plans_done == {"FAILED": 1}
        assert agent.strategy.state.legs.size(PERP_KEY) == D("-0.02")
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0"]
        # the order stream's copy brings Redis up to date
        (hedge,) = perp.orders.values()
        await agent.on_order_update(OrderUpdate(event_id="monitor-ep0", order=hedge))
        assert await agent_legs(agent) == {SPOT_KEY: D("0.02"), PERP_KEY: D("-0.02")}
        await tick(agent, clock.now_ms())
        await settled(agent)
        assert agent.plans_done == {"FAILED": 1}
    finally:
        task.cancel()


async def test_a_spot_fill_redis_refused_is_kept_until_recorded_and_closed_once() -> None:
    agent, spot, perp, clock, task = await lossy_agent()
    legs = FlakyLegs(agent._legs._store, dust=agent.strategy.config.dust_qty)
    await legs.load()
    agent._legs = legs
    legs.failures = 2  # the entry's spot fill: Redis refuses it, and the retry after the plan
    try:
        await tick(agent, clock.now_ms())
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        # the plan stopped before its hedge; the strategy still counted the spot it bought and
        # closed it at once; Redis got the buy on the retry after the exit
        assert perp.sends == []
        assert [cid.rsplit("-", 1)[1] for cid in spot.sends] == ["es0", "xs0"]
        assert agent.plans_done == {"FAILED": 1, "EXITED": 1}
        assert await agent_legs(agent) == {SPOT_KEY: D(0), PERP_KEY: D(0)}
        assert agent.strategy.state.legs.size(SPOT_KEY) == 0
        assert agent._unrecorded == {}
    finally:
        task.cancel()


async def agent_legs(agent: ArbitrageAgent) -> dict[str, Decimal]:
    return {leg.key: leg.size for leg in await agent.legs()}


async def test_plan_outcomes_and_leg_sizes_are_exported_as_metrics() -> None:
    metrics = ServiceMetrics("strategy")
    agent, _, task = await started(Venue("50000"), Venue("50010"), State(), metrics=metrics)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"agent": AGENT, **labels})

    try:
        assert sample("opensqt_arbitrage_leg_size", leg="spot") == 0
        await tick(agent, T0)
        await agent.on_funding(FundingUpdate(funding("0.001", T0 + 8 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        assert sample("opensqt_arbitrage_plans_total", outcome="ENTERED") == 1
        assert sample("opensqt_arbitrage_leg_size", leg="spot") == 0.02
        assert sample("opensqt_arbitrage_leg_size", leg="perp") == -0.02
        await agent.on_funding(FundingUpdate(funding("-0.001", T0 + 16 * 3_600_000, time_ms=T0)), CTX)
        await settled(agent)
        assert sample("opensqt_arbitrage_plans_total", outcome="EXITED") == 1
        assert sample("opensqt_arbitrage_leg_size", leg="spot") == 0
        assert sample("opensqt_arbitrage_leg_size", leg="perp") == 0
    finally:
        task.cancel()
