"""MarketMakerAgent at start: it settles its slots with the venue before the first price.

A first agent trades on the matching core, then stops (as a killed process would) while the
venue moves on; a second agent starts on the same (or a lost) slot store and reconciles through
the gateway's account snapshot, as the strategy service does through the executor.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.backtest.ledger import CoreVenue, Ledger
from opensqt.clock import TestClock
from opensqt.engine import live
from opensqt.engine.gateway import AccountSnapshot
from opensqt.engine.live import REUSED_ID_AGE_MS, MarketMakerAgent
from opensqt.errors import ExchangeUnavailable, TradingHalted
from opensqt.exchange import FeeSchedule, MarketRules, MatchingCore
from opensqt.grid import ClientOrderIdCodec
from opensqt.grid import slots as slot_ops
from opensqt.grid.manager import InMemorySlotStore, SlotManager
from opensqt.model import (
    AlertKind,
    InventorySlot,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionStatus,
    PriceChange,
    RiskAlert,
    Side,
    TimeInForce,
    TradingStateKind,
)
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventContext
from tests.unit.engine.test_grid_agent import CONFIG, INSTRUMENT
from tests.unit.engine.test_market_maker_agent import CoreGateway, buys, round_trip, running

D = Decimal


CODEC = ClientOrderIdCodec(symbol="ETHUSDT", agent=CONFIG.agent, tick_size=INSTRUMENT.tick_size)
"""The client ids of this module's grid."""


class SnapshotGateway(CoreGateway):
    """CoreGateway that reads the account back, as the executor's GetAccountSnapshot does, and
    answers a client id it has sent before with that order as the venue has it now (as the
    executor does for a day)."""

    def __init__(self, venue: CoreVenue, clock: TestClock, *, failures: int = 0) -> None:
        super().__init__(venue, clock)
        self.failures = failures
        self.snapshots = 0
        self.sent: set[str] = set()
        self.halted = False
        self.hidden: set[str] = set()  # orders that land (and fill) only after the snapshot
        self.crash = False  # the snapshot fails with an error that is no venue error
        self.lookups_fail = False
        self.fill_at_once = False  # the market trades through each new buy as it is placed
        self.cancel_fails: set[str] = set()
        self.fills_before_cancel: set[str] = set()  # the market trades through them first
        self.placed: list[Order] = []  # every order sent, as sent

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None:
        if client_order_id in self.cancel_fails:
            await round_trip()
            self.calls.append(("cancel", "", "failed"))
            raise ExchangeUnavailable("timed out")
        target = self.venue.core.get_order(self.venue.account, client_order_id)
        if client_order_id in self.fills_before_cancel and target is not None and target.price is not None:
            through = target.price + (D("0.01") if target.side is Side.SELL else D("-0.01"))
            for point in (D("3004.00"), through, D("3004.00")):
                self.venue.core.sweep("sim", symbol, point, self.clock.now_ms())
        cancelled = await super().cancel(symbol, client_order_id)
        # the executor answers an order that is final already with the order (a lookup)
        return cancelled or self.venue.core.get_order(self.venue.account, client_order_id)

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        await round_trip()
        self.calls.append(("get", "", client_order_id))
        if self.lookups_fail:
            raise ExchangeUnavailable("timed out")
        return self.venue.core.get_order(self.venue.account, client_order_id)

    async def place(self, order: Order) -> Order:
        self.placed.append(order)
        if self.halted:  # the executor's gate answers before it looks the id up
            self.calls.append(("place", order.side.value, "halted"))
            raise TradingHalted("trading is HALTED")
        if order.client_order_id in self.sent:
            await round_trip()
            self.calls.append(("place", order.side.value, "repeat"))
            known = self.venue.core.get_order(self.venue.account, order.client_order_id)
            assert known is not None
            return known
        self.sent.add(order.client_order_id)
        placed = await super().place(order)
        if self.fill_at_once and order.side is Side.BUY:
            core = self.venue.core
            core.sweep("sim", order.symbol, order.price + 1, self.clock.now_ms())
            core.sweep("sim", order.symbol, order.price - D("0.01"), self.clock.now_ms())
            filled = core.get_order(self.venue.account, order.client_order_id)
            assert filled is not None
            return filled
        return placed

    async def account_snapshot(self, symbol: str) -> AccountSnapshot:
        await round_trip()
        self.snapshots += 1
        if self.crash:
            raise RuntimeError("connection pool closed")
        if self.failures:
            self.failures -= 1
            raise ExchangeUnavailable("venue down")
        core, account = self.venue.core, self.venue.account
        orders = tuple(
            o for o in core.open_orders(account, "sim", symbol) if o.client_order_id not in self.hidden
        )
        held = core.position(account, "sim", symbol)
        position = held.size
        for client_order_id in self.hidden:  # they land, and fill, after this (first) read
            late = core.get_order(account, client_order_id)
            if late is not None:
                position -= late.filled_qty if late.side is Side.BUY else -late.filled_qty
        self.hidden = set()
        return AccountSnapshot(
            open_orders=orders,
            position=position,
            fetched_ms=self.clock.now_ms(),
            entry_price=held.entry_price if position else None,
        )


class Fixed:
    def __init__(self, kind: TradingStateKind) -> None:
        self.kind = kind

    def current_kind(self) -> TradingStateKind:
        return self.kind


