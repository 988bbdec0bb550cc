"""The market maker's liquidation guard (behaviour.md §4): a position too close to its
liquidation price is exited at once, through the slots, and the agent only reduces afterwards.

The agent trades on the matching core through the gateway the reconciliation tests use; the
position updates are the monitor's (mark and liquidation price as the venue reports them).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from opensqt.engine.live import EXIT_PRICE_BAND, LIQUIDATION_REASON, MarketMakerAgent
from opensqt.model import (
    AlertKind,
    AlertSeverity,
    Order,
    OrderStatus,
    OrderUpdate,
    Position,
    PositionUpdate,
    RiskAlert,
    Side,
    TimeInForce,
    TradingStateKind,
)
from opensqt.telemetry import ServiceMetrics
from tests.unit.engine.test_market_maker_agent import buys, running
from tests.unit.engine.test_market_maker_reconcile import Fixed, Venue, new_store, tick

D = Decimal
MARK = "2998.00"


def update(size: str, mark: str, liquidation: str, ms: int = 5_000) -> PositionUpdate:
    position = Position(
        "ETHUSDT", D(size), entry_price=D("3000"), mark_price=D(mark), liquidation_price=D(liquidation),
        venue="sim", updated_ms=ms,
    )  # fmt: skip
    return PositionUpdate(event_id=f"pos-{ms}", position=position)


async def settle(agent: MarketMakerAgent | None = None) -> None:
    """Let the agent's exit task (if any) and everything it started run out."""
    for _ in range(200):
        await asyncio.sleep(0)
    task = agent._exit_task if agent is not None else None
    if task is not None:
        await task
    for _ in range(200):
        await asyncio.sleep(0)


async def deliver(venue: Venue, agent: MarketMakerAgent) -> None:
    """The order stream: the venue's view of every slot order that has executed."""
    for slot in list(agent._slots.slots.values()):
        order = venue.core.get_order("acct", slot.client_order_id) if slot.client_order_id else None
        if order is not None and order.filled_qty:
            await agent.on_order_update(OrderUpdate(f"u-{order.client_order_id}-{order.filled_qty}", order))


async def long_with_inventory(venue: Venue, agent: MarketMakerAgent) -> Decimal:
    """The grid climbs to 3004 (four buys rest), then the market falls through three of them
    and stays at 2998: three slots hold inventory, their take-profits rest above. Returns the
    position."""
    for price in ("3000.00", "3002.00", "3004.00"):
        await tick(agent, price)
    venue.clock.advance(1_000)
    for point in (D("3004.00"), D("2997.99")):
        venue.core.sweep("sim", "ETHUSDT", point, venue.clock.now_ms())
    await deliver(venue, agent)
    await tick(agent, MARK)
    position = venue.core.position("acct", "sim", "ETHUSDT").size
    assert position > 0
    assert any(o.side is Side.SELL for o in venue.core.open_orders("acct"))
    return position


async def test_a_position_near_liquidation_is_closed_through_its_slots_and_buys_stop() -> None:
    venue = Venue()
    metrics = ServiceMetrics("strategy")
    agent = venue.agent(new_store(), metrics=metrics)
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        venue.gateway.placed.clear()
        # liquidation 2750: 8.3% below the mark, under the 10% threshold
        await agent.on_position(update(str(size), MARK, "2750.00"))
        await settle(agent)
        assert venue.core.open_orders("acct") == []  # buys and take-profits cancelled
        assert venue.core.position("acct", "sim", "ETHUSDT").size == 0
        exits = venue.gateway.placed
        assert len(exits) == 3  # one per slot with inventory
        limit = (D(MARK) * (1 - EXIT_PRICE_BAND)).quantize(D("0.01"), rounding="ROUND_DOWN")
        assert all(
            (o.side, o.reduce_only, o.time_in_force, o.price) == (Side.SELL, True, TimeInForce.IOC, limit)
            for o in exits
        )
        assert sum(o.quantity for o in exits) == size
        assert all(s.position_qty == 0 for s in agent._slots.slots.values())  # every fill accounted
        assert agent.reducing_reason.startswith(LIQUIDATION_REASON)
        exits = metrics.registry.get_sample_value("opensqt_liquidation_exits_total", {"agent": agent.name})
        assert exits == 1
        # the market rises and falls again: the grid opens nothing until an operator resumes
        for price in ("3006.00", "3000.00", "2998.00"):
            await tick(agent, price)
        assert buys(venue.core) == []
        agent.resume()
        await tick(agent, "2998.00")
        assert buys(venue.core)


async def test_a_position_far_from_liquidation_is_left_alone() -> None:
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        open_before = sorted(o.client_order_id for o in venue.core.open_orders("acct"))
        await agent.on_position(update(str(size), MARK, "2000.00"))  # 33% away
        await agent.on_position(update("0", MARK, "0"))  # nothing to measure
        await settle(agent)
        assert sorted(o.client_order_id for o in venue.core.open_orders("acct")) == open_before
        assert agent.reducing_reason == ""


async def test_a_shared_position_or_a_guard_turned_off_does_not_act() -> None:
    for shared, threshold in ((True, D("0.10")), (False, D(0))):
        venue = Venue()
        agent = venue.agent(new_store(), shared=shared, reconcile=False)
        agent._liquidation_threshold = threshold
        async with running(agent):
            size = await long_with_inventory(venue, agent)
            await agent.on_position(update(str(size), MARK, "2990.00"))
            await settle(agent)
            assert venue.core.position("acct", "sim", "ETHUSDT").size == size
            assert agent.reducing_reason == ""


