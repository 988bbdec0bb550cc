"""WebSocket streams through ccxt.pro: tickers, mark prices, candles and the user's own orders."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.clock import TestClock
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side
from opensqt.paper import PaperExchange
from opensqt.paper.records import Family
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import PERP, SPOT, Admin, adapter_for, next_update, paper_settings

pytestmark = pytest.mark.integration


async def test_watch_ticker_receives_each_price_change(usdm: Any, admin: Admin) -> None:
    ticker = await next_update(usdm.watch_ticker(PERP), lambda: admin.price("BTCUSDT", "30123.4"))

    assert ticker["symbol"] == PERP
    assert ticker["last"] == 30123.4
    assert ticker["info"]["e"] == "24hrMiniTicker"


async def test_adapter_watch_ticker_gives_a_decimal_price(perp_adapter: CcxtExchange, admin: Admin) -> None:
    change = await next_update(
        perp_adapter.watch_ticker("BTCUSDT"), lambda: admin.price("BTCUSDT", "30050.5")
    )

    assert change.price == Decimal("30050.5")
    assert change.symbol == "BTCUSDT"


async def test_adapter_watch_book_ticker_gives_the_mid_of_the_book(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    # a price alone: the book is one tick (0.1) either side of it
    change = await next_update(
        perp_adapter.watch_book_ticker("BTCUSDT"), lambda: admin.price("BTCUSDT", "30050.5")
    )
    assert (change.bid, change.ask, change.price) == (
        Decimal("30050.4"),
        Decimal("30050.6"),
        Decimal("30050.5"),
    )
    assert change.symbol == "BTCUSDT"
    assert change.exchange_ms > 0

    # a quote: its mid, exact, even between two ticks
    quoted = await next_update(
        perp_adapter.watch_book_ticker("BTCUSDT"),
        lambda: admin.request(
            "POST", "/admin/quote", {"symbol": "BTCUSDT", "bid": "30060.1", "ask": "30060.4"}
        ),
    )
    assert (quoted.bid, quoted.ask, quoted.price) == (
        Decimal("30060.1"),
        Decimal("30060.4"),
        Decimal("30060.25"),
    )


async def test_spot_watch_ticker_uses_the_spot_stream(spot: Any, admin: Admin) -> None:
    ticker = await next_update(
        spot.watch_ticker(SPOT), lambda: admin.price("BTCUSDT", "29990.12", family="spot")
    )

    assert ticker["last"] == 29990.12


async def test_watch_mark_price_receives_mark_index_and_funding_rate(usdm: Any, admin: Admin) -> None:
    await admin.request("POST", "/admin/funding-rate", {"symbol": "BTCUSDT", "rate": "0.00025"})

    mark = await next_update(
        usdm.watch_mark_price(PERP), lambda: admin.price("BTCUSDT", "30200.0", family="usdm")
    )

    assert mark["markPrice"] == 30200.0
    assert mark["indexPrice"] == 30000.0  # the spot price did not move
    assert mark["info"]["r"] == "0.00025000"


async def test_adapter_watch_mark_price_gives_the_funding_rate(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    funding = await next_update(
        perp_adapter.watch_mark_price("BTCUSDT"), lambda: admin.price("BTCUSDT", "30200.0")
    )

    assert funding.mark_price == Decimal("30200.0")


async def test_watch_ohlcv_builds_candles_from_prices(perp_adapter: CcxtExchange, admin: Admin) -> None:
    candles = await next_update(
        perp_adapter.watch_candles("BTCUSDT", "1m"), lambda: admin.price("BTCUSDT", "30400.0")
    )

    assert candles[-1].close == Decimal("30400.0")
    assert candles[-1].high >= Decimal("30400.0")


async def test_watch_orders_reports_own_order_placed_then_filled(
    usdm: Any, perp_adapter: CcxtExchange, admin: Admin
) -> None:
    order = Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("29950.0"),
        client_order_id="watch-1",
    )
    placed = await next_update(perp_adapter.watch_orders("BTCUSDT"), lambda: perp_adapter.create_order(order))
    filled = await next_update(
        perp_adapter.watch_orders("BTCUSDT"), lambda: admin.price("BTCUSDT", "29900.0")
    )

    assert [(o.client_order_id, o.status) for o in placed] == [("watch-1", OrderStatus.NEW)]
    assert filled[-1].client_order_id == "watch-1"
    assert filled[-1].status is OrderStatus.FILLED
    assert filled[-1].filled_qty == Decimal("0.010")


async def test_spot_watch_orders_uses_the_websocket_api_signature_subscription(
    paper: PaperExchange, admin: Admin
) -> None:
    adapter = adapter_for(paper, MarketType.SPOT)
    order = Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
        client_order_id="spot-watch",
    )
    try:
        await adapter.load_markets()
        orders = await next_update(adapter.watch_orders("BTCUSDT"), lambda: adapter.create_order(order))
    finally:
        await adapter.close()

    assert orders[-1].client_order_id == "spot-watch"
    assert orders[-1].status is OrderStatus.FILLED


async def test_margin_watch_orders_uses_a_listen_token(spot: Any) -> None:
    params = {"marginMode": "cross", "sideEffectType": "MARGIN_BUY", "clientOrderId": "margin-watch"}
    orders = await next_update(
        spot.watch_orders(SPOT, None, None, {"type": "margin"}),
        lambda: spot.create_order(SPOT, "market", "sell", 0.01, None, params),
    )

    assert orders[-1]["clientOrderId"] == "margin-watch"
    assert orders[-1]["status"] == "closed"


async def test_user_stream_sends_account_updates_with_balances_and_positions(
    paper: PaperExchange, usdm: Any
) -> None:
    listen_key = (await usdm.fapiPrivatePostListenKey())["listenKey"]
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{paper.ws_url}/ws/{listen_key}") as ws,
    ):
        await usdm.create_order(PERP, "market", "buy", 0.1, None, {"clientOrderId": "stream-raw"})
        messages = [json.loads((await ws.receive(timeout=3)).data) for _ in range(2)]

    order_update, account_update = messages
    assert order_update["e"] == "ORDER_TRADE_UPDATE"
    assert (order_update["o"]["c"], order_update["o"]["x"], order_update["o"]["X"]) == (
        "stream-raw",
        "TRADE",
        "FILLED",
    )
    assert order_update["o"]["n"] == "1.50000000"
    assert account_update["e"] == "ACCOUNT_UPDATE"
    assert account_update["a"]["B"] == [
        {"a": "USDT", "wb": "9998.50000000", "cw": "9998.50000000", "bc": "0"}
    ]
    assert account_update["a"]["P"][0]["pa"] == "0.100"


async def test_market_streams_can_be_named_in_the_url(paper: PaperExchange, admin: Admin) -> None:
    url = f"{paper.ws_url}/stream?streams=btcusdt@bookTicker/btcusdt@kline_1m"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await admin.price("BTCUSDT", "30010.00", family="spot")
        messages = {json.loads((await ws.receive(timeout=3)).data)["stream"] for _ in range(2)}

    assert messages == {"btcusdt@bookTicker", "btcusdt@kline_1m"}


async def test_mark_prices_come_at_binances_cadence_with_the_latest_figures(
    paper: PaperExchange, admin: Admin
) -> None:
    # a market on the wall clock: the book ticker on every change, the mark price every second
    assert paper.hub.paced
    url = f"{paper.ws_url}/market/stream?streams=btcusdt@bookTicker/btcusdt@markPrice@1s"
    received: list[tuple[float, str, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:

        async def read() -> None:
            async for message in ws:
                data = json.loads(message.data)
                received.append((loop.time(), data["stream"], data["data"]))

        await asyncio.wait_for(paper.hub.wait_for_streams({"btcusdt@markprice@1s"}), 3)
        reader = asyncio.create_task(read())
        for step in range(12):  # 1.2 s of prices, one every 100 ms
            await admin.price("BTCUSDT", str(30_100 + step), family="usdm")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.2)  # what is still due arrives within a period
        reader.cancel()

    books = [data for _, stream, data in received if stream == "btcusdt@bookTicker"]
    marks = [(at, data) for at, stream, data in received if stream == "btcusdt@markPrice@1s"]
    assert len(books) == 12  # every change
    assert 2 <= len(marks) <= 3  # not twelve
    assert all(later - earlier >= 0.9 for (earlier, _), (later, _) in itertools.pairwise(marks))
    assert Decimal(marks[-1][1]["p"]) == Decimal("30111")  # the latest, not a stale one


async def test_klines_come_every_250_ms_and_a_closed_candle_at_once(tmp_path: Path) -> None:
    minute = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    clock = TestClock(minute + 50_000)
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), clock=clock, source=ManualSource())
    await exchange.start()
    try:
        url = f"{exchange.ws_url}/market/stream?streams=btcusdt@kline_1m"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await asyncio.wait_for(exchange.hub.wait_for_streams({"btcusdt@kline_1m"}), 3)
            for price in ("30100", "30101"):  # within one period: one message, the latest
                exchange.apply_price(Family.USDM, "BTCUSDT", Decimal(price), Decimal(1))
            clock.set(minute + 60_001)  # the next candle starts: the last one's final state at once
            exchange.apply_price(Family.USDM, "BTCUSDT", Decimal("30200"), Decimal(1))
            klines = []
            with contextlib.suppress(TimeoutError):
                while len(klines) < 3:
                    klines.append(json.loads((await ws.receive(timeout=1)).data)["data"]["k"])
    finally:
        await exchange.stop()

    closed, forming = klines[0], klines[-1]
    assert (closed["t"], Decimal(closed["c"]), closed["x"]) == (minute, Decimal("30101"), True)
    assert (forming["t"], Decimal(forming["c"]), forming["x"]) == (minute + 60_000, Decimal("30200"), False)
    assert len(klines) == 2  # not one per price
