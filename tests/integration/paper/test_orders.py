"""Markets and orders through the unmodified ccxt clients and the OpenSQT adapter."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from opensqt.errors import Rejected
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side, TimeInForce
from opensqt.paper import PaperExchange
from tests.integration.paper.conftest import PERP, SPOT, Admin, adapter_for, next_update

pytestmark = pytest.mark.integration


def limit(client_id: str, side: Side, qty: str, price: str, **fields: Any) -> Order:
    return Order(
        symbol="BTCUSDT",
        side=side,
        order_type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        client_order_id=client_id,
        **fields,
    )


async def test_binanceusdm_loads_the_perpetuals_with_their_filters(usdm: Any) -> None:
    market = usdm.market(PERP)

    assert market["swap"]
    assert market["linear"]
    assert market["settle"] == "USDT"
    assert market["precision"]["price"] == 0.1
    assert market["precision"]["amount"] == 0.001
    assert market["limits"]["amount"]["min"] == 0.001
    assert market["limits"]["cost"]["min"] == 5
    assert set(usdm.symbols) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}


async def test_binance_loads_spot_markets_with_its_default_market_types(spot: Any) -> None:
    market = spot.market(SPOT)

    assert market["spot"]
    assert market["margin"]
    assert market["precision"]["price"] == 0.01
    assert market["limits"]["cost"]["min"] == 5
    # ccxt's binance also loads the futures it finds (linear from fapi, none from dapi)
    assert "BTC/USDT:USDT" in spot.symbols


async def test_adapter_loads_instruments_with_the_venue_rules(perp_adapter: CcxtExchange) -> None:
    instrument = perp_adapter.instrument("BTCUSDT")

    assert instrument.tick_size == Decimal("0.1")
    assert instrument.step_size == Decimal("0.001")
    assert instrument.min_notional == Decimal(5)


async def test_limit_order_is_placed_fetched_by_client_id_and_cancelled(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    placed = await perp_adapter.create_order(limit("grid-1", Side.BUY, "0.010", "29900.0"))
    fetched = await perp_adapter.fetch_order("BTCUSDT", client_order_id="grid-1")
    cancelled = await perp_adapter.cancel_order("BTCUSDT", client_order_id="grid-1")
    after = await perp_adapter.fetch_order("BTCUSDT", client_order_id="grid-1")

    assert placed.status is OrderStatus.NEW
    assert placed.exchange_order_id
    assert fetched.exchange_order_id == placed.exchange_order_id
    assert (fetched.price, fetched.quantity) == (Decimal("29900.0"), Decimal("0.010"))
    assert cancelled.status is OrderStatus.CANCELED
    assert after.status is OrderStatus.CANCELED
    assert await perp_adapter.fetch_open_orders("BTCUSDT") == []
    assert [entry["execution"] for entry in await admin.orders()] == ["NEW", "CANCELED"]


async def test_limit_buy_fills_as_maker_when_the_market_trades_through_it(
    perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await perp_adapter.create_order(limit("grid-2", Side.BUY, "0.010", "29900.0"))

    await admin.price("BTCUSDT", "29900.0")  # touching is not enough (fill rule: through)
    touched = await perp_adapter.fetch_order("BTCUSDT", client_order_id="grid-2")
    await admin.price("BTCUSDT", "29899.9")
    filled = await perp_adapter.fetch_order("BTCUSDT", client_order_id="grid-2")

    assert touched.status is OrderStatus.NEW
    assert filled.status is OrderStatus.FILLED
    assert (filled.filled_qty, filled.average_price) == (Decimal("0.010"), Decimal("29900.0"))
    trade = (await admin.request("GET", "/admin/trades"))[0]
    assert trade["maker"] is True
    assert Decimal(trade["commission"]) == Decimal("0.010") * Decimal("29900.0") * Decimal("0.0002")


async def test_limit_sell_fills_when_the_market_rises_through_it(usdm: Any, admin: Admin) -> None:
    await usdm.create_order(PERP, "market", "buy", 0.02, None, {"clientOrderId": "open-long"})
    await usdm.create_order(
        PERP, "limit", "sell", 0.02, 30100, {"clientOrderId": "take-profit", "reduceOnly": True}
    )

    await admin.price("BTCUSDT", "30100.1")
    order = await usdm.fetch_order(None, PERP, {"origClientOrderId": "take-profit"})

    assert order["status"] == "closed"
    assert order["reduceOnly"] is True
    assert await usdm.fetch_positions([PERP]) == []


async def test_ioc_that_cannot_take_expires_and_fok_that_can_fills(perp_adapter: CcxtExchange) -> None:
    ioc = await perp_adapter.create_order(
        limit("ioc-1", Side.BUY, "0.010", "29000.0", time_in_force=TimeInForce.IOC)
    )
    fok = await perp_adapter.create_order(
        limit("fok-1", Side.BUY, "0.010", "30100.0", time_in_force=TimeInForce.FOK)
    )

    assert ioc.status is OrderStatus.EXPIRED
    assert ioc.filled_qty == 0
    assert fok.status is OrderStatus.FILLED
    assert fok.average_price == Decimal("30000.0")


async def test_post_only_order_that_would_take_is_rejected_and_not_recorded(usdm: Any, admin: Admin) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await usdm.create_order(
            PERP, "limit", "buy", 0.01, 30100, {"postOnly": True, "clientOrderId": "maker-1"}
        )

    resting = await usdm.create_order(
        PERP, "limit", "buy", 0.01, 29900, {"postOnly": True, "clientOrderId": "maker-2"}
    )

    assert resting["status"] == "open"
    assert resting["postOnly"] is True
    assert [entry["order"]["client_order_id"] for entry in await admin.orders()] == ["maker-2"]


async def test_spot_limit_maker_that_would_take_is_rejected(spot: Any, admin: Admin) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await spot.create_order(SPOT, "limit", "buy", 0.01, 30100, {"postOnly": True})

    assert await admin.orders() == []


async def test_adapter_post_only_order_that_would_take_is_rejected(perp_adapter: CcxtExchange) -> None:
    with pytest.raises(Rejected, match="OrderImmediatelyFillable"):
        await perp_adapter.create_order(limit("maker-3", Side.BUY, "0.010", "30100.0", post_only=True))


async def test_reduce_only_order_without_a_position_is_rejected(perp_adapter: CcxtExchange) -> None:
    with pytest.raises(Exception, match="ReduceOnly Order is rejected"):
        await perp_adapter.create_order(limit("ro-1", Side.SELL, "0.010", "30100.0", reduce_only=True))


async def test_market_order_fills_at_the_last_price_as_taker(usdm: Any, admin: Admin) -> None:
    order = await usdm.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "mkt-1"})

    assert order["status"] == "closed"
    assert order["average"] == 30000.0
    trade = (await usdm.fetch_my_trades(PERP))[0]
    assert trade["takerOrMaker"] == "taker"
    assert trade["fee"]["cost"] == pytest.approx(0.01 * 30000 * 0.0005)


async def test_spot_order_is_placed_fetched_and_cancelled_by_client_id(
    paper: PaperExchange, admin: Admin
) -> None:
    adapter = adapter_for(paper, MarketType.SPOT)
    try:
        await adapter.load_markets()
        placed = await adapter.create_order(limit("spot-1", Side.BUY, "0.01", "29000.00"))
        balances = await adapter.fetch_balances()
        cancelled = await adapter.cancel_order("BTCUSDT", client_order_id="spot-1")
        fetched = await adapter.fetch_order("BTCUSDT", client_order_id="spot-1")
    finally:
        await adapter.close()

    assert placed.status is OrderStatus.NEW
    # a resting spot BUY locks its cost (its commission comes out of the BTC it receives)
    assert balances["USDT"].used == Decimal("290.00")
    assert cancelled.status is OrderStatus.CANCELED
    assert fetched.status is OrderStatus.CANCELED
    state = await admin.state()
    assert state["accounts"]["main"]["spot"]["locked"] == {}


async def test_spot_market_buy_by_quote_amount_fills_and_charges_the_fee(spot: Any, admin: Admin) -> None:
    order = await spot.create_order(SPOT, "market", "buy", 0.01, 30000)  # ccxt sends quoteOrderQty=300

    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert (order["fee"]["cost"], order["fee"]["currency"]) == (0.00001, "BTC")
    balance = await spot.fetch_balance()
    # Binance spot without BNB fees: the 0.1% commission is taken from the BTC received
    assert Decimal(str(balance["BTC"]["total"])) == Decimal("0.00999")
    assert Decimal(str(balance["USDT"]["total"])) == Decimal(10_000) - Decimal(300)


async def test_margin_sell_borrows_the_base_asset_and_buy_back_repays(spot: Any, admin: Admin) -> None:
    params = {"marginMode": "cross", "sideEffectType": "MARGIN_BUY"}
    await spot.create_order(SPOT, "market", "sell", 0.1, None, params)
    borrowed = await spot.fetch_balance({"type": "margin"})
    await admin.price("BTCUSDT", "29000.00", family="spot")
    await spot.create_order(
        SPOT, "market", "buy", 0.1, None, {"marginMode": "cross", "sideEffectType": "AUTO_REPAY"}
    )
    repaid = await spot.fetch_balance({"type": "margin"})

    assert borrowed["BTC"]["debt"] == 0.1
    # the buy's commission (0.1%) came out of the BTC it received: that much stays owed, as on
    # Binance (buy the commission too to close a margin short completely)
    assert Decimal(str(repaid["BTC"]["debt"])) == Decimal("0.0001")
    # short 0.1 from 30000 to 29000: +100, the sell's fee 3.0 in USDT
    assert Decimal(str(repaid["USDT"]["total"])) == Decimal(10_000) + Decimal(100) - Decimal("3.0")


async def test_margin_borrowing_beyond_three_times_equity_is_refused(spot: Any) -> None:
    params = {"marginMode": "cross", "sideEffectType": "MARGIN_BUY"}
    with pytest.raises(ccxt.InsufficientFunds):
        await spot.create_order(SPOT, "market", "sell", 0.7, None, params)  # 21 000 of debt on 10 000

    order = await spot.create_order(SPOT, "market", "sell", 0.6, None, params)  # 18 000: within 3x
    assert order["status"] == "closed"


async def test_spot_sell_without_the_asset_is_insufficient_funds(spot: Any, admin: Admin) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await spot.create_order(SPOT, "limit", "sell", 0.01, 31000)

    assert await admin.orders() == []


def market_buy(client_id: str, qty: str) -> Order:
    return Order(
        symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(qty),
        client_order_id=client_id,
    )  # fmt: skip


async def test_a_spot_buys_base_asset_commission_is_reported_by_the_placement_a_lookup_and_the_stream(
    paper: PaperExchange, admin: Admin
) -> None:
    adapter = adapter_for(paper, MarketType.SPOT)
    try:
        await adapter.load_markets()
        placed = await adapter.create_order(market_buy("fee-1", "0.01"))
        looked_up = await adapter.fetch_order("BTCUSDT", client_order_id="fee-1")
        streamed = await next_update(
            adapter.watch_orders("BTCUSDT"), lambda: adapter.create_order(market_buy("fee-2", "0.02"))
        )
        sold = await adapter.create_order(replace(market_buy("fee-3", "0.01"), side=Side.SELL))
        balances = await adapter.fetch_balances()
    finally:
        await adapter.close()

    # 0.1% of what each buy filled, taken from the BTC it received (the placement's fills; a
    # look-up by client id reads the order's trades; the stream's one trade is the whole fill)
    assert (placed.filled_qty, placed.base_commission) == (Decimal("0.01"), Decimal("0.00001"))
    assert looked_up.base_commission == Decimal("0.00001")
    (fill,) = [o for o in streamed if o.status is OrderStatus.FILLED]
    assert (fill.client_order_id, fill.base_commission) == ("fee-2", Decimal("0.00002"))
    assert sold.base_commission == 0  # a sell pays in USDT
    assert balances["BTC"].total == Decimal("0.03") - Decimal("0.00003") - Decimal("0.01")


async def test_a_perpetual_order_reports_no_base_asset_commission(paper: PaperExchange) -> None:
    adapter = adapter_for(paper, MarketType.PERPETUAL)
    try:
        await adapter.load_markets()
        placed = await adapter.create_order(market_buy("perp-fee-1", "0.01"))
        looked_up = await adapter.fetch_order("BTCUSDT", client_order_id="perp-fee-1")
    finally:
        await adapter.close()

    assert placed.status is OrderStatus.FILLED
    assert not placed.base_commission  # USDⓈ-M charges USDT
    assert not looked_up.base_commission
