"""MarketMakerAgent (the live grid): in what order a decision's orders and cancels leave, and what
a margin refusal does when it came ahead of the decision's cancels.

The venue is the matching core (real margin checks); the gateway is the agent's own port over it,
suspending once per call as a network call would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.backtest.ledger import CoreVenue, Ledger
from opensqt.clock import TestClock
from opensqt.engine import live
from opensqt.engine.base import OrderRefused
from opensqt.engine.live import RESEND_BACKOFF_MS, MarketMakerAgent
from opensqt.engine.service import AgentRegistry, StrategyServicer
from opensqt.errors import InsufficientFunds, Retryable, TradingHalted
from opensqt.exchange import FeeSchedule, MarketRules, MatchingCore
from opensqt.grid.manager import InMemorySlotStore, SlotManager
from opensqt.grid.strategy import CancelOrder, CancelReason
from opensqt.model import (
    LockStatus,
    Order,
    OrderStatus,
    OrderUpdate,
    PriceChange,
    Side,
    TradingStateKind,
)
from opensqt.transport.bus import EventContext
from opensqt.v1.strategy_pb2 import GetStrategyStatusRequest
from tests.unit.engine.test_grid_agent import CONFIG, INSTRUMENT

D = Decimal


async def round_trip() -> None:
    """A network call's worth of event-loop turns: other tasks run meanwhile."""
    for _ in range(5):
        await asyncio.sleep(0)


class CoreGateway:
    """OrderGateway over the matching core; records what reached the venue, in order."""

    def __init__(self, venue: CoreVenue, clock: TestClock) -> None:
        self.venue = venue
        self.clock = clock
        self.calls: list[tuple[str, str, str]] = []  # (action, side or "", result)
        self.events: list[str] = []  # "place sent", "place answered", ...

    async def place(self, order: Order) -> Order:
        self.events.append("place sent")
        await round_trip()
        self.events.append("place answered")
        try:
            updates = self.venue.place(order, self.clock.now_ms())
        except OrderRefused as refused:
            self.calls.append(("place", order.side.value, "refused"))
            raise InsufficientFunds(str(refused)) from refused
        self.calls.append(("place", order.side.value, "accepted"))
        return updates[-1].order

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None:
        self.events.append("cancel sent")
        await round_trip()
        self.events.append("cancel answered")
        updates = self.venue.cancel(symbol, client_order_id, self.clock.now_ms())
        self.calls.append(("cancel", "", "done" if updates else "unknown"))
        return updates[-1].order if updates else None


class Active:
    def current_kind(self) -> TradingStateKind:
        return TradingStateKind.ACTIVE


class FlakyGateway(CoreGateway):
    """The executor as it fails: ``failing`` places answer UNAVAILABLE (nothing placed);
    under ``halted`` an opening order is refused at the gate, as the executor's would be."""

    def __init__(self, venue: CoreVenue, clock: TestClock) -> None:
        super().__init__(venue, clock)
        self.failing = False
        self.halted = False
        self.attempts: list[str] = []  # client ids of every place, in order

    async def place(self, order: Order) -> Order:
        self.attempts.append(order.client_order_id)
        if self.halted and not order.reduce_only:
            await round_trip()
            raise TradingHalted("trading state is REDUCING: only reduce-only orders are accepted")
        if self.failing:
            await round_trip()
            raise Retryable("executor unavailable")
        return await super().place(order)


Built = tuple[MarketMakerAgent, CoreGateway, MatchingCore, TestClock]


def build(balance: str, gateway_type: type[CoreGateway] = CoreGateway) -> Built:
    core = MatchingCore()
    core.add_market(INSTRUMENT, MarketRules(fees=FeeSchedule(D(0), D(0))))
    core.open_account("acct", {"USDT": D(balance)})
    core.set_leverage("acct", "sim", "ETHUSDT", D(1))
    clock = TestClock(1_000)
    gateway = gateway_type(CoreVenue(core, "acct", Ledger(), default_venue="sim"), clock)
    agent = MarketMakerAgent(
        config=CONFIG,
        instrument=INSTRUMENT,
        slots=SlotManager(InMemorySlotStore(CONFIG.agent, INSTRUMENT.symbol), venue="sim"),
        gateway=gateway,
        clock=clock,
        trading_state=Active(),
        account="acct",
    )
    return agent, gateway, core, clock