async def test_what_an_ioc_leaves_is_closed_by_the_next_update_still_too_close() -> None:
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        gateway = venue.gateway
        real_place = gateway.place
        expired_once: list[str] = []

        async def thin_book(order: Order) -> Order:
            # the first exit order finds no buyer within its limit: the venue expires it
            if order.time_in_force is TimeInForce.IOC and not expired_once:
                expired_once.append(order.client_order_id)
                gateway.sent.add(order.client_order_id)
                return Order(
                    symbol=order.symbol, side=order.side, order_type=order.order_type,
                    quantity=order.quantity, price=order.price, client_order_id=order.client_order_id,
                    exchange_order_id="x-1", venue="sim", account="acct", time_in_force=TimeInForce.IOC,
                    reduce_only=True, status=OrderStatus.EXPIRED, created_ms=venue.clock.now_ms(),
                )  # fmt: skip
            return await real_place(order)

        gateway.place = thin_book  # type: ignore[method-assign]
        await agent.on_position(update(str(size), MARK, "2750.00", ms=5_000))
        await settle(agent)
        left = venue.core.position("acct", "sim", "ETHUSDT").size
        assert 0 < left < size, (left, size, expired_once)  # one slot's close expired, the others filled
        await agent.on_position(update(str(left), "2997.00", "2750.00", ms=7_000))
        await settle(agent)
        assert venue.core.position("acct", "sim", "ETHUSDT").size == 0
        assert all(s.position_qty == 0 for s in agent._slots.slots.values())
        assert agent.emergency_exits == 2


async def test_only_the_latest_update_is_acted_on() -> None:
    """Updates that queue up while the agent is busy: one exit, at the newest mark."""
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        venue.gateway.placed.clear()
        async with agent._turn:  # an evaluation is under way
            for mark, ms in (("2998.00", 5_000), ("2996.00", 6_000), ("2990.00", 7_000)):
                await agent.on_position(update(str(size), mark, "2750.00", ms=ms))
            await settle()
        await settle(agent)
        assert agent.emergency_exits == 1
        limit = (D("2990.00") * (1 - EXIT_PRICE_BAND)).quantize(D("0.01"), rounding="ROUND_DOWN")
        assert {o.price for o in venue.gateway.placed} == {limit}
        assert venue.core.position("acct", "sim", "ETHUSDT").size == 0


async def test_what_the_venue_holds_beyond_the_slots_is_closed_too() -> None:
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        in_slots = await long_with_inventory(venue, agent)
        venue.manual("someone-1", Side.BUY, "3010.00")  # takes at once: the venue holds more
        size = venue.core.position("acct", "sim", "ETHUSDT").size
        assert size == in_slots + D("0.010")
        venue.gateway.placed.clear()
        await agent.on_position(update(str(size), MARK, "2750.00", ms=5_000))
        await settle(agent)
        assert venue.core.position("acct", "sim", "ETHUSDT").size == 0
        rest = [o for o in venue.gateway.placed if o.client_order_id.startswith(f"{agent.name}-liq-")]
        assert [(o.side, o.quantity, o.reduce_only, o.time_in_force) for o in rest] == [
            (Side.SELL, D("0.010"), True, TimeInForce.IOC)
        ]
        assert all(s.position_qty == 0 for s in agent._slots.slots.values())


async def test_under_halted_nothing_is_sent_but_the_agent_turns_reduce_only() -> None:
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        agent._trading_state = Fixed(TradingStateKind.HALTED)  # type: ignore[assignment]
        venue.gateway.placed.clear()
        await agent.on_position(update(str(size), MARK, "2750.00"))
        await settle(agent)
        assert venue.gateway.placed == []
        assert agent.emergency_exits == 0
        assert agent.reducing_reason.startswith(LIQUIDATION_REASON)
        assert venue.core.position("acct", "sim", "ETHUSDT").size == size


async def test_a_stale_size_in_the_update_sends_nothing_beyond_the_slots() -> None:
    """The venue is read for what lies beyond the slots: an update whose size is out of date
    (fills since) does not make the agent sell the slots' inventory twice."""
    venue = Venue()
    agent = venue.agent(new_store())
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        venue.gateway.placed.clear()
        await agent.on_position(update(str(size + D("0.030")), MARK, "2750.00"))
        await settle(agent)
        assert not [o for o in venue.gateway.placed if "-liq-" in o.client_order_id]
        assert venue.core.position("acct", "sim", "ETHUSDT").size == 0
        assert all(s.position_qty == 0 for s in agent._slots.slots.values())


async def test_the_agent_raises_its_own_alert_once() -> None:
    venue = Venue()
    agent = venue.agent(new_store())
    raised: list[RiskAlert] = []

    async def alerts(alert: RiskAlert) -> None:
        raised.append(alert)

    agent._alerts = alerts
    async with running(agent):
        size = await long_with_inventory(venue, agent)
        await agent.on_position(update(str(size), MARK, "2750.00", ms=5_000))
        await settle(agent)
        await agent.on_position(update("0.001", MARK, "2750.00", ms=6_000))  # still too close
        await settle(agent)
    assert [(a.kind, a.severity, a.symbols) for a in raised] == [
        (AlertKind.LIQUIDATION, AlertSeverity.CRITICAL, ("ETHUSDT",))
    ]
    assert raised[0].message.startswith(f"agent {agent.name} on ETHUSDT is reduce-only: liquidation guard")
