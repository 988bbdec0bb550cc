"""Strategy: the trading agents. settings -> adapters -> library objects -> run."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from nats.js.api import DeliverPolicy
from opentelemetry.sdk.trace import SpanProcessor

from opensqt.arbitrage.journal import RedisPlanJournal
from opensqt.arbitrage.manager import LegManager, RedisLegStore
from opensqt.engine.arbitrage_live import ArbitrageAgent
from opensqt.engine.gateway import CandleHistory, ExecutorGateway, MonitorCandles
from opensqt.engine.live import MarketMakerAgent
from opensqt.engine.service import AgentRegistry, StrategyServicer
from opensqt.errors import OpenSQTError, Retryable
from opensqt.eventloop import run_event_loop
from opensqt.grid.client_ids import ClientOrderIdCodec
from opensqt.grid.config import GridConfig, average_true_range, starting_interval
from opensqt.grid.manager import RedisSlotStore, SlotManager, SlotStore
from opensqt.grid.strategy import Strategy
from opensqt.model import Instrument, RiskAlert
from opensqt.runtime import ServiceRuntime
from opensqt.telemetry import configure_logging, get_logger
from opensqt.transport.bus import EventBus
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.grpc_server import ServiceBinding
from opensqt.transport.subjects import AGENT_ALERT, FUNDING, ORDER, POSITION, PRICE, RISK_STATE
from opensqt.v1 import strategy_pb2_grpc

from .settings import MarketMakerSettings, StrategySettings

log = get_logger("opensqt.strategy")


async def fetch_instruments(gateway: ExecutorGateway, symbols: list[str]) -> dict[str, Instrument]:
    """The executor's instruments for ``symbols``, retrying until it has loaded its markets."""
    delay = 0.2
    while True:
        try:
            return await gateway.instruments(symbols)
        except Exception as exc:  # the executor may still be loading its markets
            log.warning("instruments_unavailable", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _not_started(agent: MarketMakerAgent | ArbitrageAgent, error: str) -> None:
    """Show an agent whose start failed as paused with the reason; Pause or Resume cannot change it."""
    agent.pause(f"start failed ({error}); not running, restart once fixed")
    agent.start_error = agent.pause_reason


#: How long a grid's start waits for the monitor's candles (it may be starting too) before it
#: starts on its configured interval.
CANDLES_WAIT_S = 60.0


async def fetch_atr(monitor: CandleHistory, mm: MarketMakerSettings) -> Decimal | None:
    """The ATR of ``mm``'s symbol from the monitor's candle history; ``None`` (logged as
    ``grid_interval_not_widened``) when the venue has too little history, the monitor refuses
    (no venue, an unknown symbol, an older monitor), or it did not answer for CANDLES_WAIT_S."""
    delay = 0.2
    waited = 0.0
    while True:
        try:
            candles = await monitor.candles(mm.symbol, mm.atr_interval, mm.atr_period + 1)
            break
        except Retryable as exc:  # unreachable or busy: it may be starting
            if waited >= CANDLES_WAIT_S:
                return _not_widened(mm, f"the monitor did not answer for {CANDLES_WAIT_S:.0f} s ({exc})")
            log.warning(
                "candles_unavailable", agent=mm.name, symbol=mm.symbol, error=str(exc), retry_in=delay
            )
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
        except OpenSQTError as exc:  # a refusal asking again will not change
            return _not_widened(mm, f"the monitor refused: {type(exc).__name__}: {exc}")
    if len(candles) < mm.atr_period + 1:
        needed = mm.atr_period + 1
        return _not_widened(
            mm, f"an ATR over {mm.atr_period} needs {needed} closed candles, got {len(candles)}"
        )
    return average_true_range([(c.high, c.low, c.close) for c in candles], mm.atr_period)


def _not_widened(mm: MarketMakerSettings, reason: str) -> Decimal | None:
    """Log why ``mm`` starts on its configured interval; no ATR (``None``)."""
    log.warning("grid_interval_not_widened", agent=mm.name, symbol=mm.symbol, interval=str(mm.price_interval),
                reason=reason)  # fmt: skip
    return None


async def grid_start_config(
    mm: MarketMakerSettings,
    instrument: Instrument,
    store: SlotStore,
    monitor: CandleHistory | None,
    venue_holds: Callable[[], Awaitable[bool]] | None = None,
) -> GridConfig:
    """``mm``'s grid config with the interval it starts on (:func:`starting_interval`), which is
    stored for the next start: the one its slots in use were laid on, else the configured one
    widened by the ATR when ``volatility_scale`` is set.

    ``venue_holds``: whether the venue holds an open order of this grid or its position. Slots
    lost from Redis are rebuilt from those at start, on the stored interval, so they count as
    slots in use.
    """
    config = mm.grid_config()
    stored = await store.get_interval()
    in_use = any(slot.has_order or slot.position_qty != 0 for slot in await store.load())
    # asked only where it can change the interval: a stored one, or one to widen
    if not in_use and venue_holds is not None and (stored is not None or mm.volatility_scale > 0):
        in_use = await venue_holds()
    atr = None
    if mm.volatility_scale > 0 and not in_use and monitor is not None:
        atr = await fetch_atr(monitor, mm)
    interval = starting_interval(
        config.price_interval,
        stored=stored,
        in_use=in_use,
        atr=atr,
        volatility_scale=mm.volatility_scale,
        tick_size=instrument.tick_size,
    )
    if interval != stored:
        await store.set_interval(interval)
    if interval != config.price_interval:
        log.info("grid_interval", agent=mm.name, configured=str(config.price_interval),
                 interval=str(interval), atr=None if atr is None else str(atr),
                 kept_for_slots_in_use=in_use)  # fmt: skip
    return replace(config, price_interval=interval)


async def _venue_holds(
    gateway: ExecutorGateway, symbol: str, codec: ClientOrderIdCodec, shared: bool
) -> bool:
    """Whether the venue holds an open order of the grid ``codec`` names, or (unless others
    trade it too) a position in ``symbol``."""
    snapshot = await gateway.account_snapshot(symbol)
    if any(codec.owns(order.client_order_id) for order in snapshot.open_orders):
        return True
    return not shared and bool(snapshot.position)


async def start_market_makers(
    settings: StrategySettings,
    runtime: ServiceRuntime,
    registry: AgentRegistry,
    gateway: ExecutorGateway,
    monitor: CandleHistory | None = None,
) -> None:
    """Fetch the instruments from the executor (retrying), then start every market maker."""
    instruments = await fetch_instruments(gateway, sorted({m.symbol for m in settings.market_makers}))
    traders = [m.symbol for m in settings.market_makers] + [b.perp for b in settings.arbitrage_bots]
    for mm in settings.market_makers:
        instrument = instruments[mm.symbol]
        store = RedisSlotStore(runtime.redis, agent=mm.name, symbol=mm.symbol)
        # another agent of this process trading the symbol makes the position not the grid's;
        # owns_position=false says so for traders this process cannot see
        position_shared = traders.count(mm.symbol) > 1 or not mm.owns_position
        codec = Strategy(mm.grid_config(), instrument).codec
        venue_holds = functools.partial(_venue_holds, gateway, mm.symbol, codec, position_shared)
        start_error: Exception | None = None
        try:
            config = await grid_start_config(mm, instrument, store, monitor, venue_holds)
        except Exception as exc:  # e.g. Redis refused: the agent shows why it did not start
            start_error, config = exc, mm.grid_config()
        slots = SlotManager(store, codec=codec, venue=settings.market_venue)
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
            account_source=gateway,
            position_shared=position_shared,
            liquidation_threshold=mm.liquidation_threshold,
            alerts=functools.partial(_publish_alert, runtime.bus, mm.name),
        )
        try:
            if start_error is not None:
                raise start_error
            await agent.start()  # reconciles with the venue before it takes prices or order updates
        except Exception as exc:  # e.g. a stored slot that cannot be read: the others still start
            log.exception("agent_start_failed", agent=mm.name, symbol=mm.symbol)
            _not_started(agent, f"{type(exc).__name__}: {exc}")
            registry.add(agent)  # shown by GetStatus, neither subscribed nor run
            continue
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
        if mm.liquidation_threshold and not agent.position_shared:  # the liquidation guard
            # new updates only: the last one stored may be hours old (its mark long gone); the
            # monitor publishes the position again whenever its mark or liquidation price moves
            await runtime.bus.subscribe(
                POSITION,
                POSITION.subject(account=settings.account, symbol=mm.symbol),
                agent.on_position,
                deliver_policy=DeliverPolicy.NEW,
            )
        runtime.spawn(agent.run(), f"agent-{mm.name}")
        if mm.position_check_seconds and not agent.position_shared:
            runtime.spawn(agent.watch_position(mm.position_check_seconds), f"position-{mm.name}")
        log.info("agent_started", agent=mm.name, symbol=mm.symbol, slots=len(slots.slots))