async def tick(agent: MarketMakerAgent, price: str) -> None:
    """Deliver a price and let the agent's loop run until it has nothing left to do."""
    change = PriceChange("sim", "ETHUSDT", D(price), exchange_ms=1)
    await agent.on_price(change, EventContext(subject="price", trace_id=""))
    for _ in range(200):
        await asyncio.sleep(0)


async def climb(agent: MarketMakerAgent, *prices: str) -> None:
    for price in prices:
        await tick(agent, price)


def locked_until(agent: MarketMakerAgent) -> int:
    assert agent.strategy is not None
    return agent.strategy.margin_locked_until_ms


def buys(core: MatchingCore) -> list[Decimal]:
    return sorted(o.price for o in core.open_orders("acct") if o.side is Side.BUY)


@contextlib.asynccontextmanager
async def running(agent: MarketMakerAgent) -> AsyncIterator[None]:
    await agent.start()
    task = asyncio.create_task(agent.run())
    try:
        yield
    finally:
        task.cancel()


@contextlib.asynccontextmanager
async def four_buys(
    balance: str,
) -> AsyncIterator[tuple[MarketMakerAgent, CoreGateway, MatchingCore, TestClock]]:
    """A running agent that climbed 3000 -> 3004: four buys rest, the next step up trails."""
    agent, gateway, core, clock = build(balance)
    async with running(agent):
        await climb(agent, "3000.00", "3002.00", "3004.00")
        assert len(buys(core)) == 4
        gateway.calls.clear()
        gateway.events.clear()
        yield agent, gateway, core, clock


async def test_a_trailing_step_sends_the_far_buys_cancel_once_the_new_buy_is_answered() -> None:
    async with four_buys(balance="10000") as (agent, gateway, core, _):
        first = buys(core)
        await tick(agent, "3006.00")  # one level up: a new near buy, the far one out of reach
        assert gateway.events == ["place sent", "place answered", "cancel sent", "cancel answered"]
        assert buys(core) == [*first[1:], first[-1] + CONFIG.price_interval]


async def test_a_margin_refusal_ahead_of_the_cancels_is_retried_after_them_without_a_margin_lock() -> None:
    # room for four 30 USDT buys at 1x: the fifth fits only once the far one is cancelled
    async with four_buys(balance="121") as (agent, gateway, core, clock):
        first = buys(core)
        await tick(agent, "3006.00")
        # the near buy went first and was refused, the cancel freed the margin, the agent
        # evaluated again and the buy went through (with a new client id)
        assert gateway.calls == [
            ("place", "BUY", "refused"),
            ("cancel", "", "done"),
            ("place", "BUY", "accepted"),
        ]
        assert buys(core) == [*first[1:], first[-1] + CONFIG.price_interval]
        assert locked_until(agent) == 0  # not a margin error of the grid
        placed = {o.client_order_id for o in core.open_orders("acct")}
        assert len(placed) == 4
        # for the margin lock's duration, the next trailing step cancels first
        clock.advance(1_000)
        gateway.calls.clear()
        await tick(agent, "3008.00")
        assert gateway.calls == [("cancel", "", "done"), ("place", "BUY", "accepted")]
        # and once it is over, orders lead again
        clock.advance(CONFIG.margin_lock_ms)
        gateway.calls.clear()
        await tick(agent, "3010.00")
        assert [c[:2] for c in gateway.calls[:2]] == [("place", "BUY"), ("cancel", "")]
        assert len(buys(core)) == 4


async def test_a_margin_refusal_with_no_cancel_in_the_decision_locks_the_grid() -> None:
    agent, gateway, core, clock = build(balance="35")  # room for one buy
    async with running(agent):
        await tick(agent, "3000.00")
        assert len(buys(core)) == 1
        assert ("place", "BUY", "refused") in gateway.calls
        assert locked_until(agent) == clock.now_ms() + CONFIG.margin_lock_ms
        assert all(o.status is not OrderStatus.REJECTED for o in core.open_orders("acct"))