class Venue:
    def __init__(self, balance: str = "10000") -> None:
        self.core = MatchingCore()
        self.core.add_market(INSTRUMENT, MarketRules(fees=FeeSchedule(D(0), D(0))))
        self.core.open_account("acct", {"USDT": D(balance)})
        self.core.set_leverage("acct", "sim", "ETHUSDT", D(1))
        self.clock = TestClock(1_000)
        self.gateway = SnapshotGateway(
            CoreVenue(self.core, "acct", Ledger(), default_venue="sim"), self.clock
        )

    def agent(
        self,
        store: InMemorySlotStore,
        *,
        reconcile: bool = True,
        shared: bool = False,
        state: str = "ACTIVE",
        metrics: ServiceMetrics | None = None,
    ) -> MarketMakerAgent:
        return MarketMakerAgent(
            config=CONFIG,
            instrument=INSTRUMENT,
            slots=SlotManager(store, venue="sim"),
            gateway=self.gateway,
            clock=self.clock,
            trading_state=Fixed(TradingStateKind(state)),
            account="acct",
            account_source=self.gateway if reconcile else None,
            position_shared=shared,
            reconcile_retry_delays=(0.0, 0.0),
            metrics=metrics,
        )

    def sweep(self, price: Decimal) -> None:
        """The market trades from where the agent left it (3004) down through ``price`` and back."""
        self.clock.advance(1_000)
        for point in (D("3004.00"), price - D("0.01"), D("3004.00")):
            self.core.sweep("sim", "ETHUSDT", point, self.clock.now_ms())

    def manual(self, client_order_id: str, side: Side, price: str, qty: str = "0.010") -> None:
        """An order someone placed on the account directly (not through this agent)."""
        order = Order(
            symbol="ETHUSDT", side=side, order_type=OrderType.LIMIT, quantity=D(qty), price=D(price),
            client_order_id=client_order_id, venue="sim", account="acct", time_in_force=TimeInForce.GTC,
        )  # fmt: skip
        self.gateway.venue.place(order, self.clock.now_ms())


async def tick(agent: MarketMakerAgent, price: str) -> None:
    """A price stamped with the venue's time (here the host's), and the agent's loop run out."""
    change = PriceChange("sim", "ETHUSDT", D(price), exchange_ms=agent._clock.now_ms())
    await agent.on_price(change, EventContext(subject="price", trace_id=""))
    for _ in range(200):
        await asyncio.sleep(0)


def new_store() -> InMemorySlotStore:
    return InMemorySlotStore(CONFIG.agent, INSTRUMENT.symbol)


async def traded(venue: Venue, store: InMemorySlotStore) -> list[Decimal]:
    """A first agent climbs 3000 -> 3004 (four buys rest) and stops; returns the buy prices."""
    first = venue.agent(store, reconcile=False)
    async with running(first):
        for price in ("3000.00", "3002.00", "3004.00"):
            await tick(first, price)
    await asyncio.sleep(0)
    resting = buys(venue.core)
    assert len(resting) == 4
    venue.gateway.calls.clear()
    return resting


async def top_slot(store: InMemorySlotStore) -> InventorySlot:
    """The slot of the highest working buy."""
    return max((s for s in await store.load() if s.has_order), key=lambda s: s.slot_price)


async def stray_beside(venue: Venue, store: InMemorySlotStore, price: Decimal) -> tuple[InventorySlot, str]:
    """An order of this agent, with a later cycle's id, beside the working order of the slot at
    ``price`` (no slot can track it). Returns the slot and the stray's client id."""
    busy = {slot.slot_price: slot for slot in await store.load()}[price]
    stray = busy.client_order_id[: -len(str(busy.cycle))] + str(busy.cycle + 7)
    venue.manual(stray, Side.BUY, str(price))
    return busy, stray


def working(agent: MarketMakerAgent) -> dict[Decimal, str]:
    return {s.slot_price: s.client_order_id for s in agent._slots.slots.values() if s.has_order}


async def test_a_buy_that_filled_while_the_agent_was_down_is_inventory_at_start() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    qty = (await top_slot(store)).order_qty
    venue.sweep(resting[-1])  # the highest buy fills while no agent runs
    agent = venue.agent(store)
    await agent.start()
    top = agent._slots.slots[resting[-1]]
    assert top.position_status is PositionStatus.FILLED
    assert top.position_qty == qty
    assert not top.has_order
    assert sorted(working(agent)) == resting[:-1]
    assert agent.reducing_reason == ""


async def test_orders_a_lost_store_still_has_on_the_venue_are_adopted_not_placed_again() -> None:
    venue = Venue()
    resting = await traded(venue, new_store())
    ids = {o.client_order_id for o in venue.core.open_orders("acct")}
    agent = venue.agent(new_store())  # Redis lost every slot
    async with running(agent):
        assert set(working(agent).values()) == ids
        await tick(agent, "3004.00")
        assert ("place", "BUY", "accepted") not in venue.gateway.calls
    assert buys(venue.core) == resting


async def test_without_reconciliation_a_lost_store_places_its_buys_again() -> None:
    # the control for the test above: the same start without an account source
    venue = Venue()
    await traded(venue, new_store())
    agent = venue.agent(new_store(), reconcile=False)
    async with running(agent):
        assert working(agent) == {}
        await tick(agent, "3004.00")
    # the venue refuses the repeated client ids here; the executor would answer with the
    # resting orders, or, for a finished one, with that finished order
    assert ("place", "BUY") in [c[:2] for c in venue.gateway.calls]


async def test_a_large_position_drift_makes_the_agent_reduce_only_until_resumed() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    venue.manual("manual-1", Side.BUY, "3003.50", qty="0.100")  # someone bought on the account
    venue.sweep(D("3003.50"))
    agent = venue.agent(store)
    raised: list[RiskAlert] = []

    async def alerts(alert: RiskAlert) -> None:
        raised.append(alert)

    agent._alerts = alerts
    async with running(agent):
        assert agent.reducing_reason.startswith("position drift at start: the venue holds 0.100")
        await asyncio.sleep(0)
        assert [a.kind for a in raised] == [AlertKind.POSITION_DRIFT]  # for risk to keep
        await tick(agent, "3010.00")  # three levels up: a trailing grid would buy higher
        assert ("place", "BUY", "accepted") not in venue.gateway.calls
        agent.resume()
        assert agent.reducing_reason == ""
        await tick(agent, "3012.00")
        assert ("place", "BUY", "accepted") in venue.gateway.calls


