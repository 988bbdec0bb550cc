"""The monitor's account stream delivers every order update, the last of a burst too.

ccxt.pro wakes a watcher only for an update that arrives while a watch call waits; an update
that comes while the monitor is publishing the previous one stays in ccxt's cache until the next
update. Here three resting orders are cancelled one after another at the paper exchange (as an
executor's HALTED cancel-all does) and nothing happens afterwards: every CANCELED must still be
published on NATS. Everything is real: nats-server, the paper exchange driven through the
unmodified ccxt clients, the monitor's FeedRunner and the EventBus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from opensqt.clock import SystemClock
from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from opensqt.monitors.cache import MarketCache
from opensqt.monitors.feeds import FeedRunner
from opensqt.paper.app import PaperExchange
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.subjects import ORDER
from tests.integration.paper.conftest import READ_KEY, READ_SECRET, adapter_for
from tests.support.waiting import until

pytestmark = pytest.mark.integration

ACCOUNT = "main"
SYMBOL = "BTCUSDT"


def buy(client_order_id: str, price: str) -> Order:
    return Order(
        symbol=SYMBOL,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal(price),
        client_order_id=client_order_id,
        venue="paper",
        account=ACCOUNT,
        market_type=MarketType.PERPETUAL,
        time_in_force=TimeInForce.GTC,
    )


async def statuses_within(
    seen: dict[str, OrderStatus], wanted: dict[str, OrderStatus], within: float
) -> dict[str, OrderStatus]:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if all(seen.get(cid) is status for cid, status in wanted.items()):
            break
        await asyncio.sleep(0.05)
    return {cid: seen[cid] for cid in wanted if cid in seen}


@contextlib.asynccontextmanager
async def orders_feed(
    paper: PaperExchange,
    nats: NatsServer,
    *,
    quiet_resync_seconds: float,
    idle_resync_seconds: float,
    wrap: Callable[[CcxtExchange], Any] = lambda exchange: exchange,
) -> AsyncIterator[dict[str, OrderStatus]]:
    """The monitor's order feed (FeedRunner, read-only key) publishing on a real NATS; yields
    the latest status of every client id it published, and checks the feed is still running."""
    bus = await EventBus.connect(
        NatsSettings(url=nats.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    await bus.ensure_streams()
    watcher = adapter_for(paper, MarketType.PERPETUAL, key=READ_KEY, secret=READ_SECRET)
    await watcher.load_markets()
    runner = FeedRunner(
        wrap(watcher),
        bus,
        MarketCache(default_venue="paper"),
        SystemClock(),
        account=ACCOUNT,
        symbols=(SYMBOL,),
        quiet_resync_seconds=quiet_resync_seconds,
        idle_resync_seconds=idle_resync_seconds,
    )
    seen: dict[str, OrderStatus] = {}

    async def on_update(update: OrderUpdate, ctx: EventContext) -> None:
        seen[update.order.client_order_id] = update.order.status

    await bus.subscribe(ORDER, ORDER.subject(account=ACCOUNT, symbol=SYMBOL), on_update)
    connections = paper.hub.connection_count
    feed = asyncio.create_task(dict(runner.tasks())["orders"]())
    try:

        async def stream_live() -> bool:
            # the user-data stream is its connection (listen key in the URL); an order placed
            # before it is up would be seen only by the REST reads
            return paper.hub.connection_count > connections

        await until(stream_live, "the watcher's user-data stream", within=5, interval=0.01)
        yield seen
        assert not feed.done()
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await watcher.close()
        await bus.close()


@pytest.mark.parametrize("round", range(3))
async def test_the_stream_delivers_every_cancel_of_a_burst_with_nothing_after_it(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer, round: int
) -> None:
    # the stream alone: no REST safety net
    async with orders_feed(paper, nats, quiet_resync_seconds=0, idle_resync_seconds=0) as seen:
        ids = [f"burst-{round}-{i}" for i in range(3)]
        for i, cid in enumerate(ids):
            await perp_adapter.create_order(buy(cid, str(29_000 - 100 * i)))
        got = await statuses_within(seen, dict.fromkeys(ids, OrderStatus.NEW), within=5)
        assert got == dict.fromkeys(ids, OrderStatus.NEW)
        for cid in ids:  # one after another, each a REST round trip: a burst of three updates
            await perp_adapter.cancel_order(SYMBOL, client_order_id=cid)
        # no order event follows: the last ones must not wait in ccxt's cache for one
        got = await statuses_within(seen, dict.fromkeys(ids, OrderStatus.CANCELED), within=5)
        assert got == dict.fromkeys(ids, OrderStatus.CANCELED)


class LossyStream:
    """The real adapter, except that its order stream never delivers one client id's updates
    (as if the venue's push were lost): only a REST read can tell the monitor about them."""

    def __init__(self, exchange: CcxtExchange, lost: str) -> None:
        self._exchange = exchange
        self._lost = lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exchange, name)

    async def watch_orders(self, symbol: str = "") -> list[Order]:
        while True:
            batch = [o for o in await self._exchange.watch_orders(symbol) if o.client_order_id != self._lost]
            if batch:
                return batch


async def test_an_update_the_stream_never_delivers_is_published_from_the_venues_orders(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer
) -> None:
    async with orders_feed(
        paper,
        nats,
        quiet_resync_seconds=0.5,
        idle_resync_seconds=0.5,
        wrap=lambda exchange: LossyStream(exchange, lost="lost-1"),
    ) as seen:
        await perp_adapter.create_order(buy("kept-1", "29000"))
        kept = await statuses_within(seen, {"kept-1": OrderStatus.NEW}, within=5)
        assert kept == {"kept-1": OrderStatus.NEW}
        await perp_adapter.create_order(buy("lost-1", "28900"))  # its NEW is lost on the stream
        # the stream delivered nothing for it; once quiet, the monitor reads the venue's recent
        # orders and publishes what the stream missed
        got = await statuses_within(seen, {"lost-1": OrderStatus.NEW}, within=5)
        assert got == {"lost-1": OrderStatus.NEW}
        await perp_adapter.cancel_order(SYMBOL, client_order_id="kept-1")
        await perp_adapter.cancel_order(SYMBOL, client_order_id="lost-1")
        wanted = {"kept-1": OrderStatus.CANCELED, "lost-1": OrderStatus.CANCELED}
        assert await statuses_within(seen, wanted, within=5) == wanted
