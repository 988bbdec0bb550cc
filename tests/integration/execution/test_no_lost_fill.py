"""No lost fill: an order that fills while the monitor is down still reaches the strategy."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from opensqt.model import PositionStatus
from opensqt.paper import PaperExchange
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import StrategySettings
from tests.integration.execution.conftest import (
    grid_mm1,
    post_price,
    read_only_monitor,
    stored_slot,
    venue_settings,
    wait_for_markets,
)
from tests.support.servers import Infra, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration


async def test_a_fill_while_the_monitor_is_down_reaches_the_strategy_after_it_restarts(
    paper: PaperExchange, infra: Infra
) -> None:
    monitor_settings = read_only_monitor(infra, paper)
    grid = grid_mm1()
    redis = aioredis.from_url(infra.redis.url)

    async def slot_29900() -> Any:
        return await stored_slot(redis, "mm1", "BTCUSDT", "29900")

    async with (
        aiohttp.ClientSession() as session,
        running_service(
            run_executor, infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
        ) as executor,
    ):

        async def price(value: str) -> None:
            await post_price(session, paper, value)

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
