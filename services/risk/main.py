"""Risk: the trading state and the power to halt. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.eventloop import run_event_loop
from opensqt.execution.registry import ExecutorRegistry
from opensqt.risk.crash import CrashDetector
from opensqt.risk.fanout import ExecutorFanout
from opensqt.risk.liquidation import LiquidationGuard
from opensqt.risk.monitor import RiskMonitor
from opensqt.risk.service import RiskServicer, TradingStateController
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.subjects import AGENT_ALERT, CANDLE, POSITION
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
        fanout = ExecutorFanout(
            ExecutorRegistry(runtime.redis, runtime.clock),
            runtime.tls,
            deadline_seconds=settings.push_deadline_seconds,
            max_age_ms=settings.executor_max_age_ms,
        )
        runtime.on_stop(fanout.close)
        controller = TradingStateController(
            runtime.redis, runtime.bus, runtime.clock, runtime.metrics, fanout
        )
        await controller.reassert()
        monitor = RiskMonitor(
            controller,
            CrashDetector(settings.crash.config()),
            LiquidationGuard(settings.liquidation()),
            auto_recover=settings.crash.auto_recover,
            metrics=runtime.metrics,
        )
        # One subscription for every symbol: candles must reach the detector in publication order
        # ("all" mode compares symbols minute by minute); it ignores symbols it does not monitor.
        candles = CANDLE.pattern(venue=settings.crash.venue, interval=settings.crash.interval)
        await runtime.bus.subscribe(CANDLE, candles, monitor.on_candle)
        await runtime.bus.subscribe(
            POSITION, POSITION.pattern(), monitor.on_position, durable="risk-positions"
        )
        # the agents' own alerts (reduce-only after a drift, a liquidation exit) join risk's
        await runtime.bus.subscribe(
            AGENT_ALERT, AGENT_ALERT.pattern(), monitor.on_agent_alert, durable="risk-agent-alerts"
        )
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
    run_event_loop(run(settings), settings.event_loop)


if __name__ == "__main__":
    main()
