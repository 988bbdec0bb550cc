"""Chaos: the executor as a process, killed with SIGKILL at random points of two-leg sequences.

The paper exchange runs in this event loop (manual market, BTCUSDT at 30000); nats-server and
redis-server are the real binaries; the executor is ``python -m opensqt_services.executor`` with
its DBOS SQLite database in the test's directory, kept (with the executor id) across restarts.
Two faults on ``POST /fapi/v1/order`` (30-60 ms each, drawn per sequence) hold every order
request at the venue, before it is handled (a kill there loses the request) and after it is
accepted (a kill there leaves an order the executor never heard of), so kills land inside both.

Each sequence is two MARKET legs, driven over mTLS gRPC as the strategy identity:

- *round trip* (two thirds): BUY 0.010 BTCUSDT, then SELL BTCUSDT reduce-only sized from leg one;
  it must end COMPLETED with both legs filled.
- *failing* (one third): BUY 0.010 BTCUSDT, then SELL 0.100 ETHUSDT reduce-only with no ETH
  position, which the venue rejects; leg one must be compensated (a reduce-only SELL), so the
  sequence ends COMPENSATED with nothing left open.

For a seeded random subset the executor is killed (SIGKILL) after a random delay from one of the
sequence's moments at the venue, taken in turn: the RPC sent, leg one arrived or answered, leg
two arrived or answered, the unwind order arrived. It is then restarted and the driver retries
ExecuteSequence with the same sequence id until it answers (DBOS recovers the workflow or
returns its recorded outcome). Every other restart meets a venue that lists its markets 1.5 s
late (recovery must not run ahead of the instruments), and every fifth kill is followed by a
second one while the executor recovers. The phase a kill hit is read back from the paper
exchange's request log (each order request's arrival and answer times) and order log.

Judged from the paper exchange's order log: every client order id is one exchange order (no
duplicate) and every sequence's fills net to zero per symbol, with the legs its outcome reports
(no sequence left with one leg open); finally no position and no working order remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from statistics import mean
from typing import Any

import aiohttp
import grpc
import pytest

from opensqt.devstack import free_port
from opensqt.local import wait_serving
from opensqt.paper import PaperExchange
from opensqt.paper.limits import RequestRecord
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import executor_pb2, executor_pb2_grpc, resources_pb2
from tests.integration.execution.conftest import wait_for_markets
from tests.integration.paper.conftest import TRADE_KEY, TRADE_SECRET, Admin
from tests.support.servers import Infra

pytestmark = pytest.mark.integration

SEED = 20240611
SEQUENCES = 50
KILL_SHARE = 0.45  # of the sequences, drawn with the seeded RNG
FAILING_EVERY = 3  # every third sequence fails on leg two
ORDER_PATH = "/fapi/v1/order"
MARKETS_PATH = "/fapi/v1/exchangeInfo"
SLOW_MARKETS_MS = 1500
RECOVERY_KILL_EVERY = 5  # every fifth kill is followed by another while the executor recovers
LEG_QTY = Decimal("0.010")
CALL_TIMEOUT_S = 30.0
OUTCOME_WITHIN_S = 60.0

BUY, SELL = resources_pb2.SIDE_BUY, resources_pb2.SIDE_SELL
MARKET = resources_pb2.ORDER_TYPE_MARKET
COMPLETED = executor_pb2.SEQUENCE_STATUS_COMPLETED
COMPENSATED = executor_pb2.SEQUENCE_STATUS_COMPENSATED

# Moments of a sequence at the venue a kill is timed from: (which order placement, by its rank
# in the sequence: 1 leg one, 2 leg two, 3 the unwind order; "arrived" or "answered"), with the
# longest random delay after it in ms (None: up to the time the venue holds the request). Rank 0
# is the RPC being sent. Kills take them in turn, separately for each kind of sequence.
ROUND_TRIP_ANCHORS: tuple[tuple[int, str, int | None], ...] = (
    (1, "answered", 5),  # between leg-one fill and leg-two submit
    (0, "sent", 40),
    (1, "arrived", None),
    (2, "arrived", None),
    (2, "answered", 5),
)
FAILING_ANCHORS: tuple[tuple[int, str, int | None], ...] = (
    (2, "answered", 5),  # leg two rejected: the compensation starts
    (3, "arrived", None),  # the unwind order at the venue
    (1, "answered", 5),
    (1, "arrived", None),
    (2, "arrived", None),
)


# --- the executor as a process -----------------------------------------------------------------


@dataclass
class ExecutorProcess:
    """``python -m opensqt_services.executor`` on fixed loopback ports, restartable."""

    infra: Infra
    paper: PaperExchange
    workdir: Path
    executor_id: str = "chaos-executor"
    port: int = field(default_factory=free_port)
    probe_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    start_seconds: list[float] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSQT_")}
        env.update(
            {
                "OPENSQT_NATS__URL": self.infra.nats.url,
                "OPENSQT_REDIS__URL": self.infra.redis.url,
                "OPENSQT_TLS__CERT_DIR": str(self.infra.pki.directory),
                "OPENSQT_GRPC__PORT": str(self.port),
                "OPENSQT_GRPC__PROBE_PORT": str(self.probe_port),
                "OPENSQT_GRPC__GRACE_SECONDS": "0.5",
                "OPENSQT_EXECUTOR_ID": self.executor_id,
                "OPENSQT_VENUE__REST_URL": self.paper.rest_url,
                "OPENSQT_VENUE__WS_URL": self.paper.ws_url,
                "OPENSQT_VENUE__API_KEY": TRADE_KEY,
                "OPENSQT_VENUE__API_SECRET": TRADE_SECRET,
                "OPENSQT_VENUE__TIMEOUT_MS": "3000",
                "OPENSQT_DBOS__DATA_DIR": str(self.workdir / "dbos"),
                "OPENSQT_TELEMETRY__LOG_FORMAT": "json",
            }
        )
        return env

    def spawn(self) -> subprocess.Popen[bytes]:
        with (self.workdir / "executor.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "opensqt_services.executor"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

    async def start(self) -> float:
        """Start the process and wait until it answers ListInstruments; returns the seconds."""
        started = time.monotonic()
        self.proc = self.spawn()
        # wait_serving blocks: in a thread, so the paper exchange in this loop keeps answering
        await asyncio.to_thread(wait_serving, self.probe_port, 60.0, self.proc)
        await wait_for_markets(self.target, self.infra.pki, within=30.0)
        self.start_seconds.append(time.monotonic() - started)
        return self.start_seconds[-1]

    def kill(self) -> None:
        """SIGKILL: no drain, no DBOS shutdown, no deregistration."""
        assert self.proc is not None, "the executor is not running"
        assert self.proc.poll() is None, f"the executor exited by itself ({self.proc.returncode})"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def channel(self, identity: str = "strategy") -> grpc.aio.Channel:
        pki = self.infra.pki
        return secure_channel(self.target, TlsFiles(pki.ca, pki.cert(identity), pki.key(identity)))


@dataclass
class Venue:
    """What the paper exchange saw: its admin API for the verdicts, and its request log read
    in this process to time kills (no HTTP round trip between a moment and the kill)."""

    admin: Admin
    paper: PaperExchange

    def placements_now(self) -> list[RequestRecord]:
        """The order placements the venue has received so far, oldest first."""
        return [r for r in self.paper.traffic.log.entries if r.method == "POST" and r.path == ORDER_PATH]

    async def order_requests(self) -> list[dict[str, Any]]:
        """Every ``POST /fapi/v1/order`` (an order placement), oldest first."""
        reply = await self.admin.request("GET", f"/admin/requests?path={ORDER_PATH}&method=POST")
        assert reply["evicted"] == 0, "the paper exchange's request log overflowed"
        return [r for r in reply["requests"] if r["path"] == ORDER_PATH]

    async def orders(self) -> dict[str, dict[str, dict[str, Any]]]:
        """client order id -> exchange order id -> the order's latest state, from the order log."""
        orders: dict[str, dict[str, dict[str, Any]]] = {}
        for entry in await self.admin.orders():
            order = entry["order"]
            orders.setdefault(order["client_order_id"], {})[order["exchange_order_id"]] = order
        return orders

    async def placed(self, cid: str, within: float) -> bool:
        """Until the venue has placed an order with this client id."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if any(e.order.client_order_id == cid for e in self.paper.venue.order_log):
                return True
            await asyncio.sleep(0.001)
        return False

    async def slow_orders(self, before_ms: int, after_ms: int = 0) -> None:
        """Hold every order placement ``before_ms`` before the venue handles it (a kill then
        loses the request) and, if accepted, ``after_ms`` before the answer (a kill then leaves
        an order the executor never heard of)."""
        await self.admin.clear_faults()
        if before_ms:
            await self.admin.fault(kind="latency", path=ORDER_PATH, method="POST", ms=before_ms)
        if after_ms:
            await self.admin.fault(
                kind="ambiguous", path=ORDER_PATH, method="POST", mode="delay", delay_ms=after_ms
            )


@pytest.fixture
async def chaos(
    paper: PaperExchange, infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[ExecutorProcess, Venue]]:
    executor = ExecutorProcess(infra, paper, tmp_path)
    async with aiohttp.ClientSession() as session:
        try:
            await executor.start()
            yield executor, Venue(Admin(paper.rest_url, session), paper)
        finally:
            await executor.stop()


# --- sequences ---------------------------------------------------------------------------------


def market(
    cid: str, symbol: str, side: resources_pb2.Side, qty: str, *, reduce_only: bool = False
) -> executor_pb2.OrderRequest:
    return executor_pb2.OrderRequest(
        symbol=symbol, client_order_id=cid, side=side, type=MARKET, quantity=qty, reduce_only=reduce_only
    )


def two_legs(sequence_id: str, failing: bool) -> executor_pb2.ExecuteSequenceRequest:
    leg_one = executor_pb2.SequenceStep(
        step_id="open",
        order=market(f"{sequence_id}-a", "BTCUSDT", BUY, str(LEG_QTY)),
        compensate_on_failure=True,
    )
    if failing:  # no ETH position: the venue rejects a reduce-only sell
        leg_two = executor_pb2.SequenceStep(
            step_id="close", order=market(f"{sequence_id}-b", "ETHUSDT", SELL, "0.100", reduce_only=True)
        )
    else:
        leg_two = executor_pb2.SequenceStep(
            step_id="close",
            order=market(f"{sequence_id}-b", "BTCUSDT", SELL, "1", reduce_only=True),
            size_from_step="open",
        )
    return executor_pb2.ExecuteSequenceRequest(sequence_id=sequence_id, steps=[leg_one, leg_two])


async def outcome_after_restart(
    executor: ExecutorProcess, request: executor_pb2.ExecuteSequenceRequest
) -> tuple[executor_pb2.ExecuteSequenceResponse | None, int, str]:
    """Retry the same sequence until the executor answers it (UNAVAILABLE: not ready yet).
    Returns the answer (None if the executor answered with an error), the calls, the error."""
    deadline = time.monotonic() + OUTCOME_WITHIN_S
    tries = 0
    async with executor.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        while True:
            tries += 1
            try:
                return await stub.ExecuteSequence(request, timeout=CALL_TIMEOUT_S), tries, ""
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return None, tries, f"{exc.code().name}: {exc.details()}"
            assert time.monotonic() < deadline, f"{request.sequence_id}: no outcome after the restart"
            await asyncio.sleep(0.05)


async def wait_for_moment(venue: Venue, known: int, rank: int, moment: str, within: float) -> bool:
    """Until the rank-th order placement after the first ``known`` has ``moment`` (arrived or
    answered); False if that does not happen within ``within`` seconds (the sequence ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        fresh = venue.placements_now()[known:]
        if len(fresh) >= rank and (moment == "arrived" or fresh[rank - 1].answered_ms is not None):
            return True
        await asyncio.sleep(0.0005)
    return False


def phase_hit(
    kill_ms: int, requests: list[dict[str, Any]], placed_ms: dict[str, int], sequence_id: str
) -> str:
    """Where a kill at ``kill_ms`` landed, from the venue's record of the order requests made
    while the sequence ran (the first request for each client id; a later one is a resend) and
    the times its orders were placed. A request held at the venue when the kill came is lost
    with its connection; the venue never read its body, so it has no client id."""
    first: dict[str, dict[str, Any]] = {}
    for record in requests:
        first.setdefault(record["client_order_id"], record)
    lost = any(not r["client_order_id"] and r["time_ms"] <= kill_ms for r in requests)

    def at_venue(cid: str, name: str) -> str | None:
        record = first.get(cid)
        if record is None or kill_ms < record["time_ms"]:
            return f"{name} held at the venue, lost with the connection" if lost else f"before {name}"
        if record["answered_ms"] is None or kill_ms < record["answered_ms"]:
            if cid in placed_ms and placed_ms[cid] <= kill_ms:
                return f"{name} placed at the venue, answer not yet sent"
            return f"{name} held at the venue"
        return None

    one, two, unwind = f"{sequence_id}-a", f"{sequence_id}-b", f"{sequence_id}-a-c0"
    phase = at_venue(one, "leg one")
    if phase is not None:
        return phase
    phase = at_venue(two, "leg two")
    if phase == "before leg two":
        return "between leg-one fill and leg-two submit"
    if phase is not None:
        return phase
    if first[two]["status"] < 400:
        return "after leg two filled"
    phase = at_venue(unwind, "the unwind order")
    if phase == "before the unwind order":
        return "compensation: after leg-two rejection, before the unwind order"
    if phase is not None:
        return f"compensation: {phase}"
    return "compensation: after the unwind filled"


def signed(order: dict[str, Any]) -> Decimal:
    qty = Decimal(order["filled_qty"])
    return qty if order["side"] == "BUY" else -qty


@dataclass
class Record:
    sequence_id: str
    failing: bool
    status: int = 0
    first_request: int = 0  # the index of its first order request in the venue's request log
    killed: bool = False
    kill_ms: int = 0
    killed_in_recovery: bool = False  # killed again, while it recovered from the first kill
    slow_markets: bool = False  # the venue listed its markets late on the restart
    phase: str = ""
    error: str = ""  # the executor's error instead of an outcome, after a restart
    tries: int = 1
    seconds: float = 0.0
    restart_s: float = 0.0  # SIGKILL to serving again
    outcome_s: float = 0.0  # serving again to the sequence's answer


@dataclass
class Driver:
    """Runs the sequences as the strategy would, killing and restarting the executor."""

    executor: ExecutorProcess
    venue: Venue
    rng: random.Random
    kills: int = 0
    turns: Counter[bool] = field(default_factory=Counter)  # kills timed, per kind of sequence
    channel: grpc.aio.Channel | None = None

    def stub(self) -> executor_pb2_grpc.ExecutorServiceStub:
        if self.channel is None:
            self.channel = self.executor.channel()
        return executor_pb2_grpc.ExecutorServiceStub(self.channel)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None

    async def kill(self, *calls: asyncio.Future[executor_pb2.ExecuteSequenceResponse]) -> None:
        """SIGKILL the executor; the calls in flight end (an error, or an answer given just
        before the kill); the next call opens a new channel."""
        self.executor.kill()
        self.kills += 1
        for call in calls:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
        await self.close()

    async def run(self, record: Record) -> None:
        before_ms, after_ms = self.rng.randint(30, 60), self.rng.randint(30, 60)
        await self.venue.slow_orders(before_ms, after_ms)
        request = two_legs(record.sequence_id, record.failing)
        known = record.first_request = len(self.venue.placements_now())
        started = time.monotonic()
        call = asyncio.ensure_future(self.stub().ExecuteSequence(request, timeout=CALL_TIMEOUT_S))
        if not record.killed:
            response = await call
        else:
            anchors = FAILING_ANCHORS if record.failing else ROUND_TRIP_ANCHORS
            rank, moment, longest = anchors[self.turns[record.failing] % len(anchors)]
            self.turns[record.failing] += 1
            if rank:
                await wait_for_moment(self.venue, known, rank, moment, within=5.0)
            await asyncio.sleep(self.rng.uniform(0, longest or before_ms + after_ms) / 1000)
            record.kill_ms = time.time_ns() // 1_000_000
            await self.kill(call)
            response = await self.recover(record, request)
        record.status = response.status if response is not None else 0
        record.seconds = time.monotonic() - started

    async def recover(
        self, record: Record, request: executor_pb2.ExecuteSequenceRequest
    ) -> executor_pb2.ExecuteSequenceResponse | None:
        # every other restart meets a venue slow to list its markets: recovery may start
        # before the executor knows the instruments
        record.slow_markets = self.kills % 2 == 0
        if record.slow_markets:
            await self.venue.admin.fault(
                kind="latency", path=MARKETS_PATH, method="GET", ms=SLOW_MARKETS_MS, times=1
            )
        record.restart_s = await self.executor.start()
        if self.kills % RECOVERY_KILL_EVERY == 0:
            # and sometimes the executor dies again while it recovers
            retry = asyncio.ensure_future(self.stub().ExecuteSequence(request, timeout=CALL_TIMEOUT_S))
            await asyncio.sleep(self.rng.uniform(0, 1.2))
            record.killed_in_recovery = True
            await self.kill(retry)
            await self.executor.start()
        serving = time.monotonic()
        response, record.tries, record.error = await outcome_after_restart(self.executor, request)
        record.outcome_s = time.monotonic() - serving
        return response


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.timeout(400)
async def test_sigkill_at_random_points_of_two_leg_sequences_leaves_no_duplicate_and_no_open_leg(
    chaos: tuple[ExecutorProcess, Venue],
) -> None:
    executor, venue = chaos
    rng = random.Random(SEED)
    driver = Driver(executor, venue, rng)
    began = time.monotonic()
    records: list[Record] = []
    try:
        for index in range(SEQUENCES):
            failing = index % FAILING_EVERY == FAILING_EVERY - 1
            record = Record(f"chaos-{index:03d}", failing, killed=rng.random() < KILL_SHARE)
            await driver.run(record)
            records.append(record)
    finally:
        await driver.close()
    driven_s = time.monotonic() - began

    # What the venue saw.
    await venue.admin.clear_faults()
    requests = await venue.order_requests()
    orders = await venue.orders()
    leg_gaps_ms: list[int] = []
    placed_ms = {cid: min(o["created_ms"] for o in by_id.values()) for cid, by_id in orders.items()}
    for record, after in zip(records, [*(r.first_request for r in records[1:]), len(requests)], strict=True):
        during = requests[record.first_request : after]
        if record.killed:
            record.phase = phase_hit(record.kill_ms, during, placed_ms, record.sequence_id)
        else:  # how long the window between the legs is, undisturbed
            by_cid = {r["client_order_id"]: r for r in during}
            first, second = by_cid[f"{record.sequence_id}-a"], by_cid[f"{record.sequence_id}-b"]
            leg_gaps_ms.append(second["time_ms"] - first["answered_ms"])

    duplicates = {cid: sorted(by_id) for cid, by_id in orders.items() if len(by_id) > 1}
    one_legged: dict[str, dict[str, Decimal]] = {}
    wrong_outcome: dict[str, str] = {}
    for record in records:
        net: defaultdict[str, Decimal] = defaultdict(Decimal)
        legs: defaultdict[str, Decimal] = defaultdict(Decimal)
        for cid, by_id in orders.items():
            if cid.startswith(record.sequence_id + "-"):
                for order in by_id.values():
                    net[order["symbol"]] += signed(order)
                    legs[cid] += Decimal(order["filled_qty"])
        if any(net.values()):
            one_legged[record.sequence_id] = {symbol: q for symbol, q in net.items() if q}
        one, two = f"{record.sequence_id}-a", f"{record.sequence_id}-b"
        unwound = sum((q for cid, q in legs.items() if cid.startswith(one + "-c")), Decimal(0))
        if record.failing:
            expected = (COMPENSATED, legs.get(one) == LEG_QTY and two not in legs and unwound == LEG_QTY)
        else:
            expected = (COMPLETED, legs.get(one) == LEG_QTY and legs.get(two) == LEG_QTY and not unwound)
        if record.status != expected[0] or not expected[1]:
            status = record.error or executor_pb2.SequenceStatus.Name(record.status)
            wrong_outcome[record.sequence_id] = f"{status} legs={dict(legs)} kill={record.phase or '-'}"
    state = await venue.admin.state()
    usdm = state["accounts"]["main"]["usdm"]

    kills = [r for r in records if r.killed]
    phases = Counter(r.phase for r in kills)
    restarts = [r.restart_s for r in kills if not r.slow_markets]
    slow_restarts = [r.restart_s for r in kills if r.slow_markets]
    print(
        f"\nchaos: {len(records)} sequences ({sum(r.failing for r in records)} failing on leg two), "
        f"{driver.kills} SIGKILLs in {len(kills)} sequences "
        f"({sum(r.killed_in_recovery for r in kills)} of them killed again while recovering), "
        f"{len(orders)} client order ids at the venue, {len(requests)} order placements"
    )
    for name, count in sorted(phases.items()):
        print(f"  kill {name}: {count}")
    calm = [r.seconds for r in records if not r.killed]
    print(
        f"  SIGKILL to serving again: mean {mean(restarts):.2f} s, max {max(restarts):.2f} s "
        f"({len(restarts)} restarts); with the venue's markets {SLOW_MARKETS_MS} ms late: "
        f"mean {mean(slow_restarts):.2f} s ({len(slow_restarts)})"
    )
    print(
        f"  serving again to the sequence's outcome: mean {mean([r.outcome_s for r in kills]):.2f} s, "
        f"max {max(r.outcome_s for r in kills):.2f} s, ExecuteSequence calls after a restart: "
        f"max {max(r.tries for r in kills)}; a sequence without a kill: mean {mean(calm) * 1000:.0f} ms"
    )
    print(
        f"  leg one answered to leg two at the venue, without a kill: "
        f"{min(leg_gaps_ms)}-{max(leg_gaps_ms)} ms (median {sorted(leg_gaps_ms)[len(leg_gaps_ms) // 2]} ms)"
    )
    print(
        f"  duplicates: {len(duplicates)}, one-legged sequences: {len(one_legged)}, "
        f"wrong outcomes: {len(wrong_outcome)}; driven in {driven_s:.1f} s"
    )

    assert duplicates == {}
    assert one_legged == {}
    assert wrong_outcome == {}
    assert usdm["positions"] == {}
    assert usdm["open_orders"] == []
    assert len(records) >= 50
    assert len(kills) >= 15
    assert phases["between leg-one fill and leg-two submit"] >= 1, phases
    assert sum(n for p, n in phases.items() if p.startswith("compensation")) >= 1, phases


@pytest.mark.timeout(200)
async def test_one_client_order_id_sent_twice_concurrently_and_again_after_a_crash_is_one_venue_order(
    chaos: tuple[ExecutorProcess, Venue],
) -> None:
    executor, venue = chaos
    first = executor_pb2.PlaceOrderRequest(order=market("twice-1", "BTCUSDT", BUY, "0.002"))
    async with executor.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        # Concurrently: two PlaceOrder calls at once. A MARKET order is final at once, and the
        # paper exchange (like Binance) accepts a final order's client id again, so only the
        # executor stands between these calls and a second order.
        replies = await asyncio.gather(stub.PlaceOrder(first), stub.PlaceOrder(first))
    assert replies[0].order.exchange_order_id == replies[1].order.exchange_order_id
    placed_first = replies[0].order.exchange_order_id
    assert list((await venue.orders())["twice-1"]) == [placed_first]

    # After a crash: the same id sent twice at once, killed while the venue holds the request
    # (before it places the order, then after it placed it but before it answers), restarted,
    # and sent twice at once again (with the first id once more).
    placed = {"twice-1": placed_first}
    for cid, before_ms, after_ms in (("twice-2", 400, 0), ("twice-3", 0, 400)):
        order = executor_pb2.PlaceOrderRequest(order=market(cid, "BTCUSDT", BUY, "0.003"))
        await venue.slow_orders(before_ms, after_ms)
        known = len(venue.placements_now())
        async with executor.channel() as channel:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            in_flight = [
                asyncio.ensure_future(stub.PlaceOrder(order, timeout=CALL_TIMEOUT_S)) for _ in range(2)
            ]
            assert await wait_for_moment(venue, known, 1, "arrived", within=10.0), (
                "no order reached the venue"
            )
            if after_ms:
                assert await venue.placed(cid, within=10.0), f"{cid} was not placed"
            executor.kill()
            for call in in_flight:
                with pytest.raises(grpc.aio.AioRpcError):
                    await call
        await venue.admin.clear_faults()
        await executor.start()
        async with executor.channel() as channel:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            # twice-2 never reached the venue's book, but the killed run's request might have
            # (a real venue may act on a request whose connection dropped): the new run finds
            # its predecessor's mark and sends only once that send is decided (the venue
            # timeout + 5 s after it began), hence the long deadline.
            again = await asyncio.gather(
                *(stub.PlaceOrder(o, timeout=CALL_TIMEOUT_S) for o in (order, order, first))
            )
        assert again[0].order.exchange_order_id == again[1].order.exchange_order_id
        assert again[2].order.exchange_order_id == placed_first
        assert Decimal(again[0].order.filled_quantity) == Decimal("0.003")
        placed[cid] = again[0].order.exchange_order_id
        orders = await venue.orders()
        assert {c: list(by_id) for c, by_id in orders.items()} == {c: [p] for c, p in placed.items()}
    # the order placed before the crash was found by the restarted executor, not sent again
    placements = Counter(r["client_order_id"] for r in await venue.order_requests())
    assert placements["twice-3"] == 1
    print(
        f"\nsame client id twice: placements at the venue per id {dict(placements)} "
        f"(a request lost with the connection has no id); restarts {executor.start_seconds[1:]}"
    )
