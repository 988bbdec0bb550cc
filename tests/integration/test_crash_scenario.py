"""Crash detection through the venue: real Binance 1m candles from ../shared/data replayed by the
paper exchange, streamed by the monitor, scored by risk, enforced by every executor.

* LUNA (2022-05-09, BTC + ETH perpetuals, trigger mode ``all``): the detector trips at the
  17:06 candle; every executor moves to REDUCING; the grid's working buys are cancelled; the
  venue accepts no buy after that until an operator's Resume, and buys resume after it.
* The calm week (2023-08-10..16, 10,080 candles per symbol): the same path never trips.

Everything is a process or a real server: nats-server, redis-server, the paper exchange (CSV
replay), the four services with mTLS. Evidence comes from the venue's order log and the
executors' own status, not from what the services report about themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.shared_data import require_shared_file
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

REDUCING = events_pb2.TRADING_STATE_KIND_REDUCING
ACTIVE = events_pb2.TRADING_STATE_KIND_ACTIVE
# Room for every close the fall creates (about 9 levels of 200) plus the buy window, so buys are
# still working when the detector trips (a grid whose budget is all closes has none to cancel).
GRID = {"name": "mm1", "symbol": "BTCUSDT", "price_interval": "200", "order_notional": "300",
        "buy_window": "3", "sell_window": "3", "max_open_orders": "20"}  # fmt: skip


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@dataclass
class Scenario:
    constellation: LocalConstellation
    session: aiohttp.ClientSession
    operator: TlsFiles

    async def admin(self, path: str, **query: str) -> Any:
        async with self.session.get(self.constellation.paper_url + path, params=query) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def admin_post(self, path: str, **body: str) -> Any:
        async with self.session.post(self.constellation.paper_url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def order_log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.admin("/admin/orders", symbol="BTCUSDT")
        return entries

    async def executor_state(self) -> events_pb2.TradingState:
        address = f"127.0.0.1:{self.constellation.ports['executor'].api}"
        async with secure_channel(address, self.operator) as channel:
            reply = await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
                executor_pb2.GetExecutorStatusRequest()
            )
        return reply.trading_state

    async def metric(self, service: str, name: str, **labels: str) -> float:
        port = self.constellation.ports[service].metrics
        async with self.session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0


@contextlib.asynccontextmanager
async def running(trading: TradingSetup, workdir: Path, pki: DevPki) -> AsyncIterator[Scenario]:
    constellation = LocalConstellation(
        workdir=workdir,
        cert_dir=pki.directory,
        ports={name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES},
        trading=trading,
        paper_port=free_port(),
    )
    await asyncio.to_thread(constellation.start)
    try:
        async with aiohttp.ClientSession() as session:
            yield Scenario(
                constellation, session, TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
            )
    finally:
        codes = await asyncio.to_thread(constellation.stop)
        assert set(codes.values()) == {0}, codes


def _files(dates: str) -> dict[str, str]:
    return {
        symbol: str(require_shared_file(f"binance_um_{symbol.lower()}_1m_{dates}.csv"))
        for symbol in ("BTCUSDT", "ETHUSDT")
    }


def luna() -> TradingSetup:
    return TradingSetup(
        symbols=("BTCUSDT", "ETHUSDT"),
        market_makers=(GRID,),
        paper_source="csv",
        csv_files=_files("2022-05-07_2022-05-14"),
        # 136 minutes of history before the 17:06 trip (the detector needs 60), 24 after it
        replay_from="2022-05-09T14:50:00",
        replay_until="2022-05-09T17:30:00",
        replay_speed=400,  # a minute every 0.15 s
        replay_loop=False,
    )


def calm_week() -> TradingSetup:
    return TradingSetup(
        symbols=("BTCUSDT", "ETHUSDT"),
        market_makers=(),
        paper_source="csv",
        csv_files=_files("2023-08-10_2023-08-16"),
        replay_speed=60_000,  # a minute every ms: as fast as the path can carry it
        replay_loop=False,
        # from the first minute: the replay starts once the monitor watches both symbols' candles
        replay_wait_for_streams=("btcusdt@kline_1m", "ethusdt@kline_1m"),
    )


def _working_buys(log: list[dict[str, Any]]) -> set[str]:
    """Client ids of buys whose latest state in the venue's order log is still working."""
    latest = {e["order"]["client_order_id"]: e["order"] for e in log}
    return {
        cid
        for cid, order in latest.items()
        if order["side"] == "BUY" and order["status"] in ("NEW", "PARTIALLY_FILLED")
    }


