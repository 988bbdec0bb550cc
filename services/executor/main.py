"""Executor: every order out. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js.api import DeliverPolicy
from opentelemetry.sdk.trace import SpanProcessor

from opensqt.errors import OpenSQTError
from opensqt.eventloop import run_event_loop
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.execution import durable, workflows
from opensqt.execution.gate import TradingStateGate
from opensqt.execution.marks import RedisSubmitMarks
from opensqt.execution.order_executor import RESTAMP_AFTER_S, OrderExecutor
from opensqt.execution.rate_budget import MeteredBudget, RateBudgetSettings, RedisRateBudget
from opensqt.execution.registry import ExecutorEntry, ExecutorRegistry
from opensqt.execution.service import ExecutorServicer
from opensqt.model import Instrument
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging, get_logger
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.redis_store import TradingStateStore
from opensqt.transport.subjects import RISK_STATE
from opensqt.v1 import executor_pb2_grpc

from .settings import ExecutorSettings

log = get_logger("opensqt.executor")


async def load_markets(exchange: CcxtExchange, instruments: dict[str, Instrument]) -> None:
    """Load the venue's instruments, retrying until it answers (order RPCs wait for this)."""
    delay = 0.2
    while True:
        try:
            instruments.update(await exchange.load_markets())
            log.info("markets_loaded", venue=exchange.venue, instruments=len(instruments))
            return
        except OpenSQTError as exc:
            log.warning("markets_unavailable", venue=exchange.venue, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def run(
    settings: ExecutorSettings,
    *,
    stop: asyncio.Event | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    started: asyncio.Future[ServiceRuntime] | None = None,
) -> None:
    async with ServiceRuntime(settings, span_processors=span_processors) as runtime:
        venue = settings.venue.name
        # Durable first: an executor that was down during a halt starts halted.
        states = TradingStateStore(runtime.redis)
        gate = TradingStateGate(await states.get())
        exchange = CcxtExchange(settings.venue.ccxt_config())
        runtime.on_stop(exchange.close)
        budget = MeteredBudget(
            RedisRateBudget(
                runtime.redis,
                venue=venue,
                account=settings.account,
                settings=RateBudgetSettings(settings.rate_per_second, settings.rate_burst),
            ),
            runtime.metrics.rate_limit_wait,
        )
        # A send older than the venue timeout (and a margin) was decided by the venue: another
        # process's mark is stale by then, and an order of our own not found by then never will be.
        decided_after_ms = settings.venue.timeout_ms + 5_000
        executor = OrderExecutor(
            exchange,
            budget,
            gate,
            RedisSubmitMarks(
                runtime.redis,
                venue=venue,
                account=settings.account,
                owner=settings.executor_id,
                # staleness counts from the stamp, which may precede the send by up to
                # RESTAMP_AFTER_S: the same horizon, measured from the earliest it can start
                stale_after_ms=decided_after_ms + int(RESTAMP_AFTER_S * 1000),
            ),
            post_only_fallback=settings.post_only_fallback,
            tracer=runtime.tracer_provider.get_tracer("opensqt.execution"),
            decided_after_s=decided_after_ms / 1000,
            on_undecided_wait=runtime.metrics.undecided_waits.inc,
        )
        # The workflows' instruments, and the servicer's (filled only once DBOS runs: until then
        # order RPCs answer UNAVAILABLE and start no workflow).
        instruments: dict[str, Instrument] = {}
        offered: dict[str, Instrument] = {}
        workflows.register(
            workflows.ExecutionContext(settings.executor_id, venue, settings.account, executor, instruments)
        )
        dbos_config = durable.dbos_config(
            executor_id=settings.executor_id,
            system_database_url=settings.dbos.url(settings.executor_id),
            sqlite_synchronous=settings.dbos.sqlite_synchronous,
        )
        joined = False

        async def open_for_orders() -> None:
            # Markets first, then DBOS: launch recovers pending workflows, and a recovered one
            # needs the instruments (to size a leg from an earlier one, to unwind a filled leg)
            # and the adapter's markets (to look up what it may have sent before the crash).
            nonlocal joined
            await load_markets(exchange, instruments)
            durable.acquire(dbos_config, background_sweep_s=settings.dbos.background_sweep_seconds)
            joined = True
            offered.update(instruments)
            runtime.settle_heap()  # the markets and DBOS are loaded: they stay

        async def leave_dbos() -> None:
            if joined:
                # workflows whose callers were cancelled (a stop callback gets 5 s in all)
                await servicer.drain(within=3.0)
                durable.release()
            workflows.unregister(settings.executor_id)

        runtime.on_stop(leave_dbos)
        servicer = ExecutorServicer(
            executor_id=settings.executor_id,
            venue=venue,
            account=settings.account,
            gate=gate,
            clock=runtime.clock,
            metrics=runtime.metrics,
            executor=executor,
            instruments=offered,
            bus=runtime.bus,
            journal=settings.order_journal,
            audit=runtime.redis,
        )
        runtime.spawn(open_for_orders(), "load-markets")
        await runtime.bus.subscribe(
            RISK_STATE, RISK_STATE.subject(), servicer.on_trading_state, deliver_policy=DeliverPolicy.LAST
        )
        if settings.state_check_seconds:
            runtime.spawn(
                servicer.watch_durable_state(states.get, settings.state_check_seconds), "trading-state-check"
            )
        server = await runtime.serve(
            [
                ServiceBinding(
                    "opensqt.v1.ExecutorService",
                    lambda s: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, s),
                )
            ]
        )
        registry = ExecutorRegistry(runtime.redis, runtime.clock)
        entry = ExecutorEntry(
            executor_id=settings.executor_id,
            address=settings.advertise_address or f"{settings.grpc.host}:{server.port}",
            venue=venue,
            account=settings.account,
            heartbeat_ms=0,
        )
        await registry.heartbeat(entry)
        runtime.spawn(registry.run(entry, settings.heartbeat_seconds), "registry-heartbeat")

        async def deregister() -> None:
            await registry.remove(settings.executor_id)

        runtime.on_stop(deregister)
        if started is not None:
            started.set_result(runtime)
        await runtime.wait(stop)


def main() -> None:
    settings = ExecutorSettings()
    configure_logging(settings.telemetry.log_format, settings.telemetry.log_level)
    run_event_loop(run(settings), settings.event_loop)


if __name__ == "__main__":
    main()