async def test_own_orders_no_slot_can_take_are_cancelled_and_foreign_ones_left_alone() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    busy, stray = await stray_beside(venue, store, resting[0])
    venue.manual("manual-2", Side.BUY, "2900.00")
    await agent.start()
    open_ids = {o.client_order_id for o in venue.core.open_orders("acct")}
    assert stray not in open_ids
    assert "manual-2" in open_ids
    assert busy.client_order_id in open_ids
    assert venue.gateway.calls == [("cancel", "", "done")]
    assert agent.reducing_reason == ""  # it was cancelled with nothing filled


async def test_with_the_symbol_shared_lookups_settle_but_the_position_is_not_the_grids() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    qty = (await top_slot(store)).order_qty
    venue.manual("other-1", Side.BUY, "3003.50", qty="0.100")  # another trader on the account
    venue.sweep(resting[-1])  # fills it and the grid's top buy
    agent = venue.agent(store, shared=True)
    await agent.start()
    top = agent._slots.slots[resting[-1]]
    assert top.position_qty == qty  # settled by the lookup, exactly
    assert not top.has_order
    assert agent.reducing_reason == ""  # the other trader's 0.100 is no drift of the grid's
    assert sum(s.position_qty for s in agent._slots.slots.values()) == qty


@pytest.mark.parametrize(("failures", "reconciled"), [(2, True), (3, False)])
async def test_an_unreadable_venue_is_retried_then_the_agent_starts_reduce_only(
    failures: int, reconciled: bool
) -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    qty = (await top_slot(store)).order_qty
    venue.sweep(resting[-1])
    venue.gateway.failures = failures
    agent = venue.agent(store)
    await agent.start()
    assert venue.gateway.snapshots == 3
    assert agent._slots.slots[resting[-1]].position_qty == (qty if reconciled else 0)
    # unreconciled slots may not match the venue: no new opening orders until an operator looks
    assert agent.reducing_reason == (
        ""
        if reconciled
        else "reconciliation at start failed (the venue could not be read); check the slots, then Resume"
    )


async def test_a_reconciliation_that_crashes_leaves_the_agent_reduce_only_not_dead() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    venue.gateway.crash = True
    agent = venue.agent(store)
    await agent.start()  # does not raise: the service's other agents still start
    assert agent.reducing_reason.startswith("reconciliation at start failed (RuntimeError: connection pool")


async def test_a_new_order_answered_with_an_old_finished_one_is_not_a_fill_and_decides_again() -> None:
    # Redis lost the slots (and this start does not reconcile, which would stop at the
    # position's drift): every level's first id is the old one. The executor answers the three
    # resting buys' ids with them, which binds them, and the top level's with its filled buy.
    venue = Venue()
    resting = await traded(venue, new_store())
    venue.sweep(resting[-1])
    venue.clock.advance(REUSED_ID_AGE_MS * 2)
    agent = venue.agent(new_store(), reconcile=False)
    async with running(agent):
        await tick(agent, "3004.00")
        top = agent._slots.slots[resting[-1]]
        assert top.position_qty == 0  # the old order's fill is not this slot's
        assert top.cycle == 1
        assert top.has_order
    places = [c for c in venue.gateway.calls if c[0] == "place"]
    assert places[-1] == ("place", "BUY", "accepted")
    assert set(places[:-1]) == {("place", "BUY", "repeat")}
    assert top.client_order_id in {o.client_order_id for o in venue.core.open_orders("acct")}


async def pending_below(
    venue: Venue,
    store: InMemorySlotStore,
    lowest: Decimal,
    *,
    at_venue: bool,
    reduce_only: bool | None = None,
    post_only: bool | None = None,
) -> InventorySlot:
    """A slot one level below ``lowest`` whose order was sent but never acknowledged (the process
    died first); the order reached the venue when ``at_venue``."""
    price = lowest - CONFIG.price_interval
    client_order_id = CODEC.encode(price, Side.BUY, 0)
    slot = slot_ops.request_order(
        slot_ops.new_slot(CONFIG.agent, "ETHUSDT", price), side=Side.BUY, price=price, qty=D("0.010"),
        client_order_id=client_order_id, requested_ms=venue.clock.now_ms(),
        reduce_only=reduce_only, post_only=post_only,
    )  # fmt: skip
    assert (await store.compare_and_set(slot, 0)).written
    if at_venue:
        venue.manual(client_order_id, Side.BUY, str(price))
        venue.gateway.sent.add(client_order_id)
    return slot


async def test_orders_that_finished_while_down_are_settled_by_lookup_even_while_halted() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=True)
    venue.sweep(pending.slot_price)  # every buy fills, the unacknowledged one too
    ids = [slot.client_order_id for slot in await store.load() if slot.has_order]
    venue.gateway.halted = True
    agent = venue.agent(store, state="HALTED")
    await agent.start()
    slots = agent._slots.slots
    held = {p: s.position_qty for p, s in slots.items() if s.position_qty}
    assert sorted(held) == [pending.slot_price, *resting]
    assert not any(s.has_order for s in slots.values())
    assert not [c for c in venue.gateway.calls if c[0] == "place"]  # looked up, never re-sent
    assert agent.reducing_reason == ""
    # the order stream then replays the fills: each is counted once
    for client_order_id in ids:
        order = venue.core.get_order("acct", client_order_id)
        assert order is not None
        assert order.status is OrderStatus.FILLED
        await agent.on_order_update(OrderUpdate(f"replay-{client_order_id}", order))
    assert {p: s.position_qty for p, s in agent._slots.slots.items() if s.position_qty} == held


