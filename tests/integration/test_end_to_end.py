"""The constellation as processes, trading: a price path on the paper exchange produces grid
orders; fills come back through monitor -> NATS -> strategy; take-profit sells follow; the slots
in Redis match the paper exchange's orders and position."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from opensqt.certs import DevPki
from opensqt.config import NatsSettings
from opensqt.devstack import free_port
from opensqt.grid.manager import decode_slot
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup
from opensqt.model import InventorySlot, LockStatus, Position, PositionStatus, PositionUpdate
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import GRID_SLOTS
from opensqt.transport.subjects import POSITION
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, risk_pb2, risk_pb2_grpc, strategy_pb2, strategy_pb2_grpc
from tests.support.paper_venue import paper_read_venue
from tests.support.waiting import until

pytestmark = pytest.mark.integration

GRID = {"name": "mm1", "symbol": "BTCUSDT", "price_interval": "100", "order_notional": "300",
        "buy_window": "3", "sell_window": "3", "max_open_orders": "6"}  # fmt: skip


class Running:
    def __init__(self, constellation: LocalConstellation, session: aiohttp.ClientSession) -> None:
        self.c = constellation
        self.session = session
        self.venue = paper_read_venue(constellation.paper_url)

    async def price(self, price: str) -> None:
        async with self.session.post(
            self.c.paper_url + "/admin/price", json={"symbol": "BTCUSDT", "price": price}
        ) as response:
            assert response.status == 200, await response.text()

    async def fill(self, client_order_id: str, qty: str) -> None:
        """Someone takes ``qty`` of one of the grid's resting orders (a trade at its price)."""
        body = {"account": "main", "symbol": "BTCUSDT", "client_order_id": client_order_id, "qty": qty}
        async with self.session.post(self.c.paper_url + "/admin/fill", json=body) as response:
            assert response.status == 200, await response.text()

    async def order_log(self) -> list[dict[str, Any]]:
        async with self.session.get(self.c.paper_url + "/admin/orders?symbol=BTCUSDT") as response:
            assert response.status == 200, await response.text()
            entries: list[dict[str, Any]] = await response.json()
            return entries

    async def open_orders(self) -> dict[str, tuple[str, Decimal, Decimal]]:
        return {
            o.client_order_id: (o.side.value, o.price, o.quantity)
            for o in await self.venue.fetch_open_orders("BTCUSDT")
        }

    async def position(self) -> Decimal:
        return sum((p.size for p in await self.venue.fetch_positions(["BTCUSDT"])), Decimal(0))

    async def slots(self) -> list[InventorySlot]:
        assert self.c.redis is not None
        client = aioredis.from_url(self.c.redis.url)
        try:
            raw = await client.hgetall(GRID_SLOTS.key(agent="mm1", symbol="BTCUSDT"))
        finally:
            await client.aclose()
        return sorted((decode_slot(v) for v in raw.values()), key=lambda s: s.slot_price)


@pytest.fixture
async def running(tmp_path: Path, pki: DevPki) -> AsyncIterator[Running]:
    constellation = LocalConstellation(
        workdir=tmp_path / "run",
        cert_dir=pki.directory,
        ports={name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES},
        trading=TradingSetup(symbols=("BTCUSDT",), market_makers=(GRID,), paper_source="manual"),
        paper_port=free_port(),
    )
    await asyncio.to_thread(constellation.start)
    try:
        async with aiohttp.ClientSession() as session:
            run = Running(constellation, session)
            await run.venue.load_markets()
            try:
                yield run
            finally:
                await run.venue.close()
    finally:
        codes = await asyncio.to_thread(constellation.stop)
        assert set(codes.values()) == {0}, codes


async def _slots_match_the_venue(run: Running) -> list[InventorySlot]:
    slots = await run.slots()
    venue_orders = await run.open_orders()
    working = {s.client_order_id: s for s in slots if s.lock_status is LockStatus.LOCKED}
    assert set(working) == set(venue_orders), (working.keys(), venue_orders.keys())
    for cid, slot in working.items():
        side, price, qty = venue_orders[cid]
        assert slot.order_side is not None
        assert (slot.order_side.value, slot.order_price, slot.order_qty) == (side, price, qty)
    assert sum((s.position_qty for s in slots), Decimal(0)) == await run.position()
    return slots