def _buys_created(log: list[dict[str, Any]], after_ms: int) -> list[dict[str, Any]]:
    return [
        e
        for e in log
        if e["execution"] == "NEW" and e["order"]["side"] == "BUY" and int(e["time_ms"]) > after_ms
    ]


async def test_luna_replay_trips_risk_and_no_buy_reaches_the_venue_until_resume(
    tmp_path: Path, pki: DevPki
) -> None:
    async with running(luna(), tmp_path / "run", pki) as run:
        # the grid trades the replay: buys are working at the venue before the crash
        async def buys_working() -> bool:
            log = await run.order_log()
            return bool(_buys_created(log, 0))

        await until(buys_working, "the grid's first buys", within=60)

        # the 17:06 candle trips the detector (136 replayed minutes at 0.15 s, plus start-up)
        async def reduced() -> events_pb2.TradingState | None:
            state = await run.executor_state()
            return state if state.state == REDUCING else None

        state = await until(reduced, "the executor to move to REDUCING", within=90)
        assert state.set_by == "risk:crash-detector"
        assert "2022-05-09T17:06Z" in state.reason, state.reason
        tripped_ms = state.updated_ms

        # every working buy is cancelled (the grid cancels on REDUCING)
        async def no_open_buys() -> bool:
            return not _working_buys(await run.order_log())

        await until(no_open_buys, "the working buys to be cancelled", within=15)
        log = await run.order_log()
        cancelled = {
            e["order"]["client_order_id"]
            for e in log
            if e["execution"] == "CANCELED"
            and e["order"]["side"] == "BUY"
            and int(e["time_ms"]) >= tripped_ms
        }
        assert cancelled, "a buy was working at the trip and must have been cancelled"

        # the replay plays on to 17:30 (a falling, then rebounding market); prices keep coming
        # and the grid keeps evaluating, yet the venue receives no buy
        await asyncio.sleep(6)
        await run.admin_post("/admin/price", symbol="BTCUSDT", price="29000.0")
        await asyncio.sleep(2)
        propagation_ms = 500  # risk's change reaches the executor within this (bench: p99 < 40 ms)
        late = _buys_created(await run.order_log(), tripped_ms + propagation_ms)
        assert late == [], late
        assert (await run.executor_state()).state == REDUCING  # recovery alone does not lift it

        # an operator's Resume lifts it; the next prices bring buys back
        address = f"127.0.0.1:{run.constellation.ports['risk'].api}"
        async with secure_channel(address, run.operator) as channel:
            await risk_pb2_grpc.RiskServiceStub(channel).Resume(risk_pb2.ResumeRequest(reason="drill over"))
        resumed_ms = int(time.time() * 1000)

        async def buys_again() -> bool:
            await run.admin_post("/admin/price", symbol="BTCUSDT", price="29010.0")
            return bool(_buys_created(await run.order_log(), resumed_ms))

        await until(buys_again, "buys after the Resume", within=30)
        assert (await run.executor_state()).state == ACTIVE


@pytest.mark.timeout(400)
async def test_the_calm_week_replayed_through_the_venue_never_trips(tmp_path: Path, pki: DevPki) -> None:
    """10,080 minutes per symbol through paper -> monitor -> NATS -> risk (about a minute here).
    The replay waits for the monitor's candle subscriptions, so every minute reaches risk."""
    async with running(calm_week(), tmp_path / "run", pki) as run:
        history: list[float] = []

        async def replayed() -> bool:
            history.append(await run.metric("risk", "opensqt_risk_crash_candles", outcome="evaluated"))
            # done when the count has not moved for 3 s (the replay has ended)
            return len(history) > 30 and history[-1] > 0 and history[-1] == history[-31]

        await until(replayed, "risk to score the calm week", within=300)
        evaluated = history[-1]
        # every minute but the last of each file (the monitor closes a candle when the next opens)
        assert 0.9 * 2 * (10_080 - 1) <= evaluated <= 2 * (10_080 - 1), evaluated
        assert await run.metric("risk", "opensqt_risk_crash_candles", outcome="triggers") == 0
        assert await run.metric("risk", "opensqt_risk_crash_candles", outcome="stale_ignored") == 0
        assert (await run.executor_state()).state == ACTIVE
