"""No lost fill: an order that fills while the monitor is down still reaches the strategy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from opensqt.grid.manager import decode_slot
from opensqt.model import PositionStatus
from opensqt.paper import PaperExchange
from opensqt.transport.redis_keys import GRID_SLOTS
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.monitor.settings import MonitorSettings
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import MarketMakerSettings, StrategySettings
from tests.integration.execution.conftest import venue_settings, wait_for_markets
from tests.support.servers import Infra, running_service

pytestmark = pytest.mark.integration


async def until(check: Callable[[], Awaitable[Any]], what: str, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return value


async def test_a_fill_while_the_monitor_is_down_reaches_the_strategy_after_it_restarts(
    paper: PaperExchange, infra: Infra
) -> None:
    monitor_settings = infra.service_settings(
        MonitorSettings,
        venue=venue_settings(
            paper, api_key=SecretStr("paper-main-read-key"), api_secret=SecretStr("paper-main-read-secret")
        ),
        symbols=("BTCUSDT",),
    )
    grid = MarketMakerSettings(
        name="mm1", symbol="BTCUSDT", price_interval=Decimal(100), order_notional=Decimal(300), buy_window=3
    )
    redis = aioredis.from_url(infra.redis.url)

    async def slot_29900() -> Any:
        raw = await redis.hget(GRID_SLOTS.key(agent="mm1", symbol="BTCUSDT"), "29900")
        return decode_slot(raw) if raw else None

    async with (
        aiohttp.ClientSession() as session,
        running_service(
            run_executor, infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
        ) as executor,
    ):

        async def price(value: str) -> None:
            async with session.post(
                paper.rest_url + "/admin/price", json={"symbol": "BTCUSDT", "price": value}
            ) as r:
                assert r.status == 200

        await wait_for_markets(f"127.0.0.1:{executor.grpc.port}", infra.pki)
        strategy_settings = infra.service_settings(
            StrategySettings, executor_address=f"127.0.0.1:{executor.grpc.port}", market_makers=(grid,)
        )
        async with running_service(run_strategy, strategy_settings):
            async with running_service(run_monitor, monitor_settings):

                async def buy_working() -> Any:
                    slot = await slot_29900()
                    if slot is None or not slot.exchange_order_id:
                        await price("30000.0")
                        return None
                    return slot

                await until(buy_working, "the grid buy at 29900")
            # the monitor is down: the buy fills at the venue, and nobody is told
            await price("29850.0")
            await asyncio.sleep(0.5)
            stale = await slot_29900()
            assert stale is not None
            assert stale.position_status is PositionStatus.EMPTY
            # the monitor comes back: its resync publishes the filled order
            async with running_service(run_monitor, monitor_settings):

                async def filled() -> Any:
                    slot = await slot_29900()
                    return slot if slot and slot.position_status is PositionStatus.FILLED else None

                slot = await until(filled, "the fill to reach the strategy")
                assert slot.position_qty == Decimal("0.010")

                async def take_profit() -> Any:
                    await price("29850.0")  # a new price lets the agent place the close
                    current = await slot_29900()
                    return current if current and current.client_order_id.endswith("-S-1") else None

                closing = await until(take_profit, "the take-profit sell")
                assert closing.order_price == Decimal("30000.0")
    await redis.aclose()
