"""Each perpetual's funding interval comes from the venue, per symbol (behaviour.md §3: "interval
taken from the venue per symbol (not hard-coded to 8 h)"): a paper exchange whose ETHUSDT pays
every 4 hours and BTCUSDT every 8, read through the unmodified ccxt client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType
from opensqt.paper import PaperExchange
from opensqt.paper.settings import MarketSettings
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import (
    Admin,
    adapter_for,
    next_update,
    paper_settings,
    tuned_markets,
)

pytestmark = pytest.mark.integration


def four_hourly_eth(state_file: Path) -> list[MarketSettings]:
    """The default markets, ETHUSDT's perpetual paying every 4 hours."""
    return tuned_markets(paper_settings(state_file).markets, "perp", "ETHUSDT", funding_interval_hours=4)


@pytest.fixture
async def four_hourly(tmp_path: Path) -> AsyncIterator[tuple[CcxtExchange, Admin]]:
    state_file = tmp_path / "paper.sqlite"
    paper = PaperExchange(
        paper_settings(state_file, markets=four_hourly_eth(state_file)), source=ManualSource()
    )
    await paper.start()
    adapter = adapter_for(paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        async with aiohttp.ClientSession() as session:
            yield adapter, Admin(paper.rest_url, session)
    finally:
        await adapter.close()
        await paper.stop()


async def test_instruments_carry_each_symbols_own_funding_interval(
    four_hourly: tuple[CcxtExchange, Admin],
) -> None:
    adapter, _ = four_hourly
    assert adapter.instrument("ETHUSDT").funding_interval_hours == 4
    assert adapter.instrument("BTCUSDT").funding_interval_hours == 8


async def test_the_mark_price_stream_reports_the_symbols_interval(
    four_hourly: tuple[CcxtExchange, Admin],
) -> None:
    adapter, admin = four_hourly
    eth = await next_update(adapter.watch_mark_price("ETHUSDT"), lambda: admin.price("ETHUSDT", "2010.00"))
    assert (eth.mark_price, eth.interval_hours) == (Decimal("2010.00"), 4)
    btc = await next_update(adapter.watch_mark_price("BTCUSDT"), lambda: admin.price("BTCUSDT", "30100.0"))
    assert btc.interval_hours == 8
