"""A thin book on the paper exchange, through the unmodified ccxt clients and the adapter.

``book_depth`` (settings, or ``POST /admin/book`` while running) is all an arriving order can
take at the touch: a MARKET or IOC order fills that much and ends EXPIRED with the rest, as
Binance reports an order the book could not fill whole. Every read of such an order (the
placement's answer, the order stream, a look-up) must carry the partial fill, or a strategy
would count a hedge it does not have.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.model import MarketType, Order, OrderStatus, Side, TimeInForce
from opensqt.paper import PaperExchange, PaperSettings
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import Admin, adapter_for, paper_settings, tuned_markets
from tests.integration.paper.test_partial_fills import order, stream_until

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"


async def set_depth(admin: Admin, depth: str | None, family: str = "both") -> Any:
    return await admin.request("POST", "/admin/book", {"symbol": SYMBOL, "depth": depth, "family": family})


async def test_a_market_order_the_book_cannot_fill_whole_expires_with_its_fill_everywhere(
    paper: PaperExchange, admin: Admin
) -> None:
    assert await set_depth(admin, "0.006", family="usdm") == {"usdm": "0.006"}
    adapter = adapter_for(paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        answers: list[Order] = []

        async def place() -> None:
            answers.append(await adapter.create_order(order("thin-1", Side.SELL, "0.010")))

        streamed = await stream_until(adapter, place, lambda o: o.status.is_final)
        looked_up = await adapter.fetch_order(SYMBOL, client_order_id="thin-1")
        (held,) = await adapter.fetch_positions([SYMBOL])
    finally:
        await adapter.close()

    (answer,) = answers
    final = [o for o in streamed if o.status.is_final][-1]
    for seen in (answer, final, looked_up):
        assert (seen.status, seen.filled_qty, seen.average_price) == (
            OrderStatus.EXPIRED, Decimal("0.006"), Decimal("30000")
        ), seen  # fmt: skip
    assert held.size == Decimal("-0.006")
    (trade,) = [t for t in await admin.request("GET", "/admin/trades") if t["client_order_id"] == "thin-1"]
    assert Decimal(trade["quantity"]) == Decimal("0.006")
    state = await admin.state()
    assert state["markets"]["usdm:BTCUSDT"]["book_depth"] == "0.006"
    assert state["markets"]["spot:BTCUSDT"]["book_depth"] is None


async def test_a_spot_ioc_buy_on_a_thin_book_fills_the_depth_and_its_commission_is_known(
    paper: PaperExchange, admin: Admin
) -> None:
    await set_depth(admin, "0.004", family="spot")
    adapter = adapter_for(paper, MarketType.SPOT)
    try:
        await adapter.load_markets()
        answers: list[Order] = []

        async def place() -> None:
            ioc = replace(order("thin-ioc", Side.BUY, "0.01", "30100"), time_in_force=TimeInForce.IOC)
            answers.append(await adapter.create_order(ioc))

        streamed = await stream_until(adapter, place, lambda o: o.status.is_final)
        balances = await adapter.fetch_balances()
    finally:
        await adapter.close()

    final = [o for o in streamed if o.status.is_final][-1]
    for seen in (answers[0], final):
        assert (seen.status, seen.filled_qty) == (OrderStatus.EXPIRED, Decimal("0.004")), seen
    # 0.1% of what filled, paid in BTC: what the account holds, to the satoshi
    assert final.base_commission == Decimal("0.000004")
    assert balances["BTC"].total == Decimal("0.004") - Decimal("0.000004")
    assert balances["USDT"].free == Decimal(10_000) - Decimal("0.004") * 30000


async def test_an_unlimited_book_again_fills_the_next_order_whole(paper: PaperExchange, admin: Admin) -> None:
    await set_depth(admin, "0.002")
    assert await set_depth(admin, None) == {"usdm": None, "spot": None}
    adapter = adapter_for(paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        placed = await adapter.create_order(order("deep-1", Side.BUY, "0.010"))
    finally:
        await adapter.close()
    assert (placed.status, placed.filled_qty) == (OrderStatus.FILLED, Decimal("0.010"))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"depth": "0.0005"}, "multiple of the step size 0.001 of usdm"),
        ({"depth": "0.0000005", "family": "spot"}, "multiple of the step size 0.00001 of spot"),
        ({"depth": "0"}, "positive multiple"),
        ({"depth": "-0.01"}, "positive multiple"),
        ({"depth": 0.004}, "decimal string"),
        ({}, "depth is required"),
        ({"depth": "0.004", "symbol": "DOGEUSDT"}, "unknown symbol"),
        ({"depth": "0.004", "family": "coinm"}, "family must be spot, usdm or both"),
    ],
)
async def test_a_bad_book_request_is_refused_and_changes_nothing(
    admin: Admin, body: dict[str, Any], error: str
) -> None:
    await set_depth(admin, "0.004")
    before = await admin.state()
    request = {"symbol": SYMBOL, **body}
    async with admin.session.post(admin.base_url + "/admin/book", json=request) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert error in answer["error"]
    assert await admin.state() == before


async def one_buy(settings: PaperSettings, client_order_id: str) -> tuple[dict[str, Any], Order]:
    """Start a paper exchange with ``settings``, price the perp at 30000 and send it one
    0.010 BUY through ccxt; returns the admin's markets and the placement's answer."""
    exchange = PaperExchange(settings, source=ManualSource())
    await exchange.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(exchange.rest_url, session)
            markets = (await admin.state())["markets"]
            await admin.price(SYMBOL, "30000")
            adapter = adapter_for(exchange, MarketType.PERPETUAL)
            try:
                await adapter.load_markets()
                placed = await adapter.create_order(order(client_order_id, Side.BUY, "0.010"))
            finally:
                await adapter.close()
    finally:
        await exchange.stop()
    return markets, placed


async def test_a_depth_set_while_running_survives_a_restart(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path / "paper.sqlite")
    first = PaperExchange(settings, source=ManualSource())
    await first.start()
    try:
        async with aiohttp.ClientSession() as session:
            await set_depth(Admin(first.rest_url, session), "0.003", family="usdm")
    finally:
        await first.stop()
    # the restart's settings give the spot a depth: the snapshot keeps only what was set while
    # running (the perp's), so the settings' spot depth holds
    thin_spot = tuned_markets(settings.markets, "spot", SYMBOL, book_depth=Decimal("0.002"))
    markets, placed = await one_buy(paper_settings(tmp_path / "paper.sqlite", markets=thin_spot), "after-1")
    assert (markets["usdm:BTCUSDT"]["book_depth"], markets["spot:BTCUSDT"]["book_depth"]) == (
        "0.003",
        "0.002",
    )
    assert (placed.status, placed.filled_qty) == (OrderStatus.EXPIRED, Decimal("0.003"))


async def test_settings_set_the_depth_at_start_and_refuse_one_off_the_step(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from opensqt.paper.settings import PerpSettings, SpotSettings

    with pytest.raises(ValidationError, match=r"book_depth 0\.0005 must be a multiple of the step size"):
        PerpSettings(book_depth=Decimal("0.0005"))
    with pytest.raises(ValidationError, match="greater than 0"):
        SpotSettings(book_depth=Decimal(0))
    defaults = paper_settings(tmp_path / "paper.sqlite").markets
    markets = tuned_markets(defaults, "perp", SYMBOL, book_depth=Decimal("0.005"))
    shown, placed = await one_buy(paper_settings(tmp_path / "paper.sqlite", markets=markets), "cfg-1")
    assert shown["usdm:BTCUSDT"]["book_depth"] == "0.005"
    assert (placed.status, placed.filled_qty) == (OrderStatus.EXPIRED, Decimal("0.005"))