async def test_get_status_reports_the_working_orders_exposure_and_last_event() -> None:
    agent, _, core, clock = build(balance="10000")
    registry = AgentRegistry()
    registry.add(agent)
    servicer = StrategyServicer(registry)
    (before,) = (await servicer.GetStatus(GetStrategyStatusRequest(), None)).agents
    assert (before.working_orders, before.exposure, before.last_event_ms) == (0, "", 0)
    async with running(agent):
        await climb(agent, "3000.00", "3002.00", "3004.00")
        resting = buys(core)
        top = max(core.open_orders("acct"), key=lambda o: o.price)
        clock.advance(500)
        core.sweep("sim", "ETHUSDT", D("3004.00"), clock.now_ms())
        core.sweep("sim", "ETHUSDT", top.price - D("0.01"), clock.now_ms())  # the top buy fills
        await agent.on_order_update(
            OrderUpdate("fill-1", replace(top, status=OrderStatus.FILLED, filled_qty=top.quantity))
        )
        (status,) = (await servicer.GetStatus(GetStrategyStatusRequest(), None)).agents
    assert status.agent == CONFIG.agent
    assert status.working_orders == len(resting) - 1
    assert D(status.exposure) == top.quantity * D("3004.00")  # at the latest price the agent saw
    assert status.last_event_ms == clock.now_ms()
    assert status.realized_pnl == ""


async def test_a_pending_order_whose_send_failed_is_resent_with_a_growing_wait_not_on_every_tick() -> None:
    async with four_buys(balance="10000") as (agent, _, core, clock):
        flaky = FlakyGateway(CoreVenue(core, "acct", Ledger(), default_venue="sim"), clock)
        agent._gateway = flaky
        flaky.failing = True
        await tick(agent, "3006.00")  # the new near buy fails: PENDING
        (client_id,) = set(flaky.attempts)
        first, longest = RESEND_BACKOFF_MS

        def sends() -> int:
            return flaky.attempts.count(client_id)

        # every tick evaluates, but within the wait the PENDING order is not sent again
        for price in ("3006.10", "3006.20", "3006.30"):
            await tick(agent, price)
        assert sends() == 1
        clock.advance(first)
        await tick(agent, "3006.40")
        assert sends() == 2  # the wait is over: sent again, same client id, failed again
        clock.advance(2 * first - 1)
        await tick(agent, "3006.50")
        assert sends() == 2  # the wait doubled
        clock.advance(1)
        await tick(agent, "3006.60")
        assert sends() == 3
        for _ in range(10):  # the wait stops growing at its longest
            clock.advance(longest)
            await tick(agent, "3006.70")
        assert sends() == 13
        flaky.failing = False
        clock.advance(longest)
        await tick(agent, "3006.80")
        assert sends() == 14
        assert client_id in {o.client_order_id for o in core.open_orders("acct")}
        assert agent._resend_after == {}


class Switchable:
    """The trading state as the strategy follows it (from risk's broadcasts)."""

    def __init__(self) -> None:
        self.kind = TradingStateKind.ACTIVE

    def current_kind(self) -> TradingStateKind:
        return self.kind


async def test_a_resend_held_by_reducing_waits_and_goes_at_once_when_trading_is_active_again() -> None:
    async with four_buys(balance="10000") as (agent, _, core, clock):
        flaky = FlakyGateway(CoreVenue(core, "acct", Ledger(), default_venue="sim"), clock)
        state = Switchable()
        agent._gateway, agent._trading_state = flaky, state
        flaky.failing = True
        await tick(agent, "3006.00")  # the new near buy fails: PENDING
        (client_id,) = set(flaky.attempts)

        def sends() -> int:
            return flaky.attempts.count(client_id)

        # the executors turned REDUCING before the strategy heard: the resend is held, and
        # waits like any failed send
        flaky.failing, flaky.halted = False, True
        clock.advance(RESEND_BACKOFF_MS[0])
        await tick(agent, "3006.10")
        assert sends() == 2
        await tick(agent, "3006.20")
        assert sends() == 2
        # the strategy hears REDUCING; the next resend is held too
        state.kind = TradingStateKind.REDUCING
        clock.advance(2 * RESEND_BACKOFF_MS[0])
        await tick(agent, "3006.30")
        assert sends() == 3
        await tick(agent, "3006.40")
        assert sends() == 3
        # trading ACTIVE again: the held order goes at once, not after its wait
        flaky.halted, state.kind = False, TradingStateKind.ACTIVE
        await tick(agent, "3006.50")
        assert sends() == 4
        assert client_id in {o.client_order_id for o in core.open_orders("acct")}


async def settle() -> None:
    for _ in range(200):
        await asyncio.sleep(0)


