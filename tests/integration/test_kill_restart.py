"""SIGKILL one service of a trading constellation mid-run and restart it: the system reconciles
and continues, with no duplicate order and no lost fill.

Everything is a process or a real server (nats-server, redis-server, the paper exchange with a
manual price source, the four services with mTLS), as in ``test_end_to_end``. The grid (mm1 on
BTCUSDT, levels 100 apart) starts with buys at 29900 and 29800; each case kills one service at a
moment where it matters, drives the price while it is down, restarts it and drives on:

* strategy: killed while a take-profit is in flight (its slot PENDING in Redis, the order held at
  the venue), and a second buy fills while it is down; and killed while a buy fills in parts
  (one part before, one while it is down: the restart reads both from the venue);
* monitor: killed, then a buy and a take-profit fill at the venue while nothing streams them;
  and killed while a buy fills in two parts;
* risk: killed while REDUCING; the state holds without it and after its restart, where a Resume
  and a Halt still reach the executor;
* executor: killed after the venue accepted an order but before it answered; the order fills
  while the executor is down, so only a lookup by client id on recovery avoids a second one.

Judged from the paper exchange (its order log, open orders and position), never from what the
services report: every client order id is one exchange order placed once; no order request
repeats a client id the venue already had (a resend looks it up first); the slots in Redis
converge to the venue's open orders and position (every venue fill reflected); and trading goes
on (take-profits for the fills made during the outage, new orders after the restart).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup
from opensqt.model import InventorySlot, LockStatus, PositionStatus, Side
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.integration.test_end_to_end import (
    GRID,
    Running,
    _settled,
    assert_slots_match_the_venue,
    grid_working,
)
from tests.support.waiting import until

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
ORDER_PATH = "/fapi/v1/order"
HOLD_MS = 1500  # an order request held at the venue: a kill lands while it is in flight
QTY = Decimal("0.010")
BUY_29900, BUY_29800 = "BTCUSDT-mm1-299000-B-0", "BTCUSDT-mm1-298000-B-0"
TP_29900, TP_29800 = "BTCUSDT-mm1-299000-S-1", "BTCUSDT-mm1-298000-S-1"
ACTIVE = events_pb2.TRADING_STATE_KIND_ACTIVE
REDUCING = events_pb2.TRADING_STATE_KIND_REDUCING
HALTED = events_pb2.TRADING_STATE_KIND_HALTED


class Run(Running):
    """The constellation, the venue's books, and the operator's gRPC identity."""

    def __init__(
        self, constellation: LocalConstellation, session: aiohttp.ClientSession, operator: TlsFiles
    ) -> None:
        super().__init__(constellation, session)
        self.operator = operator
        self.channels: list[grpc.aio.Channel] = []

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.c.paper_url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def order_log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.admin("GET", f"/admin/orders?symbol={SYMBOL}")
        return entries

    async def last_seq(self) -> int:
        return max((int(e["seq"]) for e in await self.order_log()), default=0)

    async def hold_order_requests(self) -> None:
        await self.admin("POST", "/admin/faults", {"kind": "latency", "path": ORDER_PATH, "method": "POST",
                                                   "ms": HOLD_MS})  # fmt: skip

    async def withhold_order_answers(self) -> None:
        """Order requests are handled (the order is placed) but answered only after HOLD_MS."""
        await self.admin("POST", "/admin/faults", {"kind": "ambiguous", "path": ORDER_PATH, "method": "POST",
                                                   "mode": "delay", "delay_ms": HOLD_MS})  # fmt: skip

    async def clear_faults(self) -> None:
        await self.admin("DELETE", "/admin/faults")

    async def slot(self, price: str) -> InventorySlot | None:
        return next((s for s in await self.slots() if s.slot_price == Decimal(price)), None)

    async def traded(self, client_order_id: str) -> bool:
        return any(
            e["execution"] == "TRADE" and e["order"]["client_order_id"] == client_order_id
            for e in await self.order_log()
        )

    async def order_of(self, client_order_id: str) -> tuple[str, Decimal]:
        """Side and limit price of an order, from the venue's order log."""
        order = next(
            e["order"] for e in await self.order_log() if e["order"]["client_order_id"] == client_order_id
        )
        return str(order["side"]), Decimal(str(order["price"]))

    async def placed_after(self, seq: int, side: str = "") -> list[str]:
        """Client ids of the orders the venue took after log entry ``seq`` (an order that fills
        on arrival has no NEW entry: its first entry is its TRADE)."""
        first: dict[str, dict[str, Any]] = {}
        for entry in await self.order_log():
            first.setdefault(entry["order"]["client_order_id"], entry)
        return [
            cid
            for cid, entry in first.items()
            if int(entry["seq"]) > seq and (not side or entry["order"]["side"] == side)
        ]

    async def restart(self, name: str) -> int:
        """Start ``name`` again (waits for SERVING); returns the order log's last seq before it."""
        seq = await self.last_seq()
        await asyncio.to_thread(self.c.start_service, name)
        return seq

    async def kill(self, name: str) -> None:
        code = await asyncio.to_thread(self.c.kill, name)
        assert code == -9, code

    async def risk(self) -> risk_pb2_grpc.RiskServiceStub:
        channel = secure_channel(f"127.0.0.1:{self.c.ports['risk'].api}", self.operator)
        self.channels.append(channel)
        return risk_pb2_grpc.RiskServiceStub(channel)

    async def executor_state(self) -> events_pb2.TradingState:
        async with secure_channel(f"127.0.0.1:{self.c.ports['executor'].api}", self.operator) as channel:
            reply = await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
                executor_pb2.GetExecutorStatusRequest()
            )
        state: events_pb2.TradingState = reply.trading_state
        return state


