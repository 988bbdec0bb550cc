"""Strategy: the trading agents. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor

from opensqt.engine.gateway import ExecutorGateway
from opensqt.engine.live import MarketMakerAgent
from opensqt.engine.service import AgentRegistry, StrategyServicer
from opensqt.grid.manager import RedisSlotStore, SlotManager
from opensqt.grid.strategy import Strategy
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging, get_logger
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.subjects import ORDER, PRICE, RISK_STATE
from opensqt.v1 import strategy_pb2_grpc

from .settings import StrategySettings

log = get_logger("opensqt.strategy")


async def start_market_makers(
    settings: StrategySettings, runtime: ServiceRuntime, registry: AgentRegistry, gateway: ExecutorGateway
) -> None:
    """Fetch the instruments from the executor (retrying), then start every market maker."""
    symbols = sorted({m.symbol for m in settings.market_makers})
    delay = 0.2
    while True:
        try:
            instruments = await gateway.instruments(symbols)
            break
        except Exception as exc:  # the executor may still be loading its markets
            log.warning("instruments_unavailable", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    for mm in settings.market_makers:
        instrument = instruments[mm.symbol]
        config = mm.grid_config()
        codec = Strategy(config, instrument).codec
        slots = SlotManager(
            RedisSlotStore(runtime.redis, agent=mm.name, symbol=mm.symbol),
            codec=codec,
            venue=settings.market_venue,
        )
        agent = MarketMakerAgent(
            config=config,
            instrument=instrument,
            slots=slots,
            gateway=gateway,
            clock=runtime.clock,
            trading_state=registry,
            metrics=runtime.metrics,
            account=settings.account,
            tracer_provider=runtime.tracer_provider,
        )
        await agent.start()
        registry.add(agent)
        await runtime.bus.subscribe(
            ORDER,
            ORDER.subject(account=settings.account, symbol=mm.symbol),
            agent.on_order_update,
            durable=f"strategy-{mm.name}-{mm.symbol}",
        )
        await runtime.bus.subscribe(
            PRICE, PRICE.subject(venue=settings.market_venue, symbol=mm.symbol), agent.on_price
        )
        runtime.spawn(agent.run(), f"agent-{mm.name}")
        log.info("agent_started", agent=mm.name, symbol=mm.symbol, slots=len(slots.slots))


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
        if settings.market_makers:
            channel = secure_channel(
                settings.executor_address,
                runtime.tls,
                deadline_seconds=settings.grpc.client_deadline_seconds,
                tracer_provider=runtime.tracer_provider,
            )
            runtime.on_stop(channel.close)
            runtime.spawn(
                start_market_makers(settings, runtime, registry, ExecutorGateway(channel)), "start-agents"
            )
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
