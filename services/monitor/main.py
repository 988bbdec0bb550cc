"""Monitor: exchange feeds in, NATS events out. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.eventloop import run_event_loop
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.monitors.cache import MarketCache
from opensqt.monitors.feeds import FeedRunner
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
        exchange: CcxtExchange | None = None
        if settings.symbols:
            exchange = CcxtExchange(settings.venue.ccxt_config())
            runtime.on_stop(exchange.close)
            feeds = FeedRunner(
                exchange,
                runtime.bus,
                cache,
                runtime.clock,
                account=settings.account,
                symbols=settings.symbols,
                candle_interval=settings.candle_interval,
                position_poll_seconds=settings.position_poll_seconds,
                quiet_resync_seconds=settings.order_quiet_resync_seconds,
                idle_resync_seconds=settings.order_idle_resync_seconds,
                funding_refresh_seconds=settings.funding_refresh_seconds,
                metrics=runtime.metrics,
                price_feed=settings.price_feed,
            )
            for name, factory in feeds.tasks():
                runtime.spawn(factory(), name)
        servicer = MonitorServicer(cache, runtime.clock, exchange)
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
    run_event_loop(run(settings), settings.event_loop)


if __name__ == "__main__":
    main()