async def halted_with_pending(
    venue: Venue, store: InMemorySlotStore
) -> tuple[MarketMakerAgent, InventorySlot]:
    """An agent restarting while trading is HALTED (the executor refuses every order), with a
    PENDING buy below the grid that never reached the venue."""
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=False)
    venue.gateway.halted = True
    return venue.agent(store, state="HALTED"), pending


async def test_an_unknown_pending_order_is_held_while_halted_then_sent_after_resume() -> None:
    venue, store = Venue(), new_store()
    agent, pending = await halted_with_pending(venue, store)
    async with running(agent):
        report_slot = agent._slots.slots[pending.slot_price]
        assert report_slot.client_order_id == pending.client_order_id
        await tick(agent, "3004.00")
        assert ("place", "BUY", "halted") in venue.gateway.calls
        held = agent._slots.slots[pending.slot_price]
        assert held.client_order_id == pending.client_order_id  # still PENDING, same id
        assert held.cycle == pending.cycle
        resting_now = len(venue.core.open_orders("acct"))
        assert agent.figures().working_orders == resting_now  # the held one never reached the venue
        venue.gateway.halted = False  # risk resumes: the executors, then the strategy follow
        agent._trading_state.kind = TradingStateKind.ACTIVE  # type: ignore[attr-defined]
        await tick(agent, "3004.00")
    # re-sent with its own id once trading resumed (the grid may cancel it since, out of reach)
    assert venue.core.get_order("acct", pending.client_order_id) is not None


async def test_a_pending_opening_order_is_looked_up_not_sent_while_only_this_agent_reduces() -> None:
    # Trading is ACTIVE, so the executor would place it: the agent's own reduce-only must hold it.
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=False)
    venue.gateway.failures = 4  # the venue cannot be read at start: the agent reduces
    agent = venue.agent(store)
    async with running(agent):
        assert agent.reducing_reason.startswith("reconciliation at start failed")
        venue.gateway.calls.clear()
        await tick(agent, "3004.00")
        assert ("get", "", pending.client_order_id) in venue.gateway.calls
        assert venue.core.get_order("acct", pending.client_order_id) is None  # never sent
        assert agent._slots.slots[pending.slot_price].client_order_id == pending.client_order_id
        agent.resume()
        await tick(agent, "3004.00")
    assert venue.core.get_order("acct", pending.client_order_id) is not None  # sent once resumed


async def test_a_held_opening_order_found_at_the_venue_is_bound_then_cancelled() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=True)  # its answer was lost
    venue.gateway.failures = 4  # and the venue cannot be read at start: no lookups there
    agent = venue.agent(store)
    async with running(agent):
        assert agent._slots.slots[pending.slot_price].order_status is None
        await tick(agent, "3004.00")
        await tick(agent, "3004.00")
    order = venue.core.get_order("acct", pending.client_order_id)
    assert order is not None
    assert order.status is OrderStatus.CANCELED  # the grid reduces: its opening buy goes
    assert [o for o in venue.gateway.placed if o.client_order_id == pending.client_order_id] == []


async def test_held_opening_orders_are_looked_up_at_most_every_30_s() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=False)
    venue.gateway.failures = 4
    agent = venue.agent(store)
    lookup = ("get", "", pending.client_order_id)
    async with running(agent):
        for _ in range(3):
            await tick(agent, "3004.00")
        assert venue.gateway.calls.count(lookup) == 1
        venue.clock.advance(30_000)
        await tick(agent, "3004.00")
        assert venue.gateway.calls.count(lookup) == 2


async def test_a_pending_close_is_still_re_sent_while_the_agent_reduces() -> None:
    # e.g. a neutral grid's close, sent without reduce-only while trading was ACTIVE
    venue, store = Venue(), new_store()
    await traded(venue, store)
    price, buy_id, sell_id = (
        D("2990.00"),
        CODEC.encode(D("2990.00"), Side.BUY, 0),
        CODEC.encode(D("2990.00"), Side.SELL, 1),
    )
    slot = slot_ops.request_order(
        slot_ops.new_slot(CONFIG.agent, "ETHUSDT", price), side=Side.BUY, price=price, qty=D("0.010"),
        client_order_id=buy_id,
    )  # fmt: skip
    slot = slot_ops.apply_order_update(
        slot_ops.acknowledge_order(slot, buy_id, "ex-9"), buy_id, OrderStatus.FILLED, D("0.010")
    )
    held = slot_ops.request_order(
        slot, side=Side.SELL, price=D("2992.00"), qty=D("0.010"), client_order_id=sell_id, reduce_only=False
    )
    assert (await store.compare_and_set(held, 0)).written
    venue.gateway.failures = 4  # the agent starts reduce-only
    agent = venue.agent(store)
    async with running(agent):
        assert agent.reducing_reason
        await tick(agent, "3004.00")
    assert [o.client_order_id for o in venue.gateway.placed if o.client_order_id == sell_id] == [sell_id]


async def test_a_slot_records_the_flags_its_order_was_sent_with() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    sent = {o.client_order_id: o for o in venue.gateway.placed}
    working = [slot for slot in await store.load() if slot.has_order]
    assert working
    for slot in working:
        order = sent[slot.client_order_id]
        assert (slot.order_reduce_only, slot.order_post_only) == (order.reduce_only, order.post_only)
    assert any(slot.order_post_only for slot in working)


@pytest.mark.parametrize(
    ("recorded", "sent"),
    [((True, True), (True, True)), ((False, False), (False, False)), ((None, None), (False, False))],
)
async def test_a_pending_order_is_re_sent_with_the_flags_it_was_first_sent_with(
    recorded: tuple[bool | None, bool | None], sent: tuple[bool, bool]
) -> None:
    # e.g. a neutral grid's close sent reduce-only while REDUCING: re-sent without the flag, the
    # executor would refuse it for as long as the state lasts. A slot stored before the flags were
    # recorded (None) is re-sent as before: a long grid's buy is neither.
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    reduce_only, post_only = recorded
    pending = await pending_below(
        venue, store, resting[0], at_venue=False, reduce_only=reduce_only, post_only=post_only
    )
    agent = venue.agent(store)
    async with running(agent):
        await tick(agent, "3004.00")
    (resent,) = [o for o in venue.gateway.placed if o.client_order_id == pending.client_order_id]
    assert (resent.reduce_only, resent.post_only) == sent
    assert resent.time_in_force is TimeInForce.GTC


