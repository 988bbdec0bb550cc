"""Strategy: the trading agents. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.engine.service import AgentRegistry, StrategyServicer
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.subjects import RISK_STATE
from opensqt.v1 import strategy_pb2_grpc

from .settings import StrategySettings


async def run(
    settings: StrategySettings,
    *,
    stop: asyncio.Event | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    started: asyncio.Future[ServiceRuntime] | None = None,
) -> None:
    async with ServiceRuntime(settings, span_processors=span_processors) as runtime:
        registry = AgentRegistry()
        await runtime.bus.subscribe(RISK_STATE, RISK_STATE.subject(), registry.on_trading_state)
        servicer = StrategyServicer(registry)
        await runtime.serve(
            [
                ServiceBinding(
                    "opensqt.v1.StrategyService",
                    lambda server: strategy_pb2_grpc.add_StrategyServiceServicer_to_server(servicer, server),
                )
            ]
        )
        if started is not None:
            started.set_result(runtime)
        await runtime.wait(stop)


def main() -> None:
    settings = StrategySettings()
    configure_logging(settings.telemetry.log_format, settings.telemetry.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
