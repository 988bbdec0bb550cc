"""Partial fills on the paper exchange, through the unmodified ccxt clients and the adapter.

A trade against part of a resting order (``POST /admin/fill``) leaves it resting,
PARTIALLY_FILLED, as a busy book does; a market whose ``max_trade_qty`` is set fills a larger
order in several trades, each its own order-stream message. A spot buy's commission, paid in
the base asset per trade, must come out whole on the stream however many trades it took.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side, TimeInForce
from opensqt.paper import PaperExchange
from opensqt.paper.settings import MarketSettings
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import (
    SPOT,
    Admin,
    adapter_for,
    make_ccxt,
    paper_settings,
    tuned_markets,
)

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
TRADE_QTY = Decimal("0.004")  # the spot market's max_trade_qty in these tests


def order(client_id: str, side: Side, qty: str, price: str | None = None) -> Order:
    return Order(
        symbol=SYMBOL,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price) if price is not None else Decimal(0),
        client_order_id=client_id,
        time_in_force=TimeInForce.GTC,
    )


def busy_spot(state_file: Path) -> list[MarketSettings]:
    """The default markets, BTCUSDT spot filling at most TRADE_QTY per trade."""
    return tuned_markets(paper_settings(state_file).markets, "spot", SYMBOL, max_trade_qty=TRADE_QTY)


@dataclass
class Venue:
    paper: PaperExchange
    admin: Admin


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    state_file = tmp_path / "paper.sqlite"
    paper = PaperExchange(paper_settings(state_file, markets=busy_spot(state_file)), source=ManualSource())
    await paper.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Venue(paper, Admin(paper.rest_url, session))
    finally:
        await paper.stop()


async def stream_until(
    adapter: CcxtExchange, trigger: Callable[[], Awaitable[Any]], done: Callable[[Order], bool]
) -> list[Order]:
    """Every order update the stream brings after ``trigger``, until one satisfies ``done``."""
    seen: list[Order] = []

    async def read() -> None:
        while not any(done(o) for o in seen):
            seen.extend(await adapter.watch_orders(SYMBOL))

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.2)  # subscribed
    await trigger()
    await asyncio.wait_for(reader, 5)
    return seen


async def admin_fill(admin: Admin, client_id: str, qty: str, wallet: str = "usdm") -> Any:
    body = {"account": "main", "wallet": wallet, "symbol": SYMBOL, "client_order_id": client_id, "qty": qty}
    return await admin.request("POST", "/admin/fill", body)


async def test_a_partly_filled_order_rests_and_every_read_of_it_says_so(venue: Venue) -> None:
    adapter = adapter_for(venue.paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        await adapter.create_order(order("part-1", Side.BUY, "0.010", "29900"))
        streamed = await stream_until(
            adapter,
            lambda: admin_fill(venue.admin, "part-1", "0.004"),
            lambda o: o.status is OrderStatus.PARTIALLY_FILLED,
        )
        looked_up = await adapter.fetch_order(SYMBOL, client_order_id="part-1")
        still_open = await adapter.fetch_open_orders(SYMBOL)
        held = await adapter.fetch_positions([SYMBOL])
        cancelled = await adapter.cancel_order(SYMBOL, client_order_id="part-1")
        held_after = await adapter.fetch_positions([SYMBOL])
    finally:
        await adapter.close()

    (partial,) = [o for o in streamed if o.status is OrderStatus.PARTIALLY_FILLED]
    assert (partial.client_order_id, partial.filled_qty) == ("part-1", Decimal("0.004"))
    assert (looked_up.status, looked_up.filled_qty, looked_up.average_price) == (
        OrderStatus.PARTIALLY_FILLED, Decimal("0.004"), Decimal("29900")
    )  # fmt: skip
    assert [o.client_order_id for o in still_open] == ["part-1"]
    assert [p.size for p in held] == [Decimal("0.004")]
    assert (cancelled.status, cancelled.filled_qty) == (OrderStatus.CANCELED, Decimal("0.004"))
    assert [p.size for p in held_after] == [Decimal("0.004")]  # the cancel keeps what filled
    (trade,) = [
        t for t in (await venue.admin.request("GET", "/admin/trades")) if t["client_order_id"] == "part-1"
    ]
    assert (trade["quantity"], trade["price"], trade["maker"]) == ("0.004", "29900", True)


async def test_a_spot_buy_filled_in_several_trades_has_its_whole_commission_on_the_stream(
    venue: Venue,
) -> None:
    adapter = adapter_for(venue.paper, MarketType.SPOT)
    try:
        await adapter.load_markets()
        await adapter.create_order(order("maker-1", Side.BUY, "0.01", "29900"))
        # the price trades through the resting buy: three trades (0.004, 0.004, 0.002)
        resting = await stream_until(
            adapter,
            lambda: venue.admin.price(SYMBOL, "29800", family="spot"),
            lambda o: o.client_order_id == "maker-1" and o.status is OrderStatus.FILLED,
        )
        # a taker buy of the same size: the placement answer lists its three fills
        answers: list[Order] = []

        async def take() -> None:
            answers.append(await adapter.create_order(order("taker-1", Side.BUY, "0.01")))

        taken = await stream_until(
            adapter, take, lambda o: o.client_order_id == "taker-1" and o.status is OrderStatus.FILLED
        )
        balances = await adapter.fetch_balances()
    finally:
        await adapter.close()

    trades = await venue.admin.request("GET", "/admin/trades")
    for client_id, updates in (("maker-1", resting), ("taker-1", [*answers, *taken])):
        own = [t for t in trades if t["client_order_id"] == client_id]
        assert [Decimal(t["quantity"]) for t in own] == [TRADE_QTY, TRADE_QTY, Decimal("0.002")]
        assert {t["commission_asset"] for t in own} == {"BTC"}
        paid_by: dict[Decimal, Decimal] = {}  # filled so far -> commission so far
        filled = paid = Decimal(0)
        for trade in own:
            filled += Decimal(trade["quantity"])
            paid += Decimal(trade["commission"])
            paid_by[filled] = paid
        mine = [o for o in updates if o.client_order_id == client_id]
        final = [o for o in mine if o.status is OrderStatus.FILLED][-1]
        assert final.base_commission == paid, client_id
        # an earlier message knew the commission of what had filled by then, or nothing
        for update in mine:
            assert update.base_commission in (None, paid_by[update.filled_qty]), (client_id, update)
    all_paid = sum(Decimal(t["commission"]) for t in trades if t["commission_asset"] == "BTC")
    assert balances["BTC"].total == Decimal("0.02") - all_paid


async def test_a_partly_filled_spot_buy_releases_its_lock_for_what_filled(venue: Venue) -> None:
    adapter = adapter_for(venue.paper, MarketType.SPOT)
    try:
        await adapter.load_markets()
        await adapter.create_order(order("lock-1", Side.BUY, "0.03", "29000"))
        before = (await venue.admin.state())["accounts"]["main"]["spot"]
        filled = await admin_fill(venue.admin, "lock-1", "0.01", wallet="spot")
        after = (await venue.admin.state())["accounts"]["main"]["spot"]
        balances = await adapter.fetch_balances()
    finally:
        await adapter.close()

    assert filled["order"]["status"] == "PARTIALLY_FILLED"
    assert Decimal(after["locked"]["USDT"]) == Decimal(before["locked"]["USDT"]) * 2 / 3
    assert Decimal(after["balances"]["USDT"]) == Decimal(10_000) - Decimal("0.01") * 29000
    assert balances["BTC"].total == Decimal("0.01") - Decimal("0.00001")  # 0.1% paid in BTC
    assert balances["USDT"].free == Decimal(after["balances"]["USDT"]) - Decimal(after["locked"]["USDT"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"qty": "0.011"}, "exceeds what the order has left"),
        ({"qty": "0.0005"}, "multiple of the step size"),
        ({"qty": "0"}, "positive multiple"),
        ({"qty": 0.004}, "decimal string"),
        ({"client_order_id": "nope"}, "no open order 'nope'"),
        ({"account": "ghost"}, "unknown account"),
        ({"wallet": "futures"}, "wallet must be spot, margin or usdm"),
        ({"symbol": "DOGEUSDT"}, "unknown symbol"),
        ({"order_id": 1}, "give one of client_order_id and order_id"),
    ],
)
async def test_a_bad_fill_request_is_refused_and_changes_nothing(
    venue: Venue, change: dict[str, Any], error: str
) -> None:
    adapter = adapter_for(venue.paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        await adapter.create_order(order("bad-1", Side.BUY, "0.010", "29900"))
    finally:
        await adapter.close()
    before = await venue.admin.state()
    body = {"account": "main", "symbol": SYMBOL, "client_order_id": "bad-1", "qty": "0.004", **change}
    async with venue.admin.session.post(venue.admin.base_url + "/admin/fill", json=body) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert error in answer["error"]
    assert await venue.admin.state() == before


async def test_the_spot_stream_says_a_partly_filled_order_is_still_on_the_book(venue: Venue) -> None:
    client = make_ccxt("binance", venue.paper)
    try:
        await client.load_markets()
        await client.create_order(SPOT, "limit", "buy", 0.03, 29000, {"clientOrderId": "book-1"})
        reader = asyncio.ensure_future(client.watch_orders(SPOT))
        await asyncio.sleep(0.2)
        await admin_fill(venue.admin, "book-1", "0.01", wallet="spot")
        (update,) = await asyncio.wait_for(reader, 5)
        partly = update["info"]  # ccxt updates its cached order in place: keep this message
        reader = asyncio.ensure_future(client.watch_orders(SPOT))
        await asyncio.sleep(0.2)
        await venue.admin.price(SYMBOL, "28999", family="spot")
        (last,) = await asyncio.wait_for(reader, 5)
    finally:
        await client.close()

    assert (partly["X"], partly["x"], partly["w"]) == ("PARTIALLY_FILLED", "TRADE", True)
    assert (last["info"]["X"], last["info"]["w"]) == ("FILLED", False)