async def test_an_unacknowledged_order_that_lands_after_the_read_is_bound_by_its_lookup() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=True)
    venue.gateway.hidden.add(pending.client_order_id)
    agent = venue.agent(store)
    await agent.start()
    bound = agent._slots.slots[pending.slot_price]
    assert bound.client_order_id == pending.client_order_id
    assert bound.order_status is OrderStatus.NEW  # acknowledged: no re-send, no unknown left
    assert bound.exchange_order_id


async def reused_pending(venue: Venue, store: InMemorySlotStore) -> tuple[InventorySlot, Decimal]:
    """A PENDING slot whose client id belongs to an order that filled long before the slot
    decided it (the slot's cycles restarted after Redis lost it). Returns it and the old fill."""
    resting = await traded(venue, store)
    old = await pending_below(venue, store, resting[0], at_venue=True)
    venue.sweep(old.slot_price)  # the old order (and the grid's buys) fill
    filled = venue.core.get_order("acct", old.client_order_id)
    assert filled is not None
    assert filled.status is OrderStatus.FILLED
    venue.clock.advance(REUSED_ID_AGE_MS * 2)
    stored = {s.slot_price: s for s in await store.load()}[old.slot_price]
    # the old order's slot state was lost; a new decision at the same cycle is still PENDING
    again = replace(slot_ops.new_slot(CONFIG.agent, "ETHUSDT", old.slot_price), version=stored.version)
    again = slot_ops.request_order(
        again, side=Side.BUY, price=old.slot_price, qty=D("0.010"),
        client_order_id=old.client_order_id, requested_ms=venue.clock.now_ms(),
    )  # fmt: skip
    assert (await store.compare_and_set(again, stored.version)).written
    return again, filled.filled_qty


async def test_a_re_sent_order_answered_with_an_old_finished_one_is_not_a_fill() -> None:
    venue, store = Venue(), new_store()
    slot, _ = await reused_pending(venue, store)
    held = venue.core.position("acct", "sim", "ETHUSDT").size
    agent = venue.agent(store, reconcile=False)
    async with running(agent):
        await tick(agent, "3004.00")
        after = agent._slots.slots[slot.slot_price]
    assert ("place", "BUY", "repeat") in venue.gateway.calls
    assert after.position_qty == 0
    assert after.client_order_id != slot.client_order_id
    # no close was sold against the old fill
    assert not [c for c in venue.gateway.calls if c[:2] == ("place", "SELL")]
    assert venue.core.position("acct", "sim", "ETHUSDT").size == held


async def test_a_lookup_at_start_answered_with_an_old_finished_order_is_not_a_fill() -> None:
    venue, store = Venue(), new_store()
    slot, old_fill = await reused_pending(venue, store)
    held = venue.core.position("acct", "sim", "ETHUSDT").size
    agent = venue.agent(store)
    await agent.start()
    after = agent._slots.slots[slot.slot_price]
    assert after.position_qty == 0
    assert not after.has_order
    assert after.cycle == slot.cycle + 1
    # the old order's fill is at the venue, and the slot that held it was lost: no slot holds it
    assert old_fill == D("0.010")
    assert agent.reducing_reason.startswith(
        f"position drift at start: the venue holds {held}, the slots {held - old_fill}"
    )


async def test_an_unacknowledged_order_that_filled_after_the_read_is_settled_and_the_venue_read_again() -> (
    None
):
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    venue.sweep(resting[-1])  # the top buy fills: inventory the position shows
    pending = await pending_below(venue, store, resting[0], at_venue=True)
    venue.gateway.hidden.add(pending.client_order_id)
    venue.sweep(pending.slot_price)  # it and the other buys fill, but after the position's read
    agent = venue.agent(store)
    await agent.start()
    assert venue.gateway.snapshots == 2
    held = sum(s.position_qty for s in agent._slots.slots.values())
    assert held == venue.core.position("acct", "sim", "ETHUSDT").size  # nothing corrected away
    assert agent.reducing_reason == ""


async def uncancellable_stray(venue: Venue, store: InMemorySlotStore) -> str:
    """After a first agent traded, a stray of this agent's whose cancel fails; its client id."""
    resting = await traded(venue, store)
    _, stray = await stray_beside(venue, store, resting[0])
    venue.gateway.cancel_fails.add(stray)
    return stray


async def test_a_stray_that_cannot_be_cancelled_makes_the_agent_reduce_only() -> None:
    venue, store = Venue(), new_store()
    stray = await uncancellable_stray(venue, store)
    agent = venue.agent(store)
    await agent.start()
    assert agent.reducing_reason.startswith(f"stray order {stray} could not be cancelled")


async def test_a_stray_that_fills_before_its_cancel_makes_the_agent_reduce_only() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    _, stray = await stray_beside(venue, store, resting[-1])
    venue.gateway.fills_before_cancel.add(stray)
    await agent.start()
    filled = venue.core.get_order("acct", stray)
    assert filled is not None
    assert filled.status is OrderStatus.FILLED
    assert agent.reducing_reason.startswith(f"stray order {stray} filled {filled.quantity} after the venue")


