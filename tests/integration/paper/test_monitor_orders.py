"""The monitor's account stream delivers every order update, the last of a burst too.

ccxt.pro wakes a watcher only for an update that arrives while a watch call waits; an update
that comes while the monitor is publishing the previous one stays in ccxt's cache until the next
update. Here three resting orders are cancelled one after another at the paper exchange (as an
executor's HALTED cancel-all does) and nothing happens afterwards: every CANCELED must still be
published on NATS. An update the stream loses is published from the venue's orders over REST,
that of an order created before the resync window too (the venue lists orders by creation time:
the monitor looks up the orders it last saw open). Everything is real: nats-server, the paper
exchange driven through the unmodified ccxt clients, the monitor's FeedRunner and the EventBus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection
from decimal import Decimal
from typing import Any

import pytest
from nats.js.api import DeliverPolicy

from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from opensqt.paper.app import PaperExchange
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.subjects import ORDER
from tests.integration.paper.conftest import READ_KEY, READ_SECRET, Admin, adapter_for, feed_runner
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
    resync_overlap_ms: int = 60_000,
) -> AsyncIterator[dict[str, OrderStatus]]:
    """The monitor's order feed (FeedRunner, read-only key) publishing on a real NATS; yields
    the latest status of every client id it published, and checks the feed is still running."""
    bus = await EventBus.connect(
        NatsSettings(url=nats.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    await bus.ensure_streams()
    watcher = adapter_for(paper, MarketType.PERPETUAL, key=READ_KEY, secret=READ_SECRET)
    await watcher.load_markets()
    runner = feed_runner(
        wrap(watcher),
        bus,
        quiet_resync_seconds=quiet_resync_seconds,
        idle_resync_seconds=idle_resync_seconds,
        resync_overlap_ms=resync_overlap_ms,
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
    """The real adapter, except that its order stream never delivers the updates of the client
    ids in ``lost`` (as if the venue's push were lost; a test may add ids as it goes): only a
    REST read can tell the monitor about them. Records the orders looked up by exchange id."""

    def __init__(self, exchange: CcxtExchange, lost: Collection[str]) -> None:
        self._exchange = exchange
        self._lost = lost
        self.lookups: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exchange, name)

    async def watch_orders(self, symbol: str = "") -> list[Order]:
        while True:
            batch = [
                o for o in await self._exchange.watch_orders(symbol) if o.client_order_id not in self._lost
            ]
            if batch:
                return batch

    async def fetch_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order:
        self.lookups.append(exchange_order_id or client_order_id)
        return await self._exchange.fetch_order(
            symbol, client_order_id=client_order_id, exchange_order_id=exchange_order_id
        )


async def test_an_update_the_stream_never_delivers_is_published_from_the_venues_orders(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer
) -> None:
    async with orders_feed(
        paper,
        nats,
        quiet_resync_seconds=0.5,
        idle_resync_seconds=0.5,
        wrap=lambda exchange: LossyStream(exchange, lost={"lost-1"}),
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


@contextlib.asynccontextmanager
async def old_order_final_update_lost(
    paper: PaperExchange,
    perp_adapter: CcxtExchange,
    nats: NatsServer,
    *,
    quiet_resync_seconds: float = 0.2,
    idle_resync_seconds: float = 0.2,
) -> AsyncIterator[tuple[dict[str, OrderStatus], LossyStream, str]]:
    """The monitor sees ``old-1`` open, then a newer order: ``old-1`` is now older than the
    resync window (no overlap), and the stream loses its later updates. Yields what the monitor
    published, its adapter, and ``old-1``'s exchange order id."""
    lost: set[str] = set()
    streams: list[LossyStream] = []

    def wrap(exchange: CcxtExchange) -> LossyStream:
        streams.append(LossyStream(exchange, lost))
        return streams[0]

    async with orders_feed(
        paper,
        nats,
        quiet_resync_seconds=quiet_resync_seconds,
        idle_resync_seconds=idle_resync_seconds,
        wrap=wrap,
        resync_overlap_ms=0,
    ) as seen:
        old = await perp_adapter.create_order(buy("old-1", "29000"))
        assert await statuses_within(seen, {"old-1": OrderStatus.NEW}, within=5) == {"old-1": OrderStatus.NEW}
        await perp_adapter.create_order(buy("new-1", "28900"))  # the resync window starts here
        assert await statuses_within(seen, {"new-1": OrderStatus.NEW}, within=5) == {"new-1": OrderStatus.NEW}
        lost.add("old-1")
        yield seen, streams[0], old.exchange_order_id


async def test_an_order_older_than_the_resync_window_whose_final_update_is_lost_is_published_final(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer
) -> None:
    async with old_order_final_update_lost(paper, perp_adapter, nats) as (seen, stream, old_id):
        await perp_adapter.cancel_order(SYMBOL, client_order_id="old-1")  # lost on the stream

        # not among the orders created since the window, no longer open: looked up by its id
        got = await statuses_within(seen, {"old-1": OrderStatus.CANCELED}, within=5)
        assert got == {"old-1": OrderStatus.CANCELED}
        assert stream.lookups == [old_id]
        await asyncio.sleep(0.6)  # more resyncs: a final order is not looked up again
        assert stream.lookups == [old_id]
        assert seen["new-1"] is OrderStatus.NEW


async def test_an_old_order_that_filled_while_the_stream_was_down_is_published_at_reconnect(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer, admin: Admin
) -> None:
    # no quiet or idle resyncs: only the resync of a (re)connecting stream reads the venue
    async with old_order_final_update_lost(
        paper, perp_adapter, nats, quiet_resync_seconds=0, idle_resync_seconds=0
    ) as (seen, stream, old_id):
        await admin.price(SYMBOL, "28950.0")  # through old-1 (29000), not new-1 (28900)
        assert (await perp_adapter.fetch_order(SYMBOL, client_order_id="old-1")).status is OrderStatus.FILLED
        await admin.fault(kind="ws_drop", refuse_ms=300)

        got = await statuses_within(seen, {"old-1": OrderStatus.FILLED}, within=5)
        assert got == {"old-1": OrderStatus.FILLED}
        assert stream.lookups == [old_id]


async def test_a_failed_lookup_of_an_old_order_is_tried_again_at_the_next_resync(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer, admin: Admin
) -> None:
    async with old_order_final_update_lost(paper, perp_adapter, nats) as (seen, stream, old_id):
        await admin.fault(
            kind="reject",
            status=503,
            code=-1001,
            msg="Internal error.",
            path="/fapi/v1/order",
            method="GET",
            times=2,
        )
        await perp_adapter.cancel_order(SYMBOL, client_order_id="old-1")

        got = await statuses_within(seen, {"old-1": OrderStatus.CANCELED}, within=5)
        assert got == {"old-1": OrderStatus.CANCELED}
        assert stream.lookups == [old_id] * 3  # two refused, the feed ran on, the third answered
        assert (await admin.request("GET", "/admin/faults"))["rest"] == []


async def test_an_old_order_the_venue_no_longer_knows_is_forgotten(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer, admin: Admin
) -> None:
    async with old_order_final_update_lost(paper, perp_adapter, nats) as (seen, stream, old_id):
        await admin.fault(
            kind="reject",
            code=-2013,
            msg="Order does not exist.",
            path="/fapi/v1/order",
            method="GET",
            times=1,
        )
        await perp_adapter.cancel_order(SYMBOL, client_order_id="old-1")

        async def looked_up() -> bool:
            return bool(stream.lookups)

        await until(looked_up, "the lookup of old-1", within=5, interval=0.02)
        await asyncio.sleep(0.6)  # more resyncs: it is not asked for again

        assert stream.lookups == [old_id]
        assert seen["old-1"] is OrderStatus.NEW


async def stored_statuses(nats: NatsServer) -> dict[str, list[OrderStatus]]:
    """Every order update the ORDER stream holds, by client id, in order (a fresh consumer)."""
    bus = await EventBus.connect(
        NatsSettings(url=nats.url), service="reader", metrics=ServiceMetrics("reader")
    )
    stored: dict[str, list[OrderStatus]] = {}

    async def on_update(update: OrderUpdate, ctx: EventContext) -> None:
        stored.setdefault(update.order.client_order_id, []).append(update.order.status)

    try:
        await bus.subscribe(
            ORDER, ORDER.subject(account=ACCOUNT, symbol=SYMBOL), on_update, deliver_policy=DeliverPolicy.ALL
        )
        await asyncio.sleep(0.5)
    finally:
        await bus.close()
    return stored


async def test_a_nats_outage_does_not_end_the_feed_and_what_happened_meanwhile_is_published_after_it(
    paper: PaperExchange, perp_adapter: CcxtExchange, nats: NatsServer
) -> None:
    # NATS goes away while the venue cancels an order: the publish fails (no JetStream
    # acknowledgement), the feed reconnects with backoff, and once NATS is back its resync
    # stores the update. Before, an error from NATS ended the feed for good: no order update
    # again until the monitor was restarted.
    async with orders_feed(paper, nats, quiet_resync_seconds=0.2, idle_resync_seconds=1) as seen:
        await perp_adapter.create_order(buy("outage-1", "29000"))
        assert await statuses_within(seen, {"outage-1": OrderStatus.NEW}, within=5) == {
            "outage-1": OrderStatus.NEW
        }
        nats.kill()
        await perp_adapter.cancel_order(SYMBOL, client_order_id="outage-1")
        await perp_adapter.create_order(buy("outage-2", "28900"))  # created while NATS is down
        await asyncio.sleep(6)  # past a JetStream publish's acknowledgement timeout
        nats.start()

        async def published() -> dict[str, list[OrderStatus]] | None:
            stored = await stored_statuses(nats)
            done = stored.get("outage-1", [])[-1:] == [OrderStatus.CANCELED] and "outage-2" in stored
            return stored if done else None

        stored = await until(published, "the updates of the outage stored on NATS", within=30, interval=0.5)
    assert stored["outage-1"] == [OrderStatus.NEW, OrderStatus.CANCELED]
    assert stored["outage-2"] == [OrderStatus.NEW]
