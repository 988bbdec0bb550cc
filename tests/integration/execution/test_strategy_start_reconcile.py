"""The strategy service reconciles each market maker with the venue at start, through the
executor (GetAccountSnapshot, GetOrder), before any order update reaches it; an agent whose
stored state cannot be read is reported and the others start."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis

from opensqt.model import PositionStatus
from opensqt.paper import PaperExchange
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import GRID_SLOTS
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import strategy_pb2, strategy_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import MarketMakerSettings, StrategySettings
from tests.integration.execution.conftest import (
    grid_mm1,
    post_price,
    read_only_monitor,
    stored_slot,
    venue_settings,
    wait_for_markets,
)
from tests.integration.paper.conftest import make_ccxt
from tests.support.servers import Infra, running_service
from tests.support.waiting import agents_listed, until

pytestmark = pytest.mark.integration


async def test_a_fill_while_the_strategy_was_down_is_settled_at_start_with_no_order_stream(
    paper: PaperExchange, infra: Infra
) -> None:
    # The monitor (prices, order stream) runs only while the first buy is placed; once the
    # strategy is back, nothing but its start-up reconciliation can tell it of the fill.
    monitor_settings = read_only_monitor(infra, paper)
    grid = grid_mm1()
    broken = MarketMakerSettings(
        name="mm0", symbol="ETHUSDT", price_interval=Decimal(10), order_notional=Decimal(300), buy_window=3
    )
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
        first = infra.service_settings(
            StrategySettings, executor_address=f"127.0.0.1:{executor.grpc.port}", market_makers=(grid,)
        )
        async with running_service(run_strategy, first), running_service(run_monitor, monitor_settings):

            async def buy_working() -> Any:
                slot = await slot_29900()
                if slot is None or not slot.exchange_order_id:
                    await price("30000.0")
                    return None
                return slot

            await until(buy_working, "the grid buy at 29900")
        # the strategy is down: the buy fills at the venue
        await price("29850.0")
        await asyncio.sleep(0.3)
        stale = await slot_29900()
        assert stale is not None
        assert stale.position_status is PositionStatus.EMPTY
        # another agent's stored slot is unreadable
        await redis.hset(GRID_SLOTS.key(agent="mm0", symbol="ETHUSDT"), "2000", b"{not json")
        both = infra.service_settings(
            StrategySettings,
            executor_address=f"127.0.0.1:{executor.grpc.port}",
            market_makers=(broken, grid),
        )
        async with running_service(run_strategy, both) as strategy:

            async def filled() -> Any:
                slot = await slot_29900()
                return slot if slot and slot.position_status is PositionStatus.FILLED else None

            slot = await until(filled, "the start-up reconciliation to settle the fill")
            assert slot.position_qty == Decimal("0.010")
            pki = infra.pki
            tls = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
            async with secure_channel(f"127.0.0.1:{strategy.grpc.port}", tls) as channel:
                stub = strategy_pb2_grpc.StrategyServiceStub(channel)

                agents = await agents_listed(stub, "mm0", "mm1")
                # Resume (every agent) cannot make the agent that never started look healthy
                resumed = await stub.Resume(strategy_pb2.ResumeStrategyRequest())
                after = {a.agent: a for a in resumed.agents}
                assert after["mm0"].paused
                assert after["mm0"].pause_reason == agents["mm0"].pause_reason
                assert not after["mm1"].paused
                # its slots were never loaded: asking for them is an error, not an empty grid
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.ListSlots(strategy_pb2.ListSlotsRequest(agent="mm0"))
                assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
                expected = "agent 'mm0': start failed (SlotDecodeError"
                assert expected in str(refused.value.details())
                listed = await stub.ListSlots(strategy_pb2.ListSlotsRequest(agent="mm1"))
                assert "29900.00" in {s.slot_price for s in listed.slots}
            assert agents["mm0"].paused
            assert agents["mm0"].pause_reason.startswith("start failed (SlotDecodeError")
            assert not agents["mm1"].paused
            assert agents["mm1"].reducing_reason == ""
    await redis.aclose()


async def test_a_position_changed_by_someone_else_while_trading_makes_the_grid_reduce_only(
    paper: PaperExchange, infra: Infra
) -> None:
    # The grid's own fill reaches it through the monitor's order stream: the checks agree. Then a
    # person buys on the account: two checks in a row see the venue hold more than the slots.
    grid = grid_mm1().model_copy(update={"position_check_seconds": 1.0})
    redis = aioredis.from_url(infra.redis.url)
    person = make_ccxt("binanceusdm", paper)
    async with (
        aiohttp.ClientSession() as session,
        running_service(
            run_executor, infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
        ) as executor,
    ):
        await wait_for_markets(f"127.0.0.1:{executor.grpc.port}", infra.pki)
        settings = infra.service_settings(
            StrategySettings, executor_address=f"127.0.0.1:{executor.grpc.port}", market_makers=(grid,)
        )
        async with (
            running_service(run_strategy, settings) as strategy,
            running_service(run_monitor, read_only_monitor(infra, paper)),
        ):
            tls = TlsFiles(infra.pki.ca, infra.pki.cert("operator"), infra.pki.key("operator"))
            async with secure_channel(f"127.0.0.1:{strategy.grpc.port}", tls) as channel:
                stub = strategy_pb2_grpc.StrategyServiceStub(channel)

                async def mm1() -> Any:
                    status = await stub.GetStatus(strategy_pb2.GetStrategyStatusRequest())
                    return next(a for a in status.agents if a.agent == "mm1")

                async def filled() -> Any:
                    slot = await stored_slot(redis, "mm1", "BTCUSDT", "29900")
                    if slot is None or not slot.exchange_order_id:
                        await post_price(session, paper, "30000.0")
                        return None
                    if slot.position_status is not PositionStatus.FILLED:
                        await post_price(session, paper, "29850.0")
                        return None
                    return slot

                await until(filled, "the grid's buy at 29900 to fill through the order stream")
                await asyncio.sleep(2.5)  # two checks or more with the fill counted on both sides
                assert (await mm1()).reducing_reason == ""
                await person.load_markets()
                await person.create_order("BTC/USDT:USDT", "market", "buy", 0.005)

                async def reducing() -> Any:
                    agent = await mm1()
                    return agent.reducing_reason or None

                reason = await until(reducing, "the position check to see the drift", within=15)
                assert reason.startswith("position drift while running: the venue holds 0.015")
    await person.close()
    await redis.aclose()
