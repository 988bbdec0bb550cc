"""SIGKILL the strategy in the middle of an arbitrage entry and restart it: it resolves the cut
plan's orders by client id, counts each fill once, and leaves the legs hedged or flat.

The paper exchange, nats-server, redis-server, both executors and both monitors run in this event
loop (as in ``test_arbitrage_live``); the strategy service is a separate process, so it can be
killed for real. The entry's spot leg fills; the perp hedge's order request is held at the venue
(latency fault) and the strategy is killed while it waits for the answer. The executor's workflow
goes on without it:

* the hedge fills while the strategy is down: after the restart the legs are hedged, nothing is
  sent twice, and the position is kept;
* the hedge is rejected: after the restart the spot leg is unhedged, so it is closed with a fresh
  sequence id (the cut plan's perp order is never placed).

Judged from the paper exchange: every client order id is at most one exchange order, the legs in
Redis equal the venue's spot balance and perp position, and the position ends delta-neutral.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from opensqt.devstack import free_port
from opensqt.local import wait_serving
from opensqt.paper import PaperExchange
from opensqt.paper.sources import ManualSource
from opensqt.transport.redis_keys import ARBITRAGE_PLAN
from tests.integration.paper.conftest import Admin, paper_settings
from tests.integration.test_arbitrage_live import (
    AGENT,
    ENTRY_HELD,
    ENTRY_QTY,
    EXIT_SELL,
    HIGH_RATE,
    PERP_VENUE,
    SPOT_VENUE,
    SYMBOL,
    Stack,
    start_venue_services,
)
from tests.support.servers import Infra
from tests.support.waiting import until

pytestmark = pytest.mark.integration

PERP_ORDER_PATH = "/fapi/v1/order"
HOLD_MS = 2000  # the hedge's order request is held this long at the venue: below the venue client's
# 3 s timeout (a timeout makes the executor look the order up and send it again) and the gRPC deadline

# The bot's dust_qty: legs this close count as hedged (a spot buy's commission in BTC leaves
# dust below the spot's minimum notional, and a re-entry adds to it)
DUST = Decimal("0.0001")


class StrategyProcess:
    """The strategy service as a child process (JSON logs appended to one file)."""

    def __init__(self, infra: Infra, executors: dict[str, str], log_file: Path) -> None:
        self._infra = infra
        self._executors = executors
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self, api_port: int, probe_port: int) -> dict[str, str]:
        env = dict(os.environ)
        bot = {"name": AGENT, "symbol": SYMBOL, "order_base_qty": str(ENTRY_QTY)}
        env.update(
            {
                "OPENSQT_NATS__URL": self._infra.nats.url,
                "OPENSQT_REDIS__URL": self._infra.redis.url,
                "OPENSQT_TLS__CERT_DIR": str(self._infra.pki.directory),
                "OPENSQT_GRPC__PORT": str(api_port),
                "OPENSQT_GRPC__PROBE_PORT": str(probe_port),
                "OPENSQT_GRPC__GRACE_SECONDS": "0.5",
                "OPENSQT_TELEMETRY__LOG_FORMAT": "json",
                "OPENSQT_MARKET_VENUE": PERP_VENUE,
                "OPENSQT_EXECUTOR_ADDRESS": self._executors[PERP_VENUE],
                "OPENSQT_SPOT_MARKET_VENUE": SPOT_VENUE,
                "OPENSQT_SPOT_EXECUTOR_ADDRESS": self._executors[SPOT_VENUE],
                "OPENSQT_MARKET_MAKERS": "[]",
                "OPENSQT_ARBITRAGE_BOTS": json.dumps([bot]),
            }
        )
        return env

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        api_port, probe_port = free_port(), free_port()
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "opensqt_services.strategy"],
                env=self._env(api_port, probe_port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_serving(probe_port, 30.0, self.proc)

    async def kill(self) -> int:
        """SIGKILL: no shutdown, no drain, no cleanup."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(self.proc.wait)

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The strategy's log events called ``name`` (every run so far)."""
        found = []
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == name:
                    found.append(event)
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Rig:
    stack: Stack
    strategy: StrategyProcess

    async def plan_record(self) -> dict[str, str]:
        client = aioredis.from_url(self.stack.infra.redis.url)
        try:
            raw = await client.hgetall(ARBITRAGE_PLAN.key(agent=AGENT))
        finally:
            await client.aclose()
        return {_text(name): _text(value) for name, value in raw.items()}

    async def ours(self) -> dict[str, list[dict[str, Any]]]:
        orders = await self.stack.orders_by_client_id()
        return {cid: found for cid, found in orders.items() if cid.startswith(f"{AGENT}-")}


@pytest.fixture
async def rig(tmp_path: Path, infra: Infra) -> AsyncIterator[Rig]:
    paper = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), source=ManualSource())
    await paper.start()
    strategy: StrategyProcess | None = None
    try:
        async with contextlib.AsyncExitStack() as services, aiohttp.ClientSession() as session:
            executors = await start_venue_services(services, paper, infra)
            strategy = StrategyProcess(infra, executors, tmp_path / "strategy.log")
            await strategy.start()
            try:
                yield Rig(Stack(paper, Admin(paper.rest_url, session), infra, ""), strategy)
            finally:
                await strategy.stop()
    finally:
        await paper.stop()