async def test_lookups_stop_at_the_first_failure_and_the_position_is_left_unread() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    venue.sweep(resting[1])  # three buys fill: three slots to look up
    venue.gateway.lookups_fail = True
    agent = venue.agent(store)
    await agent.start()
    assert [c[0] for c in venue.gateway.calls].count("get") == 1  # each could take seconds
    assert all(agent._slots.slots[p].has_order for p in resting)  # left to the order stream
    assert agent.reducing_reason == ""  # the position was not held against the stale slots


async def test_a_pending_order_decided_long_before_the_restart_still_counts_its_fill() -> None:
    # the strategy was down for three hours; its unacknowledged order had filled meanwhile
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=True)
    venue.sweep(pending.slot_price)
    venue.clock.advance(3 * 3_600_000)
    agent = venue.agent(store)
    await agent.start()
    assert agent._slots.slots[pending.slot_price].position_qty == D("0.010")
    assert agent.reducing_reason == ""


async def test_every_reason_to_reduce_is_shown() -> None:
    venue, store = Venue(), new_store()
    await uncancellable_stray(venue, store)
    venue.manual("manual-1", Side.BUY, "3003.50", qty="0.100")
    venue.sweep(D("3003.50"))  # someone else's buy fills: a drift
    agent = venue.agent(store)
    await agent.start()
    reasons = agent.reducing_reason.split(" | ")
    assert [r.split(" ")[0] for r in reasons] == ["stray", "position"]
    agent.resume()
    assert agent.reducing_reason == ""


async def test_decisions_are_timed_on_the_venues_clock_so_host_skew_drops_no_fill() -> None:
    # this host's clock runs five minutes ahead of the venue's; an order that fills at once
    # was made after the decision on the venue's clock, so its fill counts
    venue, store = Venue(), new_store()
    agent = venue.agent(store, reconcile=False)
    agent._clock = TestClock(venue.clock.now_ms() + 300_000)
    venue.gateway.fill_at_once = True
    async with running(agent):
        change = PriceChange("sim", "ETHUSDT", D("3000.00"), exchange_ms=venue.clock.now_ms())
        await agent.on_price(change, EventContext(subject="price", trace_id=""))
        for _ in range(200):
            await asyncio.sleep(0)
    filled = [s for s in agent._slots.slots.values() if s.position_qty]
    assert filled, venue.gateway.calls
    assert sum(s.position_qty for s in filled) == venue.core.position("acct", "sim", "ETHUSDT").size


async def test_an_unacknowledged_order_found_by_lookup_does_not_hide_a_drift() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    pending = await pending_below(venue, store, resting[0], at_venue=True)
    venue.gateway.hidden.add(pending.client_order_id)  # it lands after the first read
    venue.manual("manual-1", Side.BUY, "3003.50", qty="0.100")
    venue.sweep(D("3003.50"))  # someone else's buy fills on the account
    agent = venue.agent(store)
    await agent.start()
    assert venue.gateway.snapshots == 2  # read again once the late order was bound
    assert agent._slots.slots[pending.slot_price].order_status is OrderStatus.NEW
    assert agent.reducing_reason.startswith("position drift at start: the venue holds 0.100")


async def test_the_venue_clock_offset_follows_only_stamped_current_ticks() -> None:
    venue, store = Venue(), new_store()
    agent = venue.agent(store, reconcile=False)
    agent._clock = TestClock(venue.clock.now_ms() + 300_000)  # this host runs 5 min ahead
    ctx = EventContext(subject="price", trace_id="")
    venue_now = venue.clock.now_ms()
    await agent.on_price(PriceChange("sim", "ETHUSDT", D("3000"), exchange_ms=venue_now, sequence=5), ctx)
    assert agent._decision_ms() == venue_now
    await agent.on_price(
        PriceChange("sim", "ETHUSDT", D("3000"), exchange_ms=0, sequence=6), ctx
    )  # unstamped
    await agent.on_price(PriceChange("sim", "ETHUSDT", D("3000"), exchange_ms=1, sequence=4), ctx)  # older
    assert agent._decision_ms() == venue_now


# --- the position check while trading -------------------------------------------------------


async def catch_up(agent: MarketMakerAgent, venue: Venue) -> None:
    """The account's order stream delivers every change of the slots' orders at the venue."""
    for slot in list(agent._slots.slots.values()):
        order = venue.core.get_order("acct", slot.client_order_id) if slot.has_order else None
        if order is not None and (order.status.is_final or order.filled_qty != slot.order_filled_qty):
            await agent.on_order_update(
                OrderUpdate(f"stream-{order.client_order_id}-{order.filled_qty}", order)
            )
    for _ in range(200):  # the agent's loop places what the fills call for
        await asyncio.sleep(0)


def someone_buys(venue: Venue, client_order_id: str, qty: str = "0.100") -> None:
    """A person buys on the account, above the grid's buys (none of them fills)."""
    venue.manual(client_order_id, Side.BUY, "3003.50", qty=qty)
    venue.sweep(D("3003.50"))


async def test_a_position_changed_behind_the_grid_makes_it_reduce_only_on_the_second_check() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        await tick(agent, "3004.00")  # where the first agent left the market
        assert agent.reducing_reason == ""
        assert len(buys(venue.core)) == 4
        someone_buys(venue, "manual-1")
        first = await agent.check_position()
        assert first is not None
        assert first.settled
        assert not first.confirmed
        assert agent.reducing_reason == ""
        second = await agent.check_position()
        assert second is not None
        assert second.alert
        assert agent.reducing_reason.startswith("position drift while running: the venue holds 0.100")
        for _ in range(200):  # no new price: the alert itself has the working buys cancelled
            await asyncio.sleep(0)
        assert buys(venue.core) == []
        venue.gateway.calls.clear()
        await tick(agent, "3010.00")
        assert ("place", "BUY", "accepted") not in venue.gateway.calls


