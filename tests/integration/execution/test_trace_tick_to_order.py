"""One trace links a price tick to the order acknowledgement across monitor, strategy and executor."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opensqt.paper import PaperExchange
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import MarketMakerSettings, StrategySettings
from tests.integration.execution.conftest import read_only_monitor, venue_settings, wait_for_markets
from tests.support.servers import Infra, running_service

pytestmark = pytest.mark.integration


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_one_trace_follows_a_tick_from_the_monitor_through_strategy_to_the_executors_answer(
    paper: PaperExchange, infra: Infra
) -> None:
    exported = {name: InMemorySpanExporter() for name in ("monitor", "strategy", "executor")}

    def tracing(name: str) -> list[SimpleSpanProcessor]:
        return [SimpleSpanProcessor(exported[name])]

    executor_settings = infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
    monitor_settings = read_only_monitor(infra, paper)
    grid = MarketMakerSettings(
        name="mm1", symbol="BTCUSDT", price_interval=Decimal(100), order_notional=Decimal(300)
    )
    async with running_service(
        run_executor, executor_settings, span_processors=tracing("executor")
    ) as executor:
        await wait_for_markets(f"127.0.0.1:{executor.grpc.port}", infra.pki)
        strategy_settings = infra.service_settings(
            StrategySettings, executor_address=f"127.0.0.1:{executor.grpc.port}", market_makers=(grid,)
        )
        async with (
            running_service(run_monitor, monitor_settings, span_processors=tracing("monitor")),
            running_service(run_strategy, strategy_settings, span_processors=tracing("strategy")),
            aiohttp.ClientSession() as session,
        ):
            deadline = time.monotonic() + 20
            while not spans(exported["executor"], "opensqt.v1.ExecutorService/PlaceOrder"):
                assert time.monotonic() < deadline, "no order was placed"
                async with session.post(
                    paper.rest_url + "/admin/price", json={"symbol": "BTCUSDT", "price": "30000.0"}
                ) as response:
                    assert response.status == 200
                await asyncio.sleep(0.2)
    placed = spans(exported["executor"], "opensqt.v1.ExecutorService/PlaceOrder")[0]
    trace_id = placed.context.trace_id
    assert placed.attributes is not None
    assert placed.attributes["enduser.id"] == "strategy"
    published = [s for s in spans(exported["monitor"], "publish price") if s.context.trace_id == trace_id]
    received = [s for s in spans(exported["strategy"], "receive price") if s.context.trace_id == trace_id]
    evaluated = [s for s in spans(exported["strategy"], "evaluate grid") if s.context.trace_id == trace_id]
    called = [
        s
        for s in spans(exported["strategy"], "opensqt.v1.ExecutorService/PlaceOrder")
        if s.context.trace_id == trace_id
    ]
    assert len(published) == 1, "the tick that led to the order was published by the monitor in this trace"
    assert received
    assert evaluated
    assert called
    # parentage: the executor's server span is a child of the strategy's client call
    assert placed.parent is not None
    assert placed.parent.span_id == called[0].context.span_id