async def kill_between_the_spot_fill_and_the_hedges_answer(rig: Rig, *, reject_hedge: bool) -> str:
    """Enter; SIGKILL the strategy while the perp hedge's request is held at the venue. Returns
    the cut plan's workflow id."""
    stack = rig.stack
    faults: list[dict[str, Any]] = [
        {"kind": "latency", "path": PERP_ORDER_PATH, "method": "POST", "ms": HOLD_MS, "times": 1}
    ]
    if reject_hedge:
        faults.append({"kind": "reject", "path": PERP_ORDER_PATH, "method": "POST", "times": 1,
                       "code": -2019, "msg": "Margin is insufficient."})  # fmt: skip
    await stack.admin.request("POST", "/admin/faults", faults)
    await stack.admin.request("POST", "/admin/funding-rate", {"symbol": SYMBOL, "rate": str(HIGH_RATE)})

    async def hedge_in_flight() -> str:
        await stack.price("30000.0")
        record = await rig.plan_record()
        hedge = [json.loads(v) for k, v in record.items() if k.startswith("step:") and '"kind":"ep"' in v]
        if hedge and await stack.spot_balance() == ENTRY_HELD:
            return record["workflow"]
        return ""

    workflow: str = await until(hedge_in_flight, "the spot fill and the hedge's request in flight")
    assert await rig.strategy.kill() == -signal.SIGKILL
    assert await stack.perp_position() == 0  # the hedge's answer was never received
    return workflow


async def settled(rig: Rig) -> tuple[Decimal, Decimal]:
    """Wait until the plan record is gone, the legs equal the venue, the venue is delta-neutral
    (up to the bot's dust: the commission a spot buy paid in BTC leaves some) and no
    order came for a second; returns (spot balance, perp position)."""
    stack = rig.stack
    last: tuple[Any, ...] = ()

    async def quiet() -> tuple[Decimal, Decimal] | None:
        nonlocal last
        await stack.price("30000.0")  # the agent acts on prices; keep both legs' prices fresh
        venue = (await stack.spot_balance(), await stack.perp_position())
        now = (venue, await stack.leg_sizes(), await rig.plan_record(), sorted(await rig.ours()))
        steady, last = now == last, now
        if steady and not now[2] and now[1] == venue and abs(venue[0] + venue[1]) < DUST:
            return venue
        await asyncio.sleep(0.8)
        return None

    result: tuple[Decimal, Decimal] = await until(quiet, "hedged or flat legs matching the venue", 45.0)
    return result


def steps_of(ours: dict[str, list[dict[str, Any]]], workflow: str) -> dict[str, dict[str, Any]]:
    return {cid.rsplit("-", 1)[1]: found[0] for cid, found in ours.items() if cid.startswith(f"{workflow}-")}


@pytest.mark.parametrize("restart", ["while_held", "after_the_fill"])
async def test_a_hedge_filled_while_the_strategy_was_killed_is_counted_once_and_kept(
    rig: Rig, restart: str
) -> None:
    workflow = await kill_between_the_spot_fill_and_the_hedges_answer(rig, reject_hedge=False)
    if restart == "after_the_fill":
        await until(lambda: _equals(rig.stack.perp_position(), -ENTRY_QTY), "the hedge filled at the venue")
    await rig.strategy.start()

    assert await settled(rig) == (ENTRY_HELD, -ENTRY_QTY)
    ours = await rig.ours()
    assert all(len(found) == 1 for found in ours.values()), ours
    cut = steps_of(ours, workflow)
    assert sorted(ours) == [f"{workflow}-ep0", f"{workflow}-es0"]  # hedged: nothing else sent
    assert (cut["ep0"]["side"], Decimal(cut["ep0"]["filled_qty"]), cut["ep0"]["status"]) == (
        "SELL",
        ENTRY_QTY,
        "FILLED",
    )
    recovered = {event["client_order_id"] for event in rig.strategy.events("plan_step_recovered")}
    assert recovered == {f"{workflow}-es0", f"{workflow}-ep0"}
    assert len(rig.strategy.events("plan_recovered")) == 1
    # held: the venue had no such order yet, so the restart sent it again and joined the
    # executor's workflow; filled: the look-up found it final and nothing was sent
    hedge_sends = [
        e for e in rig.strategy.events("step_sending") if e["client_order_id"] == f"{workflow}-ep0"
    ]
    assert len(hedge_sends) == (2 if restart == "while_held" else 1)


async def _equals(value: Awaitable[Decimal], expected: Decimal) -> bool:
    return await value == expected


async def test_a_hedge_rejected_while_the_strategy_was_killed_leaves_no_one_legged_position(
    rig: Rig,
) -> None:
    workflow = await kill_between_the_spot_fill_and_the_hedges_answer(rig, reject_hedge=True)
    await rig.strategy.start()

    spot, perp = await settled(rig)
    assert abs(spot + perp) < DUST  # hedged again or flat, never one-legged
    ours = await rig.ours()
    assert all(len(found) == 1 for found in ours.values()), ours
    cut = steps_of(ours, workflow)
    assert sorted(cut) == ["es0"]  # the rejected hedge was never placed, not even by the resend
    closes = [found[0] for cid, found in ours.items() if cid.endswith("-xs0")]
    assert len(closes) == 1, sorted(ours)
    close = closes[0]
    assert not close["client_order_id"].startswith(f"{workflow}-")  # a fresh sequence
    assert (close["side"], Decimal(close["filled_qty"]), close["status"]) == ("SELL", EXIT_SELL, "FILLED")
    decisions = [
        event for event in rig.strategy.events("arbitrage_decision") if event.get("action") == "EXIT"
    ]
    assert any("legs unhedged after a restart" in event["reason"] for event in decisions), decisions
