"""Risk: the trading state and the power to halt. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.risk.service import RiskServicer, TradingStateController
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.v1 import risk_pb2_grpc

from .settings import RiskSettings


async def run(
    settings: RiskSettings,
    *,
    stop: asyncio.Event | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    started: asyncio.Future[ServiceRuntime] | None = None,
) -> None:
    async with ServiceRuntime(settings, span_processors=span_processors) as runtime:
        controller = TradingStateController(runtime.redis, runtime.bus, runtime.clock, runtime.metrics)
        servicer = RiskServicer(controller)
        await runtime.serve(
            [
                ServiceBinding(
                    "opensqt.v1.RiskService",
                    lambda server: risk_pb2_grpc.add_RiskServiceServicer_to_server(servicer, server),
                )
            ]
        )
        if started is not None:
            started.set_result(runtime)
        await runtime.wait(stop)


def main() -> None:
    settings = RiskSettings()
    configure_logging(settings.telemetry.log_format, settings.telemetry.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
