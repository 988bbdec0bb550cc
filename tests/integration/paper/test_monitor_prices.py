"""The monitor's price feed: the book ticker by default (bid, ask and their mid), the ticker on
request. Real nats-server, the paper exchange through the unmodified ccxt client, FeedRunner."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

import pytest

from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.model import MarketType, PriceChange
from opensqt.monitors.feeds import PriceFeed
from opensqt.paper.app import PaperExchange
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.subjects import PRICE
from tests.integration.paper.conftest import READ_KEY, READ_SECRET, Admin, adapter_for, feed_runner

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"


@pytest.mark.parametrize(
    ("feed", "stream", "expected"),
    [
        # the mid of the quote, exact between two ticks, with the quote itself
        ("book_ticker", "btcusdt@bookticker", ("30060.25", "30060.1", "30060.4")),
        # ccxt reads the mini ticker: the last price (the paper exchange moves it to the quote's mid)
        ("ticker", "btcusdt@miniticker", ("30060.25", "0", "0")),
    ],
)
async def test_the_price_feed_publishes_what_its_stream_says(
    paper: PaperExchange,
    admin: Admin,
    nats: NatsServer,
    feed: PriceFeed,
    stream: str,
    expected: tuple[str, str, str],
) -> None:
    bus = await EventBus.connect(
        NatsSettings(url=nats.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    watcher = adapter_for(paper, MarketType.PERPETUAL, key=READ_KEY, secret=READ_SECRET)
    await watcher.load_markets()
    runner = feed_runner(watcher, bus, price_feed=feed)
    published: list[PriceChange] = []

    arrived = asyncio.Event()

    async def on_price(price: PriceChange, ctx: EventContext) -> None:
        published.append(price)
        arrived.set()

    await bus.subscribe(PRICE, PRICE.subject(venue="paper", symbol=SYMBOL), on_price)
    task = asyncio.create_task(dict(runner.tasks())[f"ticker-{SYMBOL}"]())
    try:
        await asyncio.wait_for(paper.hub.wait_for_streams({stream}), 5)
        await admin.request("POST", "/admin/quote", {"symbol": SYMBOL, "bid": "30060.1", "ask": "30060.4"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), 5)

        assert published, f"no price published from the {feed} stream"
        price = published[-1]
        assert (price.price, price.bid, price.ask) == tuple(Decimal(v) for v in expected)
        assert price.venue == "paper"
        assert price.sequence == len(published)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.close()
        await bus.close()