@pytest.fixture
async def run(tmp_path: Path, pki: DevPki) -> AsyncIterator[Run]:
    # free_port() releases the port it found; under a busy machine another process can take it
    # before a service binds, so start-up is tried once more with fresh ports.
    for attempt in range(2):
        constellation = LocalConstellation(
            workdir=tmp_path / f"run{attempt}",
            cert_dir=pki.directory,
            ports={name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES},
            trading=TradingSetup(symbols=(SYMBOL,), market_makers=(GRID,), paper_source="manual"),
            paper_port=free_port(),
        )
        try:
            await asyncio.to_thread(constellation.start)
            break
        except (RuntimeError, TimeoutError):
            if attempt == 1:
                raise
    try:
        async with aiohttp.ClientSession() as session:
            result = Run(constellation, session, TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator")))
            await result.venue.load_markets()
            try:
                yield result
            finally:
                for channel in result.channels:
                    await channel.close()
                await result.venue.close()
    finally:
        codes = await asyncio.to_thread(constellation.stop)
        assert set(codes.values()) == {0}, codes


# --- driving the market ---------------------------------------------------------------------


async def drive_until(
    run: Run, price: str, check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0
) -> None:
    """Post ``price`` until ``check`` holds: again and again, as prices are latest-wins core NATS
    and the agent acts (re-sends, places, cancels) only when it evaluates a price."""

    async def step() -> bool:
        await run.price(price)
        await asyncio.sleep(0.2)
        return await check()

    await until(step, what, within)


async def pending_sell(run: Run, slot_price: str) -> bool:
    slot = await run.slot(slot_price)
    return slot is not None and slot.lock_status is LockStatus.PENDING and slot.order_side is Side.SELL


# --- judging from the venue ---------------------------------------------------------------------


async def assert_no_duplicate_order(run: Run) -> None:
    """Every client order id is one exchange order, accepted once, and no order was sent again
    once the venue had it (from the venue's order log and request log). The second part does
    not rely on the venue refusing a reused client id: a resend must look the order up first."""
    log = await run.order_log()
    exchange_ids: defaultdict[str, set[str]] = defaultdict(set)
    accepted_ms: dict[str, int] = {}
    news: Counter[str] = Counter()
    for entry in log:
        cid = entry["order"]["client_order_id"]
        exchange_ids[cid].add(str(entry["order"]["exchange_order_id"]))
        accepted_ms.setdefault(cid, int(entry["time_ms"]))
        news[cid] += entry["execution"] == "NEW"
    doubled = {cid: ids for cid, ids in exchange_ids.items() if len(ids) > 1}
    assert not doubled, doubled
    assert not {cid: n for cid, n in news.items() if n > 1}, news
    requests = await run.admin("GET", f"/admin/requests?path={ORDER_PATH}&method=POST")
    resent = [
        r for r in requests["requests"]
        if r["client_order_id"] in accepted_ms and int(r["time_ms"]) > accepted_ms[r["client_order_id"]]
    ]  # fmt: skip
    assert not resent, resent


async def assert_reconciled(run: Run) -> list[InventorySlot]:
    """No duplicate at the venue, and the slots hold exactly the venue's orders and position."""
    try:
        await until(_settled(run), "the slots to settle")
    except AssertionError as exc:  # say which slots disagree with the venue
        busy = [
            (str(s.slot_price), s.lock_status.value, s.client_order_id, s.order_status)
            for s in await run.slots()
            if s.lock_status is not LockStatus.FREE
        ]
        raise AssertionError(f"{exc}: slots {busy}, open at the venue {await run.open_orders()}") from exc
    slots = await assert_slots_match_the_venue(run)
    await assert_no_duplicate_order(run)
    return slots


async def flat(run: Run) -> bool:
    return await run.position() == 0


# --- the cases ------------------------------------------------------------------------------------


async def strategy_killed_with_a_take_profit_in_flight(run: Run) -> None:
    await run.hold_order_requests()
    # 29850 fills the 29900 buy; the strategy marks the take-profit PENDING and sends it, and
    # the venue holds the request: the kill lands between the slot write and the acceptance
    await run.price("29850.0")
    await until(lambda: pending_sell(run, "29900"), "the take-profit to be PENDING", within=10)
    await run.kill("strategy")
    await run.clear_faults()
    # the executor places it anyway; and the 29800 buy fills while the strategy is down
    await drive_until(run, "29750.0", lambda: run.traded(BUY_29800), "the 29800 buy to fill")
    restarted_at = await run.restart("strategy")

    # the restart settles the PENDING take-profit (re-sent with the same client id, or its
    # acceptance replayed: one order either way), replays the missed fill and closes it too
    async def both_take_profits() -> bool:
        orders = await run.open_orders()
        return orders.get(TP_29900) == ("SELL", Decimal("30000"), QTY) and orders.get(TP_29800) == (
            "SELL",
            Decimal("29900"),
            QTY,
        )

    await drive_until(run, "29760.0", both_take_profits, "both take-profits after the restart")
    assert TP_29800 in await run.placed_after(restarted_at)
    await assert_reconciled(run)
    assert await run.position() == 2 * QTY

    # trading continues: both take-profits fill, every slot is empty again
    await drive_until(run, "30050.0", lambda: flat(run), "the take-profits to fill")
    slots = await assert_reconciled(run)
    closed = {s.slot_price: s for s in slots if s.slot_price in (Decimal("29900"), Decimal("29800"))}
    assert all(s.position_status is PositionStatus.EMPTY and s.cycle >= 2 for s in closed.values()), closed


async def strategy_killed_while_a_buy_fills_in_parts(run: Run) -> None:
    # part of the 29900 buy fills while the strategy runs, more while it is down
    await run.fill(BUY_29900, "0.003")
    await until(lambda: slot_holds(run, "29900", "0.003"), "the first part on the slot")
    await run.kill("strategy")
    await run.fill(BUY_29900, "0.004")
    await run.restart("strategy")

    # the restart reads the venue: the slot holds both parts, its buy still working, no close yet
    await until(lambda: slot_holds(run, "29900", "0.007"), "both parts on the slot after the restart")
    await assert_reconciled(run)
    assert TP_29900 not in await run.open_orders()
    assert await run.position() == Decimal("0.007")

    # the price takes the rest: one take-profit for the whole buy, then flat
    await drive_until(run, "29850.0", lambda: has_order(run, TP_29900), "the take-profit of the whole buy")
    assert (await run.open_orders())[TP_29900] == ("SELL", Decimal("30000"), QTY)
    await drive_until(run, "30050.0", lambda: flat(run), "the take-profit to fill")
    slots = await assert_reconciled(run)
    assert next(s for s in slots if s.slot_price == Decimal("29900")).position_status is PositionStatus.EMPTY


async def monitor_killed_while_a_buy_fills_in_parts(run: Run) -> None:
    await run.kill("monitor")
    # nothing streams these: two parts of the 29900 buy fill
    await run.fill(BUY_29900, "0.004")
    await run.fill(BUY_29900, "0.002")
    await run.restart("monitor")

    # the monitor's resync publishes the working order as it is now: the slot holds both parts
    await until(lambda: slot_holds(run, "29900", "0.006"), "both parts on the slot after the restart")
    await assert_reconciled(run)
    assert await run.position() == Decimal("0.006")

    # and streams again: the rest fills, one take-profit sells the whole buy
    await drive_until(run, "29850.0", lambda: has_order(run, TP_29900), "the take-profit of the whole buy")
    assert (await run.open_orders())[TP_29900] == ("SELL", Decimal("30000"), QTY)
    await assert_reconciled(run)


async def slot_holds(run: Run, price: str, qty: str) -> bool:
    """The slot holds ``qty`` and still works its order (a buy partly filled)."""
    slot = await run.slot(price)
    return slot is not None and slot.position_qty == Decimal(qty) and slot.lock_status is LockStatus.LOCKED


async def monitor_killed_while_orders_fill(run: Run) -> None:
    await drive_until(run, "29850.0", lambda: has_order(run, TP_29900), "the first take-profit")
    await assert_reconciled(run)
    await run.kill("monitor")
    # nothing streams these: the 29800 buy fills, then the 29900 take-profit
    await run.price("29750.0")
    await until(lambda: run.traded(BUY_29800), "the 29800 buy to fill")
    await run.price("30050.0")
    await until(lambda: run.traded(TP_29900), "the 29900 take-profit to fill")
    await run.price("29850.0")  # back between the levels: the restart's take-profit will rest
    assert await run.position() == QTY
    restarted_at = await run.restart("monitor")

    # the monitor resyncs over REST: the strategy learns both fills and closes the new inventory
    await drive_until(run, "29850.0", lambda: has_order(run, TP_29800), "the take-profit of the 29800 fill")
    assert TP_29800 in await run.placed_after(restarted_at)
    slots = await assert_reconciled(run)
    by_price = {s.slot_price: s for s in slots}
    assert by_price[Decimal("29900")].position_status is PositionStatus.EMPTY
    assert by_price[Decimal("29800")].position_qty == QTY

    # and streams again: the take-profit fills through the restarted monitor's stream
    await drive_until(run, "29950.0", lambda: flat(run), "the 29800 take-profit to fill")
    await assert_reconciled(run)


async def risk_killed_while_reducing(run: Run) -> None:
    risk = await run.risk()
    await drive_until(run, "29850.0", lambda: has_order(run, TP_29900), "the first take-profit")
    reply = await risk.Halt(risk_pb2.HaltRequest(state=REDUCING, reason="kill drill"))
    assert [ack.acknowledged for ack in reply.executors] == [True], reply
    version = reply.trading_state.version

    async def no_open_buys() -> bool:
        return all(side != "BUY" for side, _, _ in (await run.open_orders()).values())

    await drive_until(run, "29860.0", no_open_buys, "the buys to be cancelled on REDUCING")
    await run.kill("risk")
    reduced_at = await run.last_seq()

    # without risk the executor holds the state: the price falls through empty levels, no buy
    for price in ("29750.0", "29650.0", "29550.0"):
        await run.price(price)
        await asyncio.sleep(0.5)
    await run.restart("risk")
    risk = await run.risk()
    state = (await risk.GetTradingState(risk_pb2.GetTradingStateRequest())).trading_state
    assert (state.state, state.version) == (REDUCING, version), state
    assert (await run.executor_state()).state == REDUCING
    for price in ("29560.0", "29570.0"):
        await run.price(price)
        await asyncio.sleep(0.5)
    assert await run.placed_after(reduced_at, side="BUY") == []
    await assert_reconciled(run)

    # the restarted risk still commands every executor: Resume brings buys back, Halt stops all
    reply = await risk.Resume(risk_pb2.ResumeRequest(reason="drill over"))
    assert [ack.acknowledged for ack in reply.executors] == [True], reply
    resumed_at = await run.last_seq()
    await drive_until(
        run,
        "29580.0",
        lambda: has_new_buy(run, resumed_at),
        "buys after the Resume through the restarted risk",
    )
    assert (await run.executor_state()).state == ACTIVE
    reply = await risk.Halt(risk_pb2.HaltRequest(state=HALTED, reason="kill drill: halt"))
    assert [ack.acknowledged for ack in reply.executors] == [True], reply
    assert (await run.executor_state()).state == HALTED
    await until(lambda: no_working_order(run), "every order cancelled on HALTED", within=10)
    await assert_reconciled(run)


async def executor_killed_while_placing(run: Run) -> None:
    await run.withhold_order_answers()
    before = await run.last_seq()
    # 29850 fills the 29900 buy; the next order the executor places is accepted by the venue,
    # but the executor is killed before it hears so: only the venue knows the order exists
    await run.price("29850.0")
    (unanswered, *_) = await until(lambda: run.placed_after(before), "an order accepted, its answer held")
    await run.kill("executor")
    await run.clear_faults()
    # and it fills while the executor is down: a blind resend now would be a second order
    side, price = await run.order_of(unanswered)
    through = str(price + 50 if side == "SELL" else price - 50)
    await drive_until(run, through, lambda: run.traded(unanswered), "the unanswered order to fill")
    restarted_at = await run.restart("executor")

    # the restarted executor (DBOS recovery, the strategy's re-send) finds it by client id, and
    # the orders the strategy could not send while it was down go out now
    await drive_until(run, through, _settled(run), "the grid to settle after the restart")
    await assert_reconciled(run)
    await drive_until(run, "30050.0", lambda: flat(run), "the take-profits to fill")
    await assert_reconciled(run)
    assert await run.placed_after(restarted_at)  # trading goes on through the restarted executor


async def has_order(run: Run, client_order_id: str) -> bool:
    return client_order_id in await run.open_orders()


async def has_new_buy(run: Run, seq: int) -> bool:
    return bool(await run.placed_after(seq, side="BUY"))


async def no_working_order(run: Run) -> bool:
    return not await run.open_orders()


CASES = {
    "strategy": strategy_killed_with_a_take_profit_in_flight,
    "strategy-partial-fills": strategy_killed_while_a_buy_fills_in_parts,
    "monitor": monitor_killed_while_orders_fill,
    "monitor-partial-fills": monitor_killed_while_a_buy_fills_in_parts,
    "risk": risk_killed_while_reducing,
    "executor": executor_killed_while_placing,
}


@pytest.mark.parametrize("service", list(CASES))
async def test_sigkill_and_restart_reconciles_with_no_duplicate_and_no_lost_fill(
    run: Run, service: str
) -> None:
    await grid_working(run)
    await assert_reconciled(run)
    await CASES[service](run)
    await assert_no_duplicate_order(run)
