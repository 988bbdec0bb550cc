"""The admin API: loopback only, and strict about its input."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from opensqt.paper import PaperExchange
from opensqt.paper.records import Family
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import PERP, Admin, make_ccxt, paper_settings

pytestmark = pytest.mark.integration


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (none in some sandboxes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture
async def lan_paper(tmp_path: Path) -> AsyncIterator[PaperExchange]:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite", host=address), source=ManualSource())
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


async def test_admin_api_answers_loopback_clients_only(lan_paper: PaperExchange) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{lan_paper.rest_url}/admin/state") as refused:
            assert refused.status == 403
        async with session.post(
            f"{lan_paper.rest_url}/admin/price", json={"symbol": "BTCUSDT", "price": "1"}
        ) as r:
            assert r.status == 403
        async with session.get(f"{lan_paper.rest_url}/fapi/v1/ping") as ping:
            assert ping.status == 200
    assert lan_paper.venue.last_price(Family.USDM, "BTCUSDT") == Decimal(
        30000
    )  # the refused push did nothing


async def test_admin_api_rejects_malformed_bodies(admin: Admin) -> None:
    url = admin.base_url
    async with admin.session.post(
        f"{url}/admin/price", json={"symbol": "BTCUSDT", "price": 1.5}
    ) as float_price:
        assert float_price.status == 400
    async with admin.session.post(f"{url}/admin/price", json={"symbol": "NOPE", "price": "1"}) as unknown:
        assert unknown.status == 400
    async with admin.session.post(f"{url}/admin/faults", json={"kind": "meteor"}) as fault:
        assert fault.status == 400
    async with admin.session.post(
        f"{url}/admin/faults", json={"kind": "http_error", "status": 500}
    ) as status:
        assert status.status == 400
    assert (await admin.state())["faults"] == {"rest": [], "stale_feed": False}


async def test_funding_at_next_settles_the_scheduled_period_and_moves_the_schedule_on(
    admin: Admin, paper: PaperExchange
) -> None:
    scheduled = paper.venue.funding["BTCUSDT"].next_ms
    await admin.request("POST", "/admin/funding", {"symbol": "BTCUSDT", "rate": "-0.0005", "at": "next"})

    state = paper.venue.funding["BTCUSDT"]
    assert state.next_ms == scheduled + 8 * 3_600_000
    assert state.rate == Decimal("-0.0005")
    assert paper.venue.funding_history["BTCUSDT"][-1][:2] == (scheduled, Decimal("-0.0005"))
    async with admin.session.get(f"{admin.base_url}/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"}) as r:
        index = await r.json()
    assert (index["nextFundingTime"], index["lastFundingRate"]) == (state.next_ms, "-0.00050000")

    async with admin.session.post(
        f"{admin.base_url}/admin/funding", json={"symbol": "BTCUSDT", "at": "tomorrow"}
    ) as bad:
        assert bad.status == 400
    assert paper.venue.funding["BTCUSDT"].next_ms == state.next_ms  # nothing changed


async def test_the_order_log_can_be_read_incrementally(admin: Admin, paper: PaperExchange) -> None:
    client = make_ccxt("binanceusdm", paper)
    try:
        for n in range(3):
            await client.create_order(
                PERP, "limit", "buy", 0.001, 25_000 + n, {"newClientOrderId": f"inc-{n}"}
            )
    finally:
        await client.close()
    everything = await admin.request("GET", "/admin/orders")
    seqs = [int(e["seq"]) for e in everything]
    assert len(seqs) == 3
    async with admin.session.get(f"{admin.base_url}/admin/orders", params={"after": str(seqs[0])}) as r:
        assert [e["order"]["client_order_id"] for e in await r.json()] == ["inc-1", "inc-2"]
    async with admin.session.get(f"{admin.base_url}/admin/orders", params={"after": str(seqs[-1])}) as r:
        assert await r.json() == []
    async with admin.session.get(f"{admin.base_url}/admin/orders", params={"after": "soon"}) as bad:
        assert bad.status == 400


async def test_price_changes_and_answers_carry_the_hosts_monotonic_time(
    admin: Admin, paper: PaperExchange
) -> None:
    """Benchmarks measure tick-to-order from the venue's own reading of the monotonic clock:
    when a price was applied, and when an order request was answered."""
    before = time.monotonic() * 1000
    moved = await admin.price("BTCUSDT", "30100", family="usdm")
    after_price = time.monotonic() * 1000
    assert moved["applied"] is True
    assert before <= moved["applied_monotonic_ms"] <= after_price
    client = make_ccxt("binanceusdm", paper)
    try:
        await client.create_order(PERP, "limit", "buy", 0.001, 25_000, {"newClientOrderId": "mono-1"})
    finally:
        await client.close()
    answered_by = time.monotonic() * 1000
    log = await admin.request("GET", "/admin/requests?order=true")
    (record,) = [r for r in log["requests"] if r["client_order_id"] == "mono-1"]
    assert after_price <= record["monotonic_ms"] <= record["answered_monotonic_ms"] <= answered_by