async def _publish_alert(bus: EventBus, agent: str, alert: RiskAlert) -> None:
    """An agent's own alert, for risk to keep with its own (JetStream: it survives a risk restart)."""
    await bus.publish(AGENT_ALERT, AGENT_ALERT.subject(agent=agent), alert, msg_id=alert.alert_id)


async def start_arbitrage_bots(
    settings: StrategySettings,
    runtime: ServiceRuntime,
    registry: AgentRegistry,
    spot_gateway: ExecutorGateway,
    perp_gateway: ExecutorGateway,
) -> None:
    """Fetch both legs' instruments from their executors, then start every arbitrage bot.

    Subscriptions: prices of both legs (core NATS), the perpetual's funding and the account's
    positions (JetStream, from the last value: snapshots, only the newest matters), and the
    account's order updates of both symbols (durable: a fill must never be lost).
    """
    bots = settings.arbitrage_bots
    spot_instruments = await fetch_instruments(spot_gateway, sorted({b.symbol for b in bots}))
    perp_instruments = await fetch_instruments(perp_gateway, sorted({b.perp for b in bots}))
    for bot in bots:
        spot, perp = spot_instruments[bot.symbol], perp_instruments[bot.perp]
        config = bot.arbitrage_config(spot, perp)
        agent = ArbitrageAgent(
            config=config,
            legs=LegManager(RedisLegStore(runtime.redis, agent=bot.name), dust=config.dust_qty),
            spot_gateway=spot_gateway,
            perp_gateway=perp_gateway,
            clock=runtime.clock,
            trading_state=registry,
            metrics=runtime.metrics,
            account=settings.account,
            tracer_provider=runtime.tracer_provider,
            journal=RedisPlanJournal(runtime.redis, agent=bot.name),
        )
        error = ""
        if (spot.venue, perp.venue) != (settings.spot_market_venue, settings.market_venue):
            error = (
                f"the executors serve venues {spot.venue} (spot) and {perp.venue} (perp), configured "
                f"{settings.spot_market_venue} and {settings.market_venue}"
            )
            log.error("arbitrage_venue_mismatch", agent=bot.name, reason=error)
        else:
            try:
                await agent.start()  # resolves a plan a killed process left behind before subscribing
            except Exception as exc:  # e.g. legs that cannot be read: the other bots still start
                log.exception("agent_start_failed", agent=bot.name, symbol=bot.symbol)
                error = f"{type(exc).__name__}: {exc}"
        if error:
            _not_started(agent, error)
            registry.add(agent)  # shown by GetStatus, neither subscribed nor run
            continue
        registry.add(agent)
        bus = runtime.bus
        for symbol in agent.symbols:
            await bus.subscribe(
                ORDER,
                ORDER.subject(account=settings.account, symbol=symbol),
                agent.on_order_update,
                durable=f"strategy-{bot.name}-{symbol}",
            )
            await bus.subscribe(
                POSITION,
                POSITION.subject(account=settings.account, symbol=symbol),
                agent.on_position,
                deliver_policy=DeliverPolicy.LAST,
            )
        await bus.subscribe(
            FUNDING,
            FUNDING.subject(venue=perp.venue, symbol=perp.symbol),
            agent.on_funding,
            deliver_policy=DeliverPolicy.LAST,
        )
        for instrument in (spot, perp):
            await bus.subscribe(
                PRICE, PRICE.subject(venue=instrument.venue, symbol=instrument.symbol), agent.on_price
            )
        runtime.spawn(agent.run(), f"agent-{bot.name}")
        log.info("agent_started", agent=bot.name, kind=agent.kind, spot=config.spot_key, perp=config.perp_key)


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
        gateways: dict[str, ExecutorGateway] = {}

        def gateway(address: str) -> ExecutorGateway:
            if address not in gateways:
                channel = secure_channel(
                    address,
                    runtime.tls,
                    deadline_seconds=settings.grpc.client_deadline_seconds,
                    tracer_provider=runtime.tracer_provider,
                )
                runtime.on_stop(channel.close)
                gateways[address] = ExecutorGateway(channel)
            return gateways[address]

        if settings.market_makers:
            monitor = None
            if any(mm.volatility_scale > 0 for mm in settings.market_makers):
                channel = secure_channel(
                    settings.monitor_address,
                    runtime.tls,
                    deadline_seconds=settings.grpc.client_deadline_seconds,
                    tracer_provider=runtime.tracer_provider,
                )
                runtime.on_stop(channel.close)
                monitor = MonitorCandles(channel)
            runtime.spawn(
                start_market_makers(settings, runtime, registry, gateway(settings.executor_address), monitor),
                "start-agents",
            )
        if settings.arbitrage_bots:
            runtime.spawn(
                start_arbitrage_bots(
                    settings,
                    runtime,
                    registry,
                    gateway(settings.spot_executor_address),
                    gateway(settings.executor_address),
                ),
                "start-arbitrage-bots",
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
    run_event_loop(run(settings), settings.event_loop)


if __name__ == "__main__":
    main()