async def assert_slots_match_the_venue(run: Running, within: float = 10.0) -> list[InventorySlot]:
    """The slots in Redis and the venue converge: two snapshots read one after the other can
    straddle a transition, so the comparison is retried until it holds (or the time is up)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await _slots_match_the_venue(run)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def grid_working(run: Running) -> None:
    """The first price anchors the grid: buys at 29900 and 29800, acknowledged in the slots."""

    async def two_buys() -> bool:
        if set(await run.open_orders()) == {"BTCUSDT-mm1-299000-B-0", "BTCUSDT-mm1-298000-B-0"}:
            return True
        await run.price("30000.0")  # core NATS: repeated until the agent has seen it
        return False

    await until(two_buys, "the first grid buys")
    await until(_settled(run), "the slots to record both acknowledgements")


async def test_price_path_places_grid_buys_fills_them_and_closes_with_take_profit_sells(
    running: Running,
) -> None:
    run = running
    # the first price fixes the anchor: buys one and two levels below (30000 itself is too close).
    # Prices are core NATS (latest wins, no replay), so repeat it until the agent has seen it.

    async def two_buys() -> Any:
        orders = await run.open_orders()
        if len(orders) == 2:
            return orders
        await run.price("30000.0")
        return None

    orders = await until(two_buys, "the first grid buys")
    assert orders == {
        "BTCUSDT-mm1-299000-B-0": ("BUY", Decimal("29900"), Decimal("0.010")),
        "BTCUSDT-mm1-298000-B-0": ("BUY", Decimal("29800"), Decimal("0.010")),
    }
    await until(_settled(run), "the slots to record both acknowledgements")
    await assert_slots_match_the_venue(run)

    # the price trades through 29900: the buy fills; the close is a reduce-only SELL one level up
    await run.price("29850.0")

    async def take_profit() -> Any:
        orders = await run.open_orders()
        return orders.get("BTCUSDT-mm1-299000-S-1")

    assert await until(take_profit, "the take-profit sell") == ("SELL", Decimal("30000"), Decimal("0.010"))
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    filled = [s for s in slots if s.position_status is PositionStatus.FILLED]
    assert [(s.slot_price, s.position_qty) for s in filled] == [(Decimal("29900.0"), Decimal("0.010"))]
    assert await run.position() == Decimal("0.010")

    # the price comes back through 30000: the sell fills, the slot is empty again, the position flat
    await run.price("30050.0")

    async def flat() -> Any:
        return await run.position() == 0 and "BTCUSDT-mm1-299000-S-1" not in await run.open_orders()

    await until(flat, "the take-profit fill")
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    assert all(s.position_status is PositionStatus.EMPTY for s in slots)
    assert next(s for s in slots if s.slot_price == Decimal("29900.0")).cycle == 2


async def test_partial_fills_accumulate_on_the_slot_and_the_close_takes_the_whole_fill(
    running: Running,
) -> None:
    """A busy book: someone takes part of the grid's buy, later the price takes the rest; part
    of the take-profit sell fills before the rest. The slot follows each trade, no close goes
    out for a buy still working, and Redis and the venue agree at every step."""
    run = running

    await grid_working(run)

    async def slot_at(price: str) -> InventorySlot:
        return next(s for s in await run.slots() if s.slot_price == Decimal(price))

    async def holds(qty: str, client_order_id: str) -> bool:
        slot = await slot_at("29900")
        return (
            slot.position_qty == Decimal(qty)
            and slot.lock_status is LockStatus.LOCKED
            and slot.client_order_id == client_order_id
        )

    buy, sell = "BTCUSDT-mm1-299000-B-0", "BTCUSDT-mm1-299000-S-1"
    await run.fill(buy, "0.004")
    await until(lambda: holds("0.004", buy), "the partial buy on the slot")
    slots = await assert_slots_match_the_venue(run)
    assert next(s for s in slots if s.slot_price == Decimal("29900")).position_status is PositionStatus.FILLED
    assert sorted(await run.open_orders()) == sorted([buy, "BTCUSDT-mm1-298000-B-0"])  # no close yet
    assert await run.position() == Decimal("0.004")

    # the price trades through 29900: the rest of the buy fills; the close sells the whole 0.010
    await run.price("29850.0")

    async def take_profit() -> Any:
        return (await run.open_orders()).get(sell)

    assert await until(take_profit, "the take-profit sell") == ("SELL", Decimal("30000"), Decimal("0.010"))
    await until(_settled(run), "the slots to settle")
    await assert_slots_match_the_venue(run)

    # part of the close fills: the slot keeps the rest, still working on the same sell
    await run.fill(sell, "0.006")
    await until(lambda: holds("0.004", sell), "the partial sell on the slot")
    await assert_slots_match_the_venue(run)
    assert await run.position() == Decimal("0.004")

    # the price comes back through 30000: the rest of the sell fills, the slot is empty again
    await run.price("30050.0")

    async def flat() -> Any:
        return await run.position() == 0 and sell not in await run.open_orders()

    await until(flat, "the take-profit fill")
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    assert all(s.position_status is PositionStatus.EMPTY for s in slots)
    assert (await slot_at("29900")).cycle == 2


async def test_a_partly_filled_buy_cancelled_on_reducing_closes_what_it_filled(
    running: Running, pki: DevPki
) -> None:
    """behaviour.md, Fills: a BUY cancelled with a partial fill leaves its slot FILLED with the
    partial quantity, and the close sells that quantity (REDUCING: reduce-only, and no buy)."""
    run = running

    await grid_working(run)
    await run.fill("BTCUSDT-mm1-299000-B-0", "0.004")

    async def partial() -> bool:
        return await run.position() == Decimal("0.004")

    await until(partial, "the partial fill")
    operator = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    async with secure_channel(f"127.0.0.1:{run.c.ports['risk'].api}", operator) as channel:
        reply = await risk_pb2_grpc.RiskServiceStub(channel).Halt(
            risk_pb2.HaltRequest(state=events_pb2.TRADING_STATE_KIND_REDUCING, reason="partial fill drill")
        )
    assert all(ack.acknowledged for ack in reply.executors), reply

    async def only_the_close() -> Any:
        orders = await run.open_orders()
        return orders if set(orders) == {"BTCUSDT-mm1-299000-S-1"} else None

    # no price comes after the transition: the agent acts on the state change itself
    orders = await until(only_the_close, "the buys cancelled and the partial closed")
    assert orders["BTCUSDT-mm1-299000-S-1"] == ("SELL", Decimal("30000"), Decimal("0.004"))
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    held = [(s.slot_price, s.position_qty) for s in slots if s.position_qty]
    assert held == [(Decimal("29900"), Decimal("0.004"))]
    log = await run.order_log()
    (cancelled,) = [
        e["order"] for e in log
        if e["order"]["client_order_id"] == "BTCUSDT-mm1-299000-B-0" and e["order"]["status"] == "CANCELED"
    ]  # fmt: skip
    assert Decimal(cancelled["filled_qty"]) == Decimal("0.004")


def _settled(run: Running) -> Callable[[], Any]:
    async def check() -> bool:
        slots = await run.slots()
        if any(s.lock_status is LockStatus.PENDING for s in slots):
            return False
        working = {s.client_order_id for s in slots if s.lock_status is LockStatus.LOCKED}
        return working == set(await run.open_orders())

    return check


async def publish_near_liquidation(run: Running, event_id: str, size: Decimal) -> None:
    """A position update of the grid's long ``size``, as a venue reports it 7.6% from its
    liquidation price (the monitor's subject, published as the monitor would)."""
    assert run.c.nats is not None
    bus = await EventBus.connect(
        NatsSettings(url=run.c.nats.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    try:
        position = Position(
            "BTCUSDT", size, entry_price=Decimal("29850"), mark_price=Decimal("29750"),
            liquidation_price=Decimal("27500"), venue="paper", account="main",
            updated_ms=int(time.time() * 1000),
        )  # fmt: skip
        update = PositionUpdate(event_id=event_id, position=position)
        subject = POSITION.subject(account="main", symbol="BTCUSDT")
        await bus.publish(POSITION, subject, update, msg_id=update.event_id)
    finally:
        await bus.close()


async def test_a_position_near_liquidation_is_exited_through_the_slots_and_buys_stop(
    running: Running, pki: DevPki
) -> None:
    """The liquidation guard (behaviour.md §4) in the strategy service: a position update that
    puts the grid's long within 10% of its liquidation price makes the agent close it at once,
    through the executor, slot by slot, and open nothing more until Resume."""
    run = running

    await grid_working(run)
    await run.price("29750.0")  # both buys fill; their take-profits rest above

    async def long_two() -> bool:
        return await run.position() == Decimal("0.020")

    await until(long_two, "both buys to fill")
    await until(_settled(run), "the slots to settle")
    # the monitor's next position update, as a venue reports a long 7.6% from liquidation
    await publish_near_liquidation(run, "liquidation-test-1", Decimal("0.020"))

    async def exited() -> bool:
        return await run.position() == 0 and await run.open_orders() == {}

    await until(exited, "the emergency exit")
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    assert all(s.position_status is PositionStatus.EMPTY for s in slots)
    operator = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    async with secure_channel(f"127.0.0.1:{run.c.ports['strategy'].api}", operator) as channel:
        status = await strategy_pb2_grpc.StrategyServiceStub(channel).GetStatus(
            strategy_pb2.GetStrategyStatusRequest()
        )
    (agent,) = status.agents
    assert agent.reducing_reason.startswith("liquidation guard"), agent.reducing_reason

    async def alerted() -> Any:  # the agent's own alert, kept by risk with its own
        async with secure_channel(f"127.0.0.1:{run.c.ports['risk'].api}", operator) as channel:
            reply = await risk_pb2_grpc.RiskServiceStub(channel).ListAlerts(risk_pb2.ListAlertsRequest())
        mine = [a for a in reply.alerts if a.alert_id.startswith("mm1-liquidation-")]
        return mine or None

    (alert,) = await until(alerted, "the agent's alert in risk's list")
    assert alert.kind == events_pb2.ALERT_KIND_LIQUIDATION
    assert "reduce-only: liquidation guard" in alert.message
    # the market moves on: the grid, reduce-only, places no buy
    for price in ("29650.0", "29850.0", "29750.0"):
        await run.price(price)
        await asyncio.sleep(0.3)
    assert await run.open_orders() == {}


async def test_on_a_thin_book_the_liquidation_exit_keeps_each_slots_rest_and_the_next_update_closes_it(
    running: Running,
) -> None:
    """The book holds 0.006 BTC at the touch: each slot's reduce-only IOC closes 0.006 of its
    0.010 and expires. Each slot keeps the 0.004 the venue still holds for it (the slots match
    the venue; reduce-only, the grid offers it with a take-profit sell), and the next update
    still too close cancels those and closes the rest, under the slots' next ids."""
    run = running
    await grid_working(run)
    await run.price("29750.0")

    async def long_two() -> bool:
        return await run.position() == Decimal("0.020")

    await until(long_two, "both buys to fill")
    await until(_settled(run), "the slots to settle")
    async with run.session.post(
        run.c.paper_url + "/admin/book", json={"symbol": "BTCUSDT", "depth": "0.006", "family": "usdm"}
    ) as response:
        assert response.status == 200, await response.text()

    await publish_near_liquidation(run, "liquidation-thin-1", Decimal("0.020"))

    async def partly_exited() -> bool:
        # reduce-only, the grid takes profit on what each slot still holds: sells only
        working = await run.open_orders()
        rests = sorted((side, qty) for side, _, qty in working.values())
        return await run.position() == Decimal("0.008") and rests == [("SELL", Decimal("0.004"))] * 2

    await until(partly_exited, "each slot's exit to fill what the book holds")
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    assert sorted(s.position_qty for s in slots if s.position_qty) == [Decimal("0.004")] * 2
    exits = [
        e["order"] for e in await run.order_log()
        if e["order"]["reduce_only"] and e["execution"] == "EXPIRED"
    ]  # fmt: skip
    assert sorted((o["time_in_force"], Decimal(o["filled_qty"])) for o in exits) == [
        ("IOC", Decimal("0.006")),
        ("IOC", Decimal("0.006")),
    ]

    await publish_near_liquidation(run, "liquidation-thin-2", Decimal("0.008"))

    async def exited() -> bool:
        return await run.position() == 0 and await run.open_orders() == {}

    await until(exited, "the second exit to close the rest")
    await until(_settled(run), "the slots to settle")
    slots = await assert_slots_match_the_venue(run)
    assert all(s.position_status is PositionStatus.EMPTY for s in slots)
    # every client id went to the venue once: four exits in all, each slot's two under its own ids
    log = await run.order_log()
    client_ids = list({e["order"]["exchange_order_id"]: e["order"]["client_order_id"] for e in log}.values())
    assert len(client_ids) == len(set(client_ids)), client_ids
    ioc = {e["order"]["client_order_id"] for e in log if e["order"]["time_in_force"] == "IOC"}
    assert len(ioc) == 4, ioc
