"""Monitor: exchange feeds in, NATS events out. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.monitors.cache import MarketCache
from opensqt.monitors.service import MonitorServicer
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.v1 import monitor_pb2_grpc

from .settings import MonitorSettings


async def run(
    settings: MonitorSettings,
    *,
    stop: asyncio.Event | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    started: asyncio.Future[ServiceRuntime] | None = None,
) -> None:
    async with ServiceRuntime(settings, span_processors=span_processors) as runtime:
        cache = MarketCache(default_venue=settings.venue.name)
        servicer = MonitorServicer(cache, runtime.clock)
        await runtime.serve(
            [
                ServiceBinding(
                    "opensqt.v1.MonitorService",
                    lambda server: monitor_pb2_grpc.add_MonitorServiceServicer_to_server(servicer, server),
                )
            ]
        )
        if started is not None:
            started.set_result(runtime)
        await runtime.wait(stop)


def main() -> None:
    settings = MonitorSettings()
    configure_logging(settings.telemetry.log_format, settings.telemetry.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
