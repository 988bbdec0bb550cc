"""The executor service in process against a real paper exchange, NATS and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from opensqt.certs import DevPki
from opensqt.exchange.settings import VenueSettings
from opensqt.grid.manager import decode_slot
from opensqt.model import InventorySlot
from opensqt.paper import PaperExchange
from opensqt.paper.sources import ManualSource
from opensqt.runtime import ServiceRuntime
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import GRID_SLOTS
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import executor_pb2, executor_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from tests.integration.paper.conftest import (
    READ_KEY,
    READ_SECRET,
    TRADE_KEY,
    TRADE_SECRET,
    Admin,
    paper_settings,
)
from tests.support.servers import Infra, running_service


def venue_settings(paper: PaperExchange, **overrides: Any) -> VenueSettings:
    """The executor's venue: the paper exchange's USD-M futures with the trade key."""
    values: dict[str, Any] = {
        "rest_url": paper.rest_url,
        "ws_url": paper.ws_url,
        "api_key": TRADE_KEY,
        "api_secret": TRADE_SECRET,
        "timeout_ms": 3000,
        **overrides,
    }
    return VenueSettings(**values)


def read_only_monitor(infra: Infra, paper: PaperExchange, symbols: tuple[str, ...] = ("BTCUSDT",)) -> Any:
    """The monitor's settings: the paper exchange's USD-M futures with the read-only key."""
    from opensqt_services.monitor.settings import MonitorSettings

    venue = venue_settings(paper, api_key=READ_KEY, api_secret=READ_SECRET)
    return infra.service_settings(MonitorSettings, venue=venue, symbols=symbols)


def grid_mm1() -> Any:
    """A market maker on BTCUSDT with 100 USDT levels: at 30000 its nearest buy rests at 29900."""
    from opensqt_services.strategy.settings import MarketMakerSettings

    return MarketMakerSettings(
        name="mm1", symbol="BTCUSDT", price_interval=Decimal(100), order_notional=Decimal(300), buy_window=3
    )


async def stored_slot(redis: Any, agent: str, symbol: str, price: str) -> InventorySlot | None:
    """The slot as the strategy stored it in Redis, or ``None``."""
    raw = await redis.hget(GRID_SLOTS.key(agent=agent, symbol=symbol), price)
    return decode_slot(raw) if raw else None


async def post_price(session: aiohttp.ClientSession, paper: PaperExchange, value: str) -> None:
    """Move the paper exchange's BTCUSDT price (its admin API)."""
    async with session.post(paper.rest_url + "/admin/price", json={"symbol": "BTCUSDT", "price": value}) as r:
        assert r.status == 200


@dataclass
class ExecutorStack:
    paper: PaperExchange
    admin: Admin
    infra: Infra
    runtime: ServiceRuntime

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.runtime.grpc.port}"

    def channel(self, identity: str = "strategy") -> grpc.aio.Channel:
        pki: DevPki = self.infra.pki
        return secure_channel(self.target, TlsFiles(pki.ca, pki.cert(identity), pki.key(identity)))

    async def venue_orders(self, client_order_id: str | None = None) -> dict[str, list[str]]:
        """Exchange order ids per client order id, from the paper exchange's order log (one entry
        per change of an order, so distinct exchange ids count the orders)."""
        orders: dict[str, list[str]] = {}
        for entry in await self.admin.orders():
            order = entry["order"]
            ids = orders.setdefault(order["client_order_id"], [])
            if order["exchange_order_id"] not in ids:
                ids.append(order["exchange_order_id"])
        if client_order_id is not None:
            return {client_order_id: orders.get(client_order_id, [])}
        return orders

    async def open_orders(self) -> list[dict[str, Any]]:
        """Orders whose latest state in the paper exchange's log is still working."""
        latest: dict[str, dict[str, Any]] = {}
        for entry in await self.admin.orders():
            latest[entry["order"]["exchange_order_id"]] = entry["order"]
        return [o for o in latest.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]


async def wait_for_markets(target: str, pki: DevPki, within: float = 15.0) -> None:
    """Until the executor has loaded the venue's instruments."""
    deadline = asyncio.get_running_loop().time() + within
    tls = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    async with secure_channel(target, tls) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        while True:
            try:
                reply = await stub.ListInstruments(executor_pb2.ListInstrumentsRequest())
                if reply.instruments:
                    return
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the executor did not load the paper exchange's markets")
            await asyncio.sleep(0.05)


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[PaperExchange]:
    """A paper exchange with a manual market (BTCUSDT at 30000, ETHUSDT at 2000)."""
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), source=ManualSource())
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
async def stack(paper: PaperExchange, infra: Infra) -> AsyncIterator[ExecutorStack]:
    settings = infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
    async with (
        aiohttp.ClientSession() as session,
        running_service(run_executor, settings) as runtime,
    ):
        await wait_for_markets(f"127.0.0.1:{runtime.grpc.port}", infra.pki)
        yield ExecutorStack(paper, Admin(paper.rest_url, session), infra, runtime)