async def test_a_fill_the_order_stream_lost_is_applied_by_the_check_and_counted_once() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        top = agent._slots.slots[resting[-1]]
        venue.sweep(resting[-1])  # the top buy fills at the venue; its update never comes
        first = await agent.check_position()
        assert first is not None
        assert not first.settled  # it looked the order up and applied it meanwhile
        assert agent._slots.slots[resting[-1]].position_qty == top.order_qty
        assert agent.reducing_reason == ""
        for _ in range(2):
            verdict = await agent.check_position()
            assert verdict is not None
            assert verdict.settled
            assert verdict.reading.drift == 0
        await catch_up(agent, venue)  # the stream's copy turns up after all
        assert agent._slots.slots[resting[-1]].position_qty == top.order_qty
    assert agent.reducing_reason == ""


async def test_a_fill_applied_while_the_venue_is_read_proves_nothing() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    read = venue.gateway.account_snapshot
    racing = [resting[-1], resting[-2]]  # equal sizes: two such readings would agree on a drift

    async def read_then_fill(symbol: str) -> AccountSnapshot:
        snapshot = await read(symbol)  # the venue is read, then a buy fills and the stream
        if racing:  # brings it before the read is answered
            venue.sweep(racing.pop(0))
            await catch_up(agent, venue)
        return snapshot

    async with running(agent):
        venue.gateway.account_snapshot = read_then_fill  # type: ignore[method-assign]
        for _ in range(2):
            verdict = await agent.check_position()
            assert verdict is not None
            assert verdict.reading.drift < 0  # the slots hold a buy the venue's position lacks
            assert not verdict.settled
        assert agent.reducing_reason == ""
        settled = await agent.check_position()
        assert settled is not None
        assert settled.settled
        assert settled.reading.drift == 0


async def test_orders_held_before_they_reach_the_venue_do_not_blind_the_check() -> None:
    venue, store = Venue(), new_store()
    agent, pending = await halted_with_pending(venue, store)
    async with running(agent):
        await tick(agent, "3004.00")
        assert agent._slots.slots[pending.slot_price].order_status is None  # held PENDING
        someone_buys(venue, "manual-1")
        await agent.check_position()
        verdict = await agent.check_position()
        assert verdict is not None
        assert verdict.settled  # looked up: the venue never had it
        assert verdict.alert


async def test_a_partial_fill_whose_update_was_lost_is_applied_by_the_check() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        slot = agent._slots.slots[resting[-1]]
        working = venue.core.get_order("acct", slot.client_order_id)
        assert working is not None
        part = working.quantity / 2
        partly = replace(working, status=OrderStatus.PARTIALLY_FILLED, filled_qty=part)

        async def answer(symbol: str, client_order_id: str) -> Order | None:
            return partly if client_order_id == slot.client_order_id else None

        venue.gateway.get_order = answer  # type: ignore[method-assign]
        venue.gateway.hidden = {slot.client_order_id}  # (the venue lists it with the fill)
        verdict = await agent.check_position()
        assert verdict is not None
        assert not verdict.settled
        assert agent._slots.slots[resting[-1]].order_filled_qty == part
        assert agent._slots.slots[resting[-1]].position_qty == part


async def test_an_order_the_venue_lists_late_but_has_leaves_the_reading_unsettled() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        late = agent._slots.slots[resting[-1]].client_order_id
        venue.gateway.hidden = {late}  # missing from the open orders, found by its lookup
        verdict = await agent.check_position()
        assert verdict is not None
        assert ("get", "", late) in venue.gateway.calls
        assert not verdict.settled


@pytest.mark.parametrize("which", ["another exchange id", "made long before the decision"])
async def test_a_finished_order_a_lookup_finds_is_applied_only_if_it_is_the_slots(which: str) -> None:
    venue, store = Venue(), new_store()
    venue.clock.advance(120_000)  # so an order can be older than a minute before the decision
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        slot = agent._slots.slots[resting[-1]]
        working = venue.core.get_order("acct", slot.client_order_id)
        assert working is not None
        old = replace(working, status=OrderStatus.FILLED, filled_qty=working.quantity)  # a reused id's
        if which == "another exchange id":
            old = replace(old, exchange_order_id="older-1")
        else:
            assert slot.order_requested_ms > REUSED_ID_AGE_MS
            old = replace(old, created_ms=1)

        async def answer(symbol: str, client_order_id: str) -> Order | None:
            return old if client_order_id == slot.client_order_id else None

        venue.gateway.get_order = answer  # type: ignore[method-assign]
        venue.gateway.hidden = {slot.client_order_id}
        await agent.check_position()
        assert agent._slots.slots[resting[-1]].position_qty == 0  # not counted as a fill


async def test_a_check_looks_up_at_most_a_few_missing_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "LOOKUPS_PER_CHECK", 1)
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        venue.gateway.hidden = {agent._slots.slots[p].client_order_id for p in resting[-2:]}
        venue.gateway.calls.clear()
        verdict = await agent.check_position()
        assert verdict is not None
        assert not verdict.settled
        assert [c for c in venue.gateway.calls if c[0] == "get"] == []


async def test_a_drift_is_confirmed_across_the_grids_own_fills() -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        someone_buys(venue, "manual-1")
        await agent.check_position()
        venue.sweep(resting[-1])  # the grid trades between the checks, and hears of it
        await catch_up(agent, venue)
        assert agent._slots.slots[resting[-1]].position_qty > 0
        second = await agent.check_position()
        assert second is not None
        assert second.alert
        assert agent.reducing_reason.startswith("position drift while running")


async def test_a_drift_left_at_start_alerts_once_and_resume_acknowledges_it() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    someone_buys(venue, "manual-1")
    agent = venue.agent(store)
    async with running(agent):
        assert agent.reducing_reason.startswith("position drift at start")
        outstanding = await agent.check_position()
        assert outstanding is not None
        assert outstanding.confirmed
        assert not outstanding.alert
        assert "while running" not in agent.reducing_reason  # the same drift, told once
        agent.resume()  # the operator checked the account and accepts it
        verdict = await agent.check_position()
        assert verdict is not None
        assert verdict.acknowledged
        assert agent.reducing_reason == ""
        someone_buys(venue, "manual-2", qty="0.050")  # a new change on the account
        await agent.check_position()
        await agent.check_position()
        assert agent.reducing_reason.startswith("position drift while running")