async def test_reducing_cancels_at_the_transition_and_halted_cleans_up_after_the_executors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "HALTED_FOLLOW_UP_S", 0.05)
    async with four_buys(balance="10000") as (agent, gateway, core, _):
        state = Switchable()
        agent._trading_state = state
        # HALTED: the executors cancel every working order themselves; the grid does not race
        # them, and later cancels what they left (here: everything, as if their cancel failed)
        state.kind = TradingStateKind.HALTED
        agent.trading_state_changed()
        await settle()
        assert gateway.calls == []
        assert len(buys(core)) == 4
        await asyncio.sleep(0.1)
        await settle()
        assert buys(core) == []
        assert [call[0] for call in gateway.calls] == ["cancel"] * 4
        # ACTIVE again: the grid places buys below the latest price, with no new price
        state.kind = TradingStateKind.ACTIVE
        agent.trading_state_changed()
        await settle()
        placed = buys(core)
        assert placed
        assert all(price < D("3004.00") for price in placed)
        # REDUCING, with no price after it: the working buys are cancelled at once
        gateway.calls.clear()
        state.kind = TradingStateKind.REDUCING
        agent.trading_state_changed()
        await settle()
        assert buys(core) == []
        assert [call[0] for call in gateway.calls] == ["cancel"] * len(placed)


class ForgetfulGateway(CoreGateway):
    """A venue that no longer knows the orders in ``forgotten`` (purged after a cancel the
    order stream lost): their cancel answers "unknown" (None), as the executor does."""

    def __init__(self, venue: CoreVenue, clock: TestClock) -> None:
        super().__init__(venue, clock)
        self.forgotten: set[str] = set()

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None:
        if client_order_id not in self.forgotten:
            return await super().cancel(symbol, client_order_id)
        await round_trip()
        self.calls.append(("cancel", "", "unknown"))
        return None


async def test_an_order_the_venue_no_longer_knows_ends_at_the_second_unknown_cancel() -> None:
    agent, gateway, core, clock = build("10000", ForgetfulGateway)
    assert isinstance(gateway, ForgetfulGateway)
    async with running(agent):
        await climb(agent, "3000.00", "3002.00", "3004.00")
        far = buys(core)[0]
        cid = agent._slots.slots[far].client_order_id
        core.cancel("acct", "sim", "ETHUSDT", clock.now_ms(), client_order_id=cid)  # gone, unheard of
        gateway.forgotten.add(cid)
        await tick(agent, "3006.00")  # the far buy is out of reach: its cancel says "unknown"
        assert ("cancel", "", "unknown") in gateway.calls
        assert agent._slots.slots[far].client_order_id == cid  # once may be the venue's lag
        clock.advance(CONFIG.cancel_retry_ms)
        await tick(agent, "3006.00")
        assert gateway.calls.count(("cancel", "", "unknown")) == 2
        after = agent._slots.slots[far]
    assert not after.has_order  # ended, unfilled: the level is free again
    assert after.position_qty == 0
    assert after.cycle == 1


async def test_an_unacknowledged_order_survives_two_unknown_cancels() -> None:
    # A PENDING order's send may still land at the venue: "unknown" twice does not end it.
    agent, gateway, _, clock = build("10000", ForgetfulGateway)
    assert isinstance(gateway, ForgetfulGateway)
    async with running(agent):
        await tick(agent, "3000.00")
        assert agent.strategy is not None
        level = min(agent._slots.slots) - 10 * CONFIG.price_interval  # a level no order holds
        cid = agent.strategy.client_order_id(level, Side.BUY, 0)
        await agent._slots.request_order(
            level, side=Side.BUY, price=level, qty=D("0.01"), client_order_id=cid
        )
        gateway.forgotten.add(cid)
        action = CancelOrder(level, cid, CancelReason.TRAILING)
        await agent._cancel(action)
        clock.advance(CONFIG.cancel_retry_ms)
        await agent._cancel(action)
        assert gateway.calls.count(("cancel", "", "unknown")) == 2
        slot = agent._slots.slots[level]
    assert slot.client_order_id == cid
    assert slot.lock_status is LockStatus.PENDING


async def test_a_paused_agent_still_cancels_its_buys_when_trading_turns_reducing() -> None:
    async with four_buys(balance="10000") as (agent, gateway, core, _):
        state = Switchable()
        agent._trading_state = state
        agent.pause("operator looks at the book")
        await tick(agent, "3006.00")  # paused: no decision
        assert gateway.calls == []
        state.kind = TradingStateKind.REDUCING  # a crash: the opening buys must go
        agent.trading_state_changed()
        await settle()
        assert buys(core) == []
        assert [call[0] for call in gateway.calls] == ["cancel"] * 4  # and nothing placed
        assert agent.paused
