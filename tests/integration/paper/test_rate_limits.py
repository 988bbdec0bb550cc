"""The request log, Binance's 418 for an order sent inside a 429's Retry-After, and the per-client
order limit (:mod:`opensqt.paper.limits`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.errors import RateLimited
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import OrderStatus
from opensqt.paper import PaperExchange
from opensqt.paper.auth import sign
from opensqt.paper.settings import RateLimitSettings
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import TRADE_KEY, TRADE_SECRET, Admin, paper_settings
from tests.integration.paper.test_faults import ORDER_PATH, limit_buy, market_buy

pytestmark = pytest.mark.integration


async def requests(admin: Admin, **query: str) -> list[dict[str, Any]]:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    result: list[dict[str, Any]] = (await admin.request("GET", "/admin/requests" + suffix))["requests"]
    return result


async def raw_order(admin: Admin, client_id: str, signed_ms: int) -> tuple[int, dict[str, Any], str | None]:
    """POST a market buy signed with the trade key at ``signed_ms``; (status, body, Retry-After)."""
    body = (
        f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010&newClientOrderId={client_id}"
        f"&timestamp={signed_ms}&recvWindow=10000"
    )
    body += "&signature=" + sign(TRADE_SECRET, body)
    async with admin.session.post(
        admin.base_url + ORDER_PATH,
        data=body,
        headers={"X-MBX-APIKEY": TRADE_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_every_rest_request_is_logged_with_its_key_signature_time_and_answer(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.request("DELETE", "/admin/requests")  # forget load_markets
    before = now_ms()
    await perp_adapter.create_order(limit_buy("logged-1"))
    await perp_adapter.fetch_balances()
    async with admin.session.get(admin.base_url + "/fapi/v1/ping") as ping:
        assert ping.status == 200
    await admin.fault(kind="reject", status=400, code=-1013, path=ORDER_PATH, times=1)
    with pytest.raises(Exception):  # noqa: B017 - only the log entry matters here
        await perp_adapter.create_order(limit_buy("logged-2"))

    log = await requests(admin)
    placed, refused = [r for r in log if r["path"] == ORDER_PATH]
    assert (placed["method"], placed["status"], placed["order"], placed["rule"]) == ("POST", 200, True, "")
    assert (placed["api_key"], placed["account"], placed["client_order_id"]) == (
        TRADE_KEY,
        "main",
        "logged-1",
    )
    assert before <= placed["signed_ms"] <= placed["time_ms"] <= placed["answered_ms"]
    assert refused["status"] == 400
    ping_entry = next(r for r in log if r["path"] == "/fapi/v1/ping")
    assert (ping_entry["api_key"], ping_entry["signed_ms"], ping_entry["order"]) == ("", None, False)
    assert ping_entry["client"] == "ip:127.0.0.1"
    assert not any(r["path"].startswith("/admin") for r in log)
    assert [r["seq"] for r in log] == sorted(r["seq"] for r in log)
    assert [r["path"] for r in await requests(admin, order="true")] == [ORDER_PATH, ORDER_PATH]
    assert [r["status"] for r in await requests(admin, path="/fapi/v1/order", status="400")] == [400]
    await admin.request("DELETE", "/admin/requests")
    assert await requests(admin) == []


async def test_an_order_sent_inside_a_429_retry_after_is_banned_418_and_not_placed(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.request("POST", "/admin/limits", {"ban": True})
    await admin.fault(kind="http_error", status=429, retry_after=1, path=ORDER_PATH, method="POST", times=1)

    with pytest.raises(RateLimited) as limited:
        await perp_adapter.create_order(market_buy("ban-1"))
    await asyncio.sleep(0.01)  # signed in a later millisecond than the 429's answer
    with pytest.raises(RateLimited) as banned:  # resent at once: not backing off
        await perp_adapter.create_order(market_buy("ban-1"))
    balances = await perp_adapter.fetch_balances()  # reads are not order requests
    assert (await admin.request("GET", "/admin/limits"))["bans"].keys() == {TRADE_KEY}
    await asyncio.sleep(1.05)
    placed = await perp_adapter.create_order(market_buy("ban-1"))

    assert limited.value.retry_after_s == 1.0
    assert "418" in str(banned.value)
    assert banned.value.retry_after_s == 1.0
    assert balances["USDT"].total > 0
    assert placed.status is OrderStatus.FILLED
    statuses = [(r["status"], r["rule"]) for r in await requests(admin, order="true")]
    assert statuses == [(429, ""), (418, "ban"), (200, "")]
    assert len([e for e in await admin.orders() if e["order"]["client_order_id"] == "ban-1"]) == 1


async def test_an_order_already_on_its_way_when_the_429_was_answered_gets_429_not_418(admin: Admin) -> None:
    await admin.request("POST", "/admin/limits", {"ban": True, "ban_grace_ms": 0})
    await admin.fault(kind="http_error", status=429, retry_after=2, path=ORDER_PATH, times=1)
    first = await raw_order(admin, "flight-1", now_ms())
    started = (await admin.request("GET", "/admin/limits"))["bans"][TRADE_KEY]["started_ms"]

    in_flight = await raw_order(admin, "flight-2", started - 5)  # signed before the 429 was answered
    late = await raw_order(admin, "flight-3", started + 1)  # signed after it: ignored the 429
    await admin.request("POST", "/admin/limits", {"ban_grace_ms": 60_000})
    graced = await raw_order(admin, "flight-4", now_ms())  # within the allowed reaction time

    assert first[0] == 429
    assert (in_flight[0], in_flight[1]["code"]) == (429, -1003)
    assert (late[0], late[1]["code"], late[2]) in {(418, -1003, "1"), (418, -1003, "2")}
    assert "banned until" in late[1]["msg"]
    assert graced[0] == 429
    rules = [r["rule"] for r in await requests(admin, order="true")]
    assert rules == ["", "in_flight", "ban", "in_flight"]
    assert await admin.orders() == []


async def test_the_order_limit_refuses_past_n_orders_per_interval_then_admits_again(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.request("POST", "/admin/limits", {"orders_per_interval": 3, "interval_ms": 500})
    results = await asyncio.gather(
        *(perp_adapter.create_order(limit_buy(f"lim-{i}")) for i in range(5)), return_exceptions=True
    )
    await perp_adapter.fetch_balances()  # not an order request: never limited
    await asyncio.sleep(0.55)
    later = await perp_adapter.create_order(limit_buy("lim-later"))

    placed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert (len(placed), len(refused)) == (3, 2)
    assert all(r.retry_after_s == 1.0 for r in refused)
    assert later.status is OrderStatus.NEW
    log = await requests(admin, order="true")
    assert sorted(r["status"] for r in log) == [200, 200, 200, 200, 429, 429]
    assert {r["rule"] for r in log if r["status"] == 429} == {"order_limit"}
    assert len({e["order"]["client_order_id"] for e in await admin.orders()}) == 4


async def test_with_bans_on_the_order_limit_429_starts_a_ban(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await admin.request(
        "POST", "/admin/limits", {"ban": True, "orders_per_interval": 1, "interval_ms": 60_000}
    )
    await perp_adapter.create_order(limit_buy("one"))
    with pytest.raises(RateLimited):
        await perp_adapter.create_order(limit_buy("two"))
    await asyncio.sleep(0.01)  # signed in a later millisecond than the 429's answer
    with pytest.raises(RateLimited):
        await perp_adapter.cancel_order("BTCUSDT", client_order_id="one")  # a cancel is an order request
    await admin.request("DELETE", "/admin/limits")  # lifts the ban and the counts
    cancelled = await perp_adapter.cancel_order("BTCUSDT", client_order_id="one")

    assert cancelled.status is OrderStatus.CANCELED
    log = await requests(admin, order="true")
    assert [(r["method"], r["status"], r["rule"]) for r in log] == [
        ("POST", 200, ""),
        ("POST", 429, "order_limit"),
        ("DELETE", 418, "ban"),
        ("DELETE", 200, ""),
    ]


async def test_bans_and_the_order_limit_are_off_by_default(perp_adapter: CcxtExchange, admin: Admin) -> None:
    limits = await admin.request("GET", "/admin/limits")
    await admin.fault(kind="http_error", status=429, retry_after=5, path=ORDER_PATH, times=1)
    with pytest.raises(RateLimited):
        await perp_adapter.create_order(limit_buy("default-1"))
    placed = await asyncio.gather(
        *(perp_adapter.create_order(limit_buy(f"default-{i}")) for i in range(1, 9))
    )

    assert (limits["ban"], limits["orders_per_interval"], limits["bans"]) == (False, 0, {})
    assert all(order.status is OrderStatus.NEW for order in placed)


async def test_limits_admin_rejects_bad_values(admin: Admin) -> None:
    url = admin.base_url + "/admin/limits"
    for body in ({"orders_per_interval": -1}, {"interval_ms": 0}, {"nope": 1}, {"request_log_size": 5}):
        async with admin.session.post(url, json=body) as response:
            assert response.status == 400, body
    async with admin.session.get(admin.base_url + "/admin/requests?order=maybe") as response:
        assert response.status == 400
    assert (await admin.request("GET", "/admin/limits"))["orders_per_interval"] == 0


@pytest.fixture
async def small_log_paper(tmp_path: Path) -> AsyncIterator[PaperExchange]:
    settings = paper_settings(
        tmp_path / "paper.sqlite", rate_limits=RateLimitSettings(request_log_size=5, ban=True)
    )
    exchange = PaperExchange(settings, source=ManualSource())
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


async def test_the_log_keeps_the_latest_requests_up_to_its_size_and_settings_configure_limits(
    small_log_paper: PaperExchange,
) -> None:
    async with aiohttp.ClientSession() as session:
        admin = Admin(small_log_paper.rest_url, session)
        for _ in range(8):
            async with session.get(small_log_paper.rest_url + "/fapi/v1/time") as response:
                assert response.status == 200
        answer = await admin.request("GET", "/admin/requests")
        limits = await admin.request("GET", "/admin/limits")

    assert [r["seq"] for r in answer["requests"]] == [4, 5, 6, 7, 8]
    assert (answer["evicted"], answer["capacity"]) == (3, 5)
    assert limits["ban"] is True