async def test_a_running_alert_is_raised_once_and_a_new_drift_after_resume_alerts_again() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    metrics = ServiceMetrics("test")
    agent = venue.agent(store, metrics=metrics)
    async with running(agent):
        someone_buys(venue, "manual-1")
        for _ in range(3):
            await agent.check_position()
        someone_buys(venue, "manual-2", qty="0.050")  # and it moves again, still unresolved
        for _ in range(2):
            await agent.check_position()
        assert agent.reducing_reason.count("position drift") == 1
        agent.resume()
        assert await agent.check_position() is not None  # the latest drift is not the one that alerted
        assert agent.reducing_reason.startswith("position drift while running: the venue holds 0.150")
        venue.gateway.failures = 1
        before = agent.reducing_reason
        assert await agent.check_position() is None
        assert agent.reducing_reason == before

    def checks(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "opensqt_position_checks_total", {"agent": CONFIG.agent, "outcome": outcome}
        )

    assert (checks("unconfirmed"), checks("alert"), checks("drift"), checks("unreadable")) == (2, 2, 2, 1)
    assert metrics.registry.get_sample_value("opensqt_position_drift", {"agent": CONFIG.agent}) == 0.15


async def test_a_resume_that_lifts_a_pause_does_not_accept_a_drift_seen_once() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        agent.pause("maintenance")
        someone_buys(venue, "manual-1")
        await agent.check_position()  # seen once while paused
        agent.resume()
        verdict = await agent.check_position()
        assert verdict is not None
        assert verdict.alert
        assert agent.reducing_reason.startswith("position drift while running")


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_a_stray_fill_that_made_the_agent_reduce_at_start_is_what_resume_acknowledges(
    side: Side,
) -> None:
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    if side is Side.BUY:
        _, stray = await stray_beside(venue, store, resting[-1])
    else:  # a close of this agent's, above the market, on a slot busy with its buy
        stray = CODEC.encode(resting[-1], Side.SELL, 7)
        venue.manual(stray, Side.SELL, "3010.00")
    venue.gateway.fills_before_cancel.add(stray)
    async with running(agent):
        assert agent.reducing_reason.startswith(f"stray order {stray} filled")
        await catch_up(agent, venue)  # the top buy filled beside it
        agent.resume()
        for _ in range(2):
            verdict = await agent.check_position()
            assert verdict is not None
            assert verdict.settled
            assert verdict.acknowledged
        assert agent.reducing_reason == ""


async def test_a_shared_position_is_not_checked() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    agent = venue.agent(store, shared=True)
    async with running(agent):
        reads = venue.gateway.snapshots
        assert await agent.check_position() is None
        assert venue.gateway.snapshots == reads


async def test_the_watch_checks_at_its_interval() -> None:
    venue, store = Venue(), new_store()
    await traded(venue, store)
    agent = venue.agent(store)
    async with running(agent):
        reads = venue.gateway.snapshots
        watch = asyncio.create_task(agent.watch_position(0.01))
        someone_buys(venue, "manual-1")
        try:
            for _ in range(200):
                if agent.reducing_reason:
                    break
                await asyncio.sleep(0.01)
        finally:
            watch.cancel()
        assert venue.gateway.snapshots >= reads + 2
        assert agent.reducing_reason.startswith("position drift while running")


async def test_a_position_with_no_slots_and_no_anchor_is_rebuilt_from_its_entry_price() -> None:
    # Redis lost everything (slots and anchor) while the account held a position: the slots are
    # rebuilt from the entry price up (behaviour.md §2), and the grid trades on, not reduce-only
    venue, store = Venue(), new_store()
    venue.manual("held-1", Side.BUY, "3003.50", qty="0.025")
    venue.sweep(D("3003.50"))
    entry = venue.core.position("acct", "sim", "ETHUSDT").entry_price
    assert await store.get_anchor() is None
    agent = venue.agent(store)
    async with running(agent):
        assert agent.reducing_reason == ""
        slots = sorted((s for s in agent._slots.slots.values() if s.position_qty), key=lambda s: s.slot_price)
        assert sum(s.position_qty for s in slots) == D("0.025")
        assert slots[0].slot_price == INSTRUMENT.round_price(entry)
        assert await store.get_anchor() == INSTRUMENT.round_price(entry)
        await tick(agent, "3006.00")  # the take-profit of the first rebuilt slot, one interval up
        assert ("place", "SELL", "accepted") in venue.gateway.calls


async def test_an_own_order_no_slot_tracks_that_turns_up_while_running_is_cancelled_by_the_check() -> None:
    # the periodic reconciler of spec §2: an order of this agent appears mid-run (a second
    # instance, a slot state restored from an older save) and no slot would ever end it
    venue, store = Venue(), new_store()
    resting = await traded(venue, store)
    agent = venue.agent(store)
    await agent.start()
    venue.gateway.calls.clear()
    busy, stray = await stray_beside(venue, store, resting[0])
    venue.manual("manual-3", Side.BUY, "2900.00")  # someone else's: left alone
    await agent.check_position()
    open_ids = {o.client_order_id for o in venue.core.open_orders("acct")}
    assert stray not in open_ids
    assert {"manual-3", busy.client_order_id} <= open_ids
    assert venue.gateway.calls == [("cancel", "", "done")]
    assert agent.reducing_reason == ""
    await agent.check_position()  # nothing left to cancel
    assert venue.gateway.calls == [("cancel", "", "done")]
