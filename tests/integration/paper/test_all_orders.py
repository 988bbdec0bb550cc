"""Listing an account's orders (allOrders) as Binance answers it, and the adapter reading all of it.

Binance answers, from a start time (or an order id), the first ``limit`` orders created from
there, oldest first; only without either does it answer the most recent ``limit``. A reader that
wants every order since a time must page forward. Everything is real: the paper exchange driven
through the unmodified ccxt clients and the OpenSQT adapter over them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import OrderStatus
from tests.integration.paper.conftest import PERP, SPOT, Admin

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"


async def place_futures(usdm: Any, count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` resting buys, each created in a later millisecond than the one before (so a
    start time picks exactly one order); their allOrders entries, oldest first."""
    for i in range(count):
        await usdm.create_order(
            PERP, "limit", "buy", 0.01, 29_000 - 10 * i, {"clientOrderId": f"{prefix}-{i}"}
        )
        await asyncio.sleep(0.002)
    listed: list[dict[str, Any]] = await usdm.fapiPrivateGetAllOrders({"symbol": SYMBOL, "limit": 1000})
    assert [entry["clientOrderId"] for entry in listed] == [f"{prefix}-{i}" for i in range(count)]
    assert len({entry["time"] for entry in listed}) == count
    return listed


def client_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["clientOrderId"] for entry in entries]


async def test_all_orders_from_a_start_time_answers_the_oldest_limit_from_there(usdm: Any) -> None:
    listed = await place_futures(usdm, 8, "from")

    by_time = await usdm.fapiPrivateGetAllOrders(
        {"symbol": SYMBOL, "startTime": listed[2]["time"], "limit": 3}
    )
    by_id = await usdm.fapiPrivateGetAllOrders(
        {"symbol": SYMBOL, "orderId": listed[2]["orderId"], "limit": 3}
    )
    up_to_max = await usdm.fapiPrivateGetAllOrders(
        {"symbol": SYMBOL, "startTime": listed[0]["time"], "limit": 1000}
    )

    assert client_ids(by_time) == ["from-2", "from-3", "from-4"]
    assert client_ids(by_id) == ["from-2", "from-3", "from-4"]
    assert client_ids(up_to_max) == client_ids(listed)


async def test_all_orders_without_a_start_answers_the_newest_limit(usdm: Any) -> None:
    await place_futures(usdm, 8, "newest")

    newest = await usdm.fapiPrivateGetAllOrders({"symbol": SYMBOL, "limit": 3})

    assert client_ids(newest) == ["newest-5", "newest-6", "newest-7"]


async def test_spot_all_orders_from_a_start_time_answers_the_oldest_limit_from_there(spot: Any) -> None:
    for i in range(5):
        await spot.create_order(SPOT, "limit", "buy", 0.01, 29_000 - 10 * i, {"clientOrderId": f"spot-{i}"})
        await asyncio.sleep(0.002)
    listed = await spot.privateGetAllOrders({"symbol": SYMBOL})

    from_second = await spot.privateGetAllOrders(
        {"symbol": SYMBOL, "startTime": listed[1]["time"], "limit": 2}
    )
    newest = await spot.privateGetAllOrders({"symbol": SYMBOL, "limit": 2})

    assert client_ids(from_second) == ["spot-1", "spot-2"]
    assert client_ids(newest) == ["spot-3", "spot-4"]


@pytest.mark.parametrize("limit", [0, 1001])
@pytest.mark.parametrize("with_start", [True, False])
async def test_all_orders_limit_outside_1_to_1000_is_refused_and_changes_nothing(
    usdm: Any, admin: Admin, limit: int, with_start: bool
) -> None:
    await usdm.create_order(PERP, "limit", "buy", 0.01, 29_000, {"clientOrderId": "limit-check"})
    before = await admin.state()
    request: dict[str, Any] = {"symbol": SYMBOL, "limit": limit}
    if with_start:
        request["startTime"] = 0

    with pytest.raises(ccxt.BadRequest, match='"code":-1130'):
        await usdm.fapiPrivateGetAllOrders(request)

    assert await admin.state() == before


async def test_fetch_recent_orders_pages_through_more_orders_than_a_page(
    perp_adapter: CcxtExchange, usdm: Any
) -> None:
    listed = await place_futures(usdm, 20, "page")
    await perp_adapter.cancel_order(SYMBOL, client_order_id="page-19")  # the newest, and final

    every = await perp_adapter.fetch_recent_orders(SYMBOL, since_ms=listed[0]["time"], page_size=7)
    later = await perp_adapter.fetch_recent_orders(SYMBOL, since_ms=listed[12]["time"], page_size=7)
    one_page = await perp_adapter.fetch_recent_orders(SYMBOL, since_ms=listed[0]["time"])

    # a page is at most 7 orders: 20 come back only if the reader asked again from the newest
    assert [o.client_order_id for o in every] == [f"page-{i}" for i in range(20)]
    assert len({o.exchange_order_id for o in every}) == 20
    assert every[-1].status is OrderStatus.CANCELED
    assert [o.client_order_id for o in later] == [f"page-{i}" for i in range(12, 20)]
    assert [o.client_order_id for o in one_page] == [f"page-{i}" for i in range(20)]
