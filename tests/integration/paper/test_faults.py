"""Each injected fault: what the adapter (CcxtExchange) reports, and that nothing is counted
twice (the venue's order log, trades and ledger hold each order and fill once)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from opensqt.errors import (
    DuplicateOrder,
    ExchangeUnavailable,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    Retryable,
)
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side
from opensqt.paper import PaperExchange
from tests.integration.paper.conftest import Admin, adapter_for, next_update

pytestmark = pytest.mark.integration

ORDER_PATH = "/fapi/v1/order"


def market_buy(client_id: str, qty: str = "0.100") -> Order:
    return Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal(qty),
        client_order_id=client_id,
    )


def limit_buy(client_id: str, price: str = "29950.0") -> Order:
    return Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal(price),
        client_order_id=client_id,
    )


async def counted(admin: Admin, client_id: str) -> tuple[list[str], int, int]:
    """(executions in the order log, trades, commissions in the ledger) of one client id."""
    log = [entry for entry in await admin.orders() if entry["order"]["client_order_id"] == client_id]
    trades = [t for t in await admin.request("GET", "/admin/trades") if t["client_order_id"] == client_id]
    order_ids = {str(t["trade_id"]) for t in trades}
    commissions = [
        e for e in await admin.ledger() if e["kind"] == "COMMISSION" and e["trade_id"] in order_ids
    ]
    return [entry["execution"] for entry in log], len(trades), len(commissions)


async def test_latency_delays_the_matching_requests_only(perp_adapter: CcxtExchange, admin: Admin) -> None:
    await admin.fault(kind="latency", ms=300, path=ORDER_PATH, method="POST")

    started = time.monotonic()
    await perp_adapter.create_order(limit_buy("slow-1"))
    slow = time.monotonic() - started
    started = time.monotonic()
    await perp_adapter.fetch_balances()
    fast = time.monotonic() - started

    assert slow >= 0.3
    assert fast < 0.2
    assert await counted(admin, "slow-1") == (["NEW"], 0, 0)


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_status_is_rate_limited_with_retry_after_and_places_nothing(
    perp_adapter: CcxtExchange, admin: Admin, status: int
) -> None:
    await admin.fault(kind="http_error", status=status, retry_after=7, path=ORDER_PATH, times=1)

    with pytest.raises(RateLimited) as raised:
        await perp_adapter.create_order(market_buy("limited-1"))
    assert await admin.orders() == []
    retried = await perp_adapter.create_order(market_buy("limited-1"))

    assert raised.value.retry_after_s == 7.0
    assert retried.status is OrderStatus.FILLED
    assert await counted(admin, "limited-1") == (["TRADE"], 1, 1)


async def test_timeout_after_acceptance_is_ambiguous_and_the_lookup_finds_the_order(
    paper: PaperExchange, admin: Admin
) -> None:
    adapter = adapter_for(paper, MarketType.PERPETUAL, timeout_ms=400)
    await admin.fault(kind="ambiguous", mode="delay", delay_ms=1200, path=ORDER_PATH, method="POST", times=1)
    try:
        await adapter.load_markets()
        with pytest.raises(Retryable) as raised:
            await adapter.create_order(market_buy("ambiguous-1"))
        found = await adapter.fetch_order("BTCUSDT", client_order_id="ambiguous-1")
        positions = await adapter.fetch_positions(["BTCUSDT"])
    finally:
        await adapter.close()

    assert raised.value.ambiguous is True
    assert found.status is OrderStatus.FILLED  # it was placed: the executor must not send it again
    assert [p.size for p in positions] == [Decimal("0.100")]
    assert await counted(admin, "ambiguous-1") == (["TRADE"], 1, 1)
    state = await admin.state()
    assert Decimal(state["accounts"]["main"]["usdm"]["balances"]["USDT"]) == Decimal(10_000) - Decimal("1.5")


async def test_dropped_connection_after_acceptance_places_the_order_once(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.fault(kind="ambiguous", mode="drop", path=ORDER_PATH, method="POST", times=1)

    with pytest.raises(Retryable) as raised:
        await perp_adapter.create_order(limit_buy("dropped-1"))
    found = await perp_adapter.fetch_order("BTCUSDT", client_order_id="dropped-1")
    with pytest.raises(DuplicateOrder, match="duplicated"):  # a blind resend is refused while it is open
        await perp_adapter.create_order(limit_buy("dropped-1"))

    assert isinstance(raised.value, ExchangeUnavailable)
    assert found.status is OrderStatus.NEW
    assert await counted(admin, "dropped-1") == (["NEW"], 0, 0)


async def test_dropped_connection_on_submit_is_reported_ambiguous(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.fault(kind="ambiguous", mode="drop", path=ORDER_PATH, method="POST", times=1)

    with pytest.raises(Retryable) as raised:
        await perp_adapter.create_order(limit_buy("dropped-2"))

    assert raised.value.ambiguous is True


async def test_reject_fault_refuses_with_the_configured_error_and_places_nothing(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.fault(kind="reject", path=ORDER_PATH, method="POST", times=1)

    with pytest.raises(InvalidOrder, match="-2010"):
        await perp_adapter.create_order(market_buy("rejected-1"))

    assert await admin.orders() == []


async def test_backend_timeout_reject_is_ambiguous_but_the_lookup_shows_nothing_was_placed(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    message = (
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    )
    await admin.fault(
        kind="reject", status=503, code=-1007, msg=message, path=ORDER_PATH, method="POST", times=1
    )

    with pytest.raises(Retryable) as raised:
        await perp_adapter.create_order(market_buy("unknown-1"))
    with pytest.raises(OrderNotFound):
        await perp_adapter.fetch_order("BTCUSDT", client_order_id="unknown-1")
    resent = await perp_adapter.create_order(market_buy("unknown-1"))

    assert raised.value.ambiguous is True
    assert resent.status is OrderStatus.FILLED
    assert await counted(admin, "unknown-1") == (["TRADE"], 1, 1)


async def test_websocket_drop_fails_the_watch_and_a_new_watch_reconnects(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await perp_adapter.create_order(limit_buy("ws-1"))
    watch = asyncio.ensure_future(perp_adapter.watch_orders("BTCUSDT"))
    await asyncio.sleep(0.2)

    dropped = await admin.fault(kind="ws_drop", refuse_ms=300)
    with pytest.raises(Retryable):
        await asyncio.wait_for(watch, 3)
    with pytest.raises(Retryable):  # reconnecting inside the refusal window fails too
        await asyncio.wait_for(perp_adapter.watch_orders("BTCUSDT"), 3)
    await asyncio.sleep(0.4)
    # the fill happens while nobody listens; reconciliation by REST sees it once
    await admin.price("BTCUSDT", "29900.0")
    open_orders = await perp_adapter.fetch_open_orders("BTCUSDT")
    reconciled = await perp_adapter.fetch_order("BTCUSDT", client_order_id="ws-1")
    fill = await next_update(
        perp_adapter.watch_orders("BTCUSDT"),
        lambda: perp_adapter.create_order(limit_buy("ws-2", price="29800.0")),
    )

    assert dropped["dropped_connections"] >= 1
    assert open_orders == []
    assert reconciled.status is OrderStatus.FILLED
    assert [(o.client_order_id, o.status) for o in fill] == [("ws-2", OrderStatus.NEW)]
    assert await counted(admin, "ws-1") == (["NEW", "TRADE"], 1, 1)


async def test_stale_feed_stops_prices_streams_and_fills_until_cleared(
    perp_adapter: CcxtExchange, usdm: Any, admin: Admin
) -> None:
    await perp_adapter.create_order(limit_buy("stale-1"))
    await admin.fault(kind="stale_feed", on=True)

    watch = asyncio.ensure_future(perp_adapter.watch_ticker("BTCUSDT"))
    await asyncio.sleep(0.2)
    pushed = await admin.price("BTCUSDT", "29000.0")
    await asyncio.sleep(0.3)
    stale_ticker = await usdm.fetch_ticker("BTC/USDT:USDT")
    still_open = await perp_adapter.fetch_order("BTCUSDT", client_order_id="stale-1")
    assert not watch.done()

    await admin.clear_faults()
    await admin.price("BTCUSDT", "29000.0")
    fresh = await asyncio.wait_for(watch, 3)

    assert pushed["applied"] is False
    assert stale_ticker["last"] == 30000.0
    assert still_open.status is OrderStatus.NEW
    assert fresh.price == Decimal("29000.0")
    assert await counted(admin, "stale-1") == (["NEW", "TRADE"], 1, 1)
