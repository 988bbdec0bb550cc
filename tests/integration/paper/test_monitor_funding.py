"""The monitor's funding feed: a FundingUpdate when the rate or the next funding time changes,
and the unchanged funding again at least every ``funding_refresh_seconds``, so a consumer that
refuses funding older than its limit (the arbitrage bot after a restart or a long halt) is not
left waiting for the next change. Real nats-server (JetStream), the paper exchange through the
unmodified ccxt client (mark prices pushed on every price change), FeedRunner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import aiohttp
import pytest

from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.model import FundingUpdate, MarketType
from opensqt.paper.app import PaperExchange
from opensqt.paper.sources import ManualSource
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.subjects import FUNDING
from tests.integration.paper.conftest import (
    READ_KEY,
    READ_SECRET,
    Admin,
    adapter_for,
    feed_runner,
    paper_settings,
)

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"


@pytest.fixture
async def unpaced(tmp_path: Path) -> AsyncIterator[PaperExchange]:
    """A paper exchange that pushes the mark price (with the funding) on every price change."""
    exchange = PaperExchange(
        paper_settings(tmp_path / "paper.sqlite", stream_pacing=False), source=ManualSource()
    )
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


async def published_while_ticking(
    paper: PaperExchange, nats: NatsServer, refresh_seconds: float, *, ticks: int, rate_at: int = -1
) -> list[FundingUpdate]:
    """Every FundingUpdate the feed publishes while the price moves every 0.2 s for ``ticks``
    ticks (the funding rate set to 0.0002 before tick ``rate_at``)."""
    bus = await EventBus.connect(NatsSettings(url=nats.url), service="monitor", metrics=ServiceMetrics("t"))
    watcher = adapter_for(paper, MarketType.PERPETUAL, key=READ_KEY, secret=READ_SECRET)
    published: list[FundingUpdate] = []

    async def on_funding(update: FundingUpdate, ctx: EventContext) -> None:
        published.append(update)

    try:
        await bus.ensure_streams()  # the funding stream is JetStream's (as risk creates it)
        await watcher.load_markets()
        runner = feed_runner(watcher, bus, funding_refresh_seconds=refresh_seconds)
        await bus.subscribe(FUNDING, FUNDING.subject(venue="paper", symbol=SYMBOL), on_funding)
        task = asyncio.create_task(dict(runner.tasks())[f"funding-{SYMBOL}"]())
        try:
            async with aiohttp.ClientSession() as session:
                admin = Admin(paper.rest_url, session)
                await asyncio.wait_for(paper.hub.wait_for_streams({"btcusdt@markprice@1s"}), 5)
                for tick in range(ticks):
                    if tick == rate_at:
                        body = {"symbol": SYMBOL, "rate": "0.0002"}
                        await admin.request("POST", "/admin/funding-rate", body)
                    await admin.price(SYMBOL, str(30_000 + tick), family="usdm")
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await watcher.close()
        await bus.close()
    return published


async def test_unchanged_funding_is_published_again_every_refresh_interval(
    unpaced: PaperExchange, nats: NatsServer
) -> None:
    # 20 mark prices 0.2 s apart (about 4 s), one rate change after about 2 s
    updates = await published_while_ticking(unpaced, nats, 1.0, ticks=20, rate_at=10)
    rates = [u.funding.rate for u in updates]
    # the first, then about one a second while nothing changes (over 4 s), and the change
    assert len(updates) >= 4, rates
    assert rates[0] == Decimal("0.0001")
    assert Decimal("0.0002") in rates
    times = [u.funding.time_ms for u in updates]
    changed = rates.index(Decimal("0.0002"))
    gaps = [later - earlier for earlier, later in pairwise(times)]
    # refreshes of an unchanged funding are at least the interval apart; only a change is sooner
    assert all(gap >= 1000 for i, gap in enumerate(gaps) if i + 1 != changed), gaps


async def test_with_no_refresh_only_a_change_is_published(unpaced: PaperExchange, nats: NatsServer) -> None:
    updates = await published_while_ticking(unpaced, nats, 0, ticks=15, rate_at=8)
    assert [u.funding.rate for u in updates] == [Decimal("0.0001"), Decimal("0.0002")]
