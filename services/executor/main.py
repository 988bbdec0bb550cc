"""Executor: every order out. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js.api import DeliverPolicy
from opentelemetry.sdk.trace import SpanProcessor

from opensqt.execution.gate import TradingStateGate
from opensqt.execution.service import ExecutorServicer
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.redis_store import TradingStateStore
from opensqt.transport.subjects import RISK_STATE
from opensqt.v1 import executor_pb2_grpc

from .settings import ExecutorSettings


async def run(
    settings: ExecutorSettings,
    *,
    stop: asyncio.Event | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    started: asyncio.Future[ServiceRuntime] | None = None,
) -> None:
    async with ServiceRuntime(settings, span_processors=span_processors) as runtime:
        # Durable first: an executor that was down during a halt starts halted.
        gate = TradingStateGate(await TradingStateStore(runtime.redis).get())
        servicer = ExecutorServicer(
            executor_id=settings.executor_id,
            venue=settings.venue,
            account=settings.account,
            gate=gate,
            clock=runtime.clock,
            metrics=runtime.metrics,
        )
        await runtime.bus.subscribe(
            RISK_STATE, RISK_STATE.subject(), servicer.on_trading_state, deliver_policy=DeliverPolicy.LAST
        )
        await runtime.serve(
            [
                ServiceBinding(
                    "opensqt.v1.ExecutorService",
                    lambda server: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, server),
                )
            ]
        )
        if started is not None:
            started.set_result(runtime)
        await runtime.wait(stop)


def main() -> None:
    settings = ExecutorSettings()
    configure_logging(settings.telemetry.log_format, settings.telemetry.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
