"""Refusals: bad input, duplicates, unknown orders, funds and authentication get the error
Binance would send, the class ccxt raises for it, and change nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from opensqt.errors import AuthFailed, DuplicateOrder, InsufficientFunds, InvalidOrder, OrderNotFound
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderType, Side
from opensqt.paper import PaperExchange
from tests.integration.paper.conftest import (
    PERP,
    READ_KEY,
    READ_SECRET,
    SPOT,
    Admin,
    adapter_for,
    make_ccxt,
)

pytestmark = pytest.mark.integration

FUTURES_ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "29000.0",
}
SPOT_ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "29000.00",
}


def order(client_id: str, price: str = "29000.0", qty: str = "0.010") -> Order:
    return Order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        client_order_id=client_id,
    )


async def book_snapshot(admin: Admin) -> Any:
    state = await admin.state()
    return state["accounts"], state["order_count"], state["log_length"], state["core_version"]


FUTURES_CASES = [
    ({"symbol": "DOGEUSDT"}, '"code":-1121,', ccxt.BadSymbol),
    ({"price": "29000.05"}, '"code":-4014,', ccxt.BadRequest),
    ({"price": "29000.055"}, '"code":-1111,', ccxt.BadRequest),
    ({"quantity": "0.0105"}, '"code":-1111,', ccxt.BadRequest),
    ({"quantity": "0"}, '"code":-4004,', ccxt.BadRequest),
    ({"quantity": "0.001", "price": "1000.0"}, '"code":-2010,', ccxt.InvalidOrder),  # notional 1 < 5
    ({"quantity": "1e-3"}, '"code":-1100,', ccxt.BadRequest),
    ({"price": "abc"}, '"code":-1100,', ccxt.BadRequest),
    ({"price": None}, '"code":-1102,', ccxt.BadRequest),
    ({"timeInForce": None}, '"code":-1102,', ccxt.BadRequest),
    ({"side": "HOLD"}, '"code":-1117,', ccxt.BadRequest),
    ({"type": "TRAILING"}, '"code":-1116,', ccxt.BadRequest),
    ({"timeInForce": "GTD"}, '"code":-1115,', ccxt.BadRequest),
    ({"positionSide": "LONG"}, '"code":-4061,', ccxt.OperationRejected),
    ({"newClientOrderId": "has space"}, '"code":-4015,', ccxt.BadRequest),
    # 290 000 of notional on 10 000 at 20x; ccxt matches the message, not the code
    ({"quantity": "10", "price": "29000.0"}, "Account has insufficient balance", ccxt.InsufficientFunds),
]


@pytest.mark.parametrize(("change", "marker", "ccxt_class"), FUTURES_CASES)
async def test_bad_futures_order_gets_binances_code_and_changes_nothing(
    usdm: Any, admin: Admin, change: dict[str, str | None], marker: str, ccxt_class: type[Exception]
) -> None:
    request = {k: v for k, v in {**FUTURES_ORDER, **change}.items() if v is not None}
    before = await book_snapshot(admin)

    # the implicit API sends the parameters as given (create_order would round them first)
    with pytest.raises(ccxt_class) as raised:
        await usdm.fapiPrivatePostOrder(request)

    assert marker in str(raised.value)
    assert await book_snapshot(admin) == before


SPOT_CASES = [
    ({"symbol": "DOGEUSDT"}, "-1121", ccxt.BadSymbol),
    ({"price": "29000.005"}, "PRICE_FILTER", ccxt.InvalidOrder),
    ({"quantity": "0.000015"}, "LOT_SIZE", ccxt.InvalidOrder),
    ({"quantity": "0"}, "LOT_SIZE", ccxt.InvalidOrder),
    ({"quantity": "0.0001"}, "NOTIONAL", ccxt.BadRequest),  # 2.9 < 5
    ({"price": "29000.000000001"}, "-1111", ccxt.BadRequest),
    ({"type": "LIMIT_MAKER"}, "-1106", ccxt.BadRequest),  # timeInForce is not for LIMIT_MAKER
    ({"type": "MARKET", "timeInForce": None}, "-1106", ccxt.BadRequest),  # price is not for MARKET
    ({"quantity": None}, "-1102", ccxt.BadRequest),
    ({"quantity": "1"}, "Account has insufficient balance", ccxt.InsufficientFunds),
]


@pytest.mark.parametrize(("change", "marker", "ccxt_class"), SPOT_CASES)
async def test_bad_spot_order_gets_binances_code_and_changes_nothing(
    spot: Any, admin: Admin, change: dict[str, str | None], marker: str, ccxt_class: type[Exception]
) -> None:
    request = {k: v for k, v in {**SPOT_ORDER, **change}.items() if v is not None}
    before = await book_snapshot(admin)

    with pytest.raises(ccxt_class) as raised:
        await spot.privatePostOrder(request)

    assert marker in str(raised.value)
    assert await book_snapshot(admin) == before


async def test_adapter_reports_a_filter_failure_as_invalid_order(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    with pytest.raises(InvalidOrder):
        await perp_adapter.create_order(order("small", price="1000.0", qty="0.001"))

    assert await admin.orders() == []


async def test_duplicate_client_order_id_of_an_open_order_is_rejected(
    perp_adapter: CcxtExchange, usdm: Any, admin: Admin
) -> None:
    await perp_adapter.create_order(order("dup-1"))

    with pytest.raises(DuplicateOrder, match="ClientOrderId is duplicated"):
        await perp_adapter.create_order(order("dup-1", price="28000.0"))
    with pytest.raises(ccxt.InvalidOrder, match='"code":-2010'):
        await usdm.create_order(PERP, "limit", "buy", 0.01, 28000, {"clientOrderId": "dup-1"})

    log = await admin.orders()
    assert [(entry["execution"], Decimal(entry["order"]["price"])) for entry in log] == [
        ("NEW", Decimal(29000))
    ]
    # once the order is final, Binance accepts the id again
    await perp_adapter.cancel_order("BTCUSDT", client_order_id="dup-1")
    again = await perp_adapter.create_order(order("dup-1", price="28000.0"))
    assert again.price == Decimal("28000.0")
    assert (await perp_adapter.fetch_order("BTCUSDT", client_order_id="dup-1")).price == Decimal("28000.0")


async def test_duplicate_client_order_id_on_spot_is_duplicate_order_sent(spot: Any) -> None:
    await spot.create_order(SPOT, "limit", "buy", 0.01, 29000, {"clientOrderId": "sdup"})

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await spot.create_order(SPOT, "limit", "buy", 0.01, 28000, {"clientOrderId": "sdup"})


async def test_unknown_order_is_order_not_found_for_query_and_cancel(
    perp_adapter: CcxtExchange, usdm: Any
) -> None:
    with pytest.raises(OrderNotFound, match="-2013"):
        await perp_adapter.fetch_order("BTCUSDT", client_order_id="never-sent")
    with pytest.raises(OrderNotFound, match="-2011"):
        await perp_adapter.cancel_order("BTCUSDT", client_order_id="never-sent")
    await perp_adapter.create_order(order("done-1"))
    await perp_adapter.cancel_order("BTCUSDT", client_order_id="done-1")
    with pytest.raises(ccxt.OrderNotFound):
        await usdm.cancel_order(None, PERP, {"origClientOrderId": "done-1"})


async def test_insufficient_margin_is_insufficient_funds(perp_adapter: CcxtExchange, admin: Admin) -> None:
    with pytest.raises(InsufficientFunds):
        await perp_adapter.create_order(order("big", qty="20.000"))  # 580 000 at 20x needs 29 000

    assert await admin.orders() == []


async def test_bad_signature_is_refused_and_nothing_is_placed(paper: PaperExchange, admin: Admin) -> None:
    adapter = adapter_for(paper, MarketType.PERPETUAL, secret="not-the-secret")
    try:
        await adapter.load_markets()
        with pytest.raises(AuthFailed, match="-1022"):
            await adapter.create_order(order("forged"))
        with pytest.raises(AuthFailed, match="-1022"):
            await adapter.fetch_balances()
    finally:
        await adapter.close()

    assert await admin.orders() == []


async def test_unknown_api_key_is_refused(paper: PaperExchange) -> None:
    client = make_ccxt("binanceusdm", paper, key="no-such-key", secret="x")
    try:
        await client.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await client.fetch_balance()
    finally:
        await client.close()


async def test_read_only_key_reads_but_cannot_trade(paper: PaperExchange, admin: Admin) -> None:
    adapter = adapter_for(paper, MarketType.PERPETUAL, key=READ_KEY, secret=READ_SECRET)
    try:
        await adapter.load_markets()
        balances = await adapter.fetch_balances()
        with pytest.raises(AuthFailed, match="-2015"):
            await adapter.create_order(order("monitor-may-not"))
    finally:
        await adapter.close()

    assert balances["USDT"].total == Decimal(10_000)
    assert await admin.orders() == []


async def test_request_outside_the_receive_window_is_refused(paper: PaperExchange, usdm: Any) -> None:
    usdm.nonce = lambda: usdm.milliseconds() - 20_000  # recvWindow is 10 000 in ccxt

    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        await usdm.fetch_balance()
