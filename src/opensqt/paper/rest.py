"""The REST subset of Binance spot (``/api/v3``), margin (``/sapi/v1``) and USDⓈ-M futures
(``/fapi``) that ccxt's ``binance`` and ``binanceusdm`` use.

Public: ping, time, exchangeInfo (``/dapi/v1/exchangeInfo`` answers an empty list so ccxt's
``binance`` loads its default market types), 24hr / price / book tickers, klines, depth;
futures also premiumIndex, fundingRate, fundingInfo. Signed: order (POST, GET, DELETE),
openOrders, allOpenOrders, allOrders, account, balance, positionRisk (v2 and v3), leverage,
leverageBracket, marginType, positionSide/dual, userTrades / myTrades, income,
commissionRate, margin order endpoints and margin account, capital/config/getall. User streams:
listenKey (futures), userDataStream (spot, legacy), userListenToken (margin).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from opensqt.model.enums import OrderType, Side, TimeInForce
from opensqt.model.money import ZERO
from opensqt.paper.auth import Principal
from opensqt.paper.balances import BalanceReports
from opensqt.paper.binance_errors import BinanceError, errors
from opensqt.paper.market_data import INTERVALS_MS
from opensqt.paper.records import Family, OrderParams, Wallet
from opensqt.paper.reports import price_text, qty_text
from opensqt.paper.venue import Listing
from opensqt.paper.wire import opt_decimal, opt_int, req_decimal, req_str, true_param

if TYPE_CHECKING:
    from opensqt.paper.app import PaperExchange

__all__ = ["ALL_ORDERS_LIMIT", "ALL_ORDERS_MAX", "RestApi", "json_response"]

#: allOrders answers this many orders unless ``limit`` says otherwise (at most ALL_ORDERS_MAX).
ALL_ORDERS_LIMIT = 500
ALL_ORDERS_MAX = 1000

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_SIDE_EFFECTS = ("NO_SIDE_EFFECT", "MARGIN_BUY", "AUTO_REPAY", "AUTO_BORROW_REPAY")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Call:
    principal: Principal
    params: dict[str, str]


class RestApi:
    """Route handlers over one :class:`~opensqt.paper.app.PaperExchange`."""

    def __init__(self, exchange: PaperExchange) -> None:
        self.exchange = exchange
        self.venue = exchange.venue
        self.reports = exchange.reports
        self.balances = BalanceReports(exchange.venue)

    def now(self) -> int:
        return self.exchange.clock.now_ms()

    def routes(self) -> list[web.RouteDef]:
        get, post, put, delete = web.get, web.post, web.put, web.delete
        public: list[tuple[str, Handler]] = [
            ("ping", self.ping),
            ("time", self.time),
            ("exchangeInfo", self.exchange_info),
            ("ticker/24hr", self.ticker_24h),
            ("ticker/price", self.ticker_price),
            ("ticker/bookTicker", self.book_ticker),
            ("klines", self.klines),
            ("depth", self.depth),
        ]
        routes: list[web.RouteDef] = []
        for path, handler in public:
            routes.append(get(f"/api/v3/{path}", handler))
            routes.append(get(f"/fapi/v1/{path}", handler))
        routes += [
            get("/fapi/v2/ticker/price", self.ticker_price),
            get("/dapi/v1/exchangeInfo", self.empty_exchange_info),
            get("/fapi/v1/premiumIndex", self.premium_index),
            get("/fapi/v1/fundingRate", self.funding_rate),
            get("/fapi/v1/fundingInfo", self.funding_info),
            # futures, signed
            post("/fapi/v1/order", self.new_order),
            get("/fapi/v1/order", self.query_order),
            delete("/fapi/v1/order", self.cancel_order),
            get("/fapi/v1/openOrder", self.query_open_order),
            get("/fapi/v1/openOrders", self.open_orders),
            delete("/fapi/v1/allOpenOrders", self.cancel_all),
            get("/fapi/v1/allOrders", self.all_orders),
            get("/fapi/v2/account", self.futures_account),
            get("/fapi/v3/account", self.futures_account),
            get("/fapi/v2/balance", self.futures_balance),
            get("/fapi/v3/balance", self.futures_balance),
            get("/fapi/v2/positionRisk", self.position_risk),
            get("/fapi/v3/positionRisk", self.position_risk),
            post("/fapi/v1/leverage", self.set_leverage),
            get("/fapi/v1/leverageBracket", self.leverage_bracket),
            post("/fapi/v1/marginType", self.margin_type),
            get("/fapi/v1/positionSide/dual", self.position_mode),
            post("/fapi/v1/positionSide/dual", self.set_position_mode),
            get("/fapi/v1/userTrades", self.user_trades),
            get("/fapi/v1/income", self.income),
            get("/fapi/v1/commissionRate", self.commission_rate),
            post("/fapi/v1/listenKey", self.new_listen_key),
            put("/fapi/v1/listenKey", self.keep_listen_key),
            delete("/fapi/v1/listenKey", self.close_listen_key),
            # spot, signed
            post("/api/v3/order", self.new_order),
            get("/api/v3/order", self.query_order),
            delete("/api/v3/order", self.cancel_order),
            get("/api/v3/openOrders", self.open_orders),
            delete("/api/v3/openOrders", self.cancel_all),
            get("/api/v3/allOrders", self.all_orders),
            get("/api/v3/account", self.spot_account),
            get("/api/v3/myTrades", self.user_trades),
            post("/api/v3/userDataStream", self.new_listen_key),
            put("/api/v3/userDataStream", self.keep_listen_key),
            delete("/api/v3/userDataStream", self.close_listen_key),
            # margin, signed
            post("/sapi/v1/margin/order", self.new_order),
            get("/sapi/v1/margin/order", self.query_order),
            delete("/sapi/v1/margin/order", self.cancel_order),
            get("/sapi/v1/margin/openOrders", self.open_orders),
            delete("/sapi/v1/margin/openOrders", self.cancel_all),
            get("/sapi/v1/margin/allOrders", self.all_orders),
            get("/sapi/v1/margin/account", self.margin_account),
            get("/sapi/v1/margin/myTrades", self.user_trades),
            get("/sapi/v1/margin/allPairs", self.margin_pairs),
            get("/sapi/v1/margin/isolated/allPairs", self.isolated_pairs),
            post("/sapi/v1/userListenToken", self.new_listen_token),
            get("/sapi/v1/capital/config/getall", self.coins),
        ]
        return routes

    # -- request plumbing -------------------------------------------------------------------

    @staticmethod
    def _family(request: web.Request) -> Family:
        return Family.USDM if request.path.startswith("/fapi") else Family.SPOT

    @staticmethod
    def _wallet(request: web.Request) -> Wallet:
        path = request.path
        if path.startswith("/fapi"):
            return Wallet.USDM
        return Wallet.MARGIN if path.startswith("/sapi") else Wallet.SPOT

    @staticmethod
    async def _raw(request: web.Request) -> tuple[str, str, dict[str, str]]:
        raw_query = request.raw_path.partition("?")[2]
        raw_body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(raw_body, keep_blank_values=True))
        return raw_query, raw_body, params

    async def _public(self, request: web.Request) -> dict[str, str]:
        return (await self._raw(request))[2]

    async def _signed(self, request: web.Request, *, trade: bool = False) -> _Call:
        raw_query, raw_body, params = await self._raw(request)
        principal = self.exchange.keys.verify_rest(
            request.headers.get("X-MBX-APIKEY"), raw_query, raw_body, params, self.now()
        )
        if (trade and not principal.can_trade) or principal.account not in self.venue.accounts:
            raise errors.invalid_api_key()
        return _Call(principal, params)

    def _user_stream_account(self, request: web.Request) -> str:
        principal = self.exchange.keys.principal(request.headers.get("X-MBX-APIKEY"))
        if principal.account not in self.venue.accounts:
            raise errors.invalid_api_key()
        return principal.account

    def _listing(self, family: Family, params: dict[str, str]) -> Listing:
        return self.venue.listing(family, req_str(params, "symbol"))

    def _listings(self, family: Family, params: dict[str, str]) -> list[Listing]:
        if params.get("symbol"):
            return [self._listing(family, params)]
        return self.venue.family_listings(family)

    # -- public ---------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.now()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response(self.reports.exchange_info(self._family(request), self.now()))

    async def empty_exchange_info(self, request: web.Request) -> web.Response:
        return json_response(self.reports.empty_exchange_info(self.now()))

    def _one_or_all(
        self, request: web.Request, params: dict[str, str], build: Callable[[Listing], Any]
    ) -> Any:
        family = self._family(request)
        if params.get("symbol"):
            return build(self._listing(family, params))
        return [build(listing) for listing in self.venue.family_listings(family)]

    async def ticker_24h(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        now = self.now()
        return json_response(self._one_or_all(request, params, lambda lst: self.reports.ticker_24h(lst, now)))

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        now = self.now()
        return json_response(
            self._one_or_all(request, params, lambda lst: self.reports.price_ticker(lst, now))
        )

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        now = self.now()
        return json_response(
            self._one_or_all(request, params, lambda lst: self.reports.book_ticker(lst, now))
        )

    async def klines(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        listing = self._listing(self._family(request), params)
        interval = req_str(params, "interval")
        if interval not in INTERVALS_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        limit = opt_int(params, "limit", 500) or 500
        if not 1 <= limit <= 1500:
            raise errors.invalid_value("limit")
        body = self.reports.klines(
            listing, interval, opt_int(params, "startTime"), opt_int(params, "endTime"), limit
        )
        return json_response(body)

    async def depth(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        listing = self._listing(self._family(request), params)
        top = self.venue.book_top(listing.family, listing.symbol) or (ZERO, ZERO)
        size = qty_text(listing, Decimal(1000))
        body: dict[str, Any] = {"lastUpdateId": self.venue.core.version}
        if listing.family is Family.USDM:
            body.update({"E": self.now(), "T": self.now()})
        body["bids"] = [[price_text(listing, top[0]), size]] if top[0] else []
        body["asks"] = [[price_text(listing, top[1]), size]] if top[1] else []
        return json_response(body)

    async def premium_index(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        now = self.now()
        return json_response(
            self._one_or_all(request, params, lambda lst: self.reports.premium_index(lst, now))
        )

    async def funding_rate(self, request: web.Request) -> web.Response:
        params = await self._public(request)
        listing = self._listing(Family.USDM, params) if params.get("symbol") else None
        limit = opt_int(params, "limit", 100) or 100
        body = self.reports.funding_history(
            listing, opt_int(params, "startTime"), opt_int(params, "endTime"), limit
        )
        return json_response(body)

    async def funding_info(self, request: web.Request) -> web.Response:
        return json_response(self.reports.funding_info())

    # -- orders ---------------------------------------------------------------------------

    def _order_params(self, params: dict[str, str], wallet: Wallet) -> tuple[OrderParams, str]:
        family = wallet.family
        symbol = req_str(params, "symbol")
        self.venue.listing(family, symbol)
        side_text = req_str(params, "side").upper()
        if side_text not in ("BUY", "SELL"):
            raise errors.invalid_side()
        wire_type = req_str(params, "type").upper()
        allowed = ("LIMIT", "MARKET") if family is Family.USDM else ("LIMIT", "MARKET", "LIMIT_MAKER")
        if wire_type not in allowed:
            raise errors.invalid_order_type()
        tif_text = params.get("timeInForce", "").upper()
        post_only = wire_type == "LIMIT_MAKER"
        time_in_force = TimeInForce.GTC
        if wire_type == "LIMIT":
            if not tif_text:
                raise errors.mandatory("timeInForce")
            tifs = ("GTC", "IOC", "FOK", "GTX") if family is Family.USDM else ("GTC", "IOC", "FOK")
            if tif_text not in tifs:
                raise errors.invalid_tif()
            if tif_text == "GTX":
                post_only = True
            else:
                time_in_force = TimeInForce(tif_text)
        elif tif_text and family is Family.SPOT:
            raise errors.not_required("timeInForce")
        quantity = opt_decimal(params, "quantity")
        quote_quantity = opt_decimal(params, "quoteOrderQty") if family is Family.SPOT else None
        if quantity is None and (wire_type != "MARKET" or quote_quantity is None):
            raise errors.mandatory("quantity")
        if quantity is not None and quote_quantity is not None:
            raise BinanceError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but not both.")
        price: Decimal | None = None
        if wire_type == "MARKET":
            if params.get("price") and family is Family.SPOT:
                raise errors.not_required("price")
        else:
            price = req_decimal(params, "price")
        client_id = params.get("newClientOrderId", "")
        if client_id and not _CLIENT_ID.match(client_id):
            raise errors.client_id_invalid(family.value)
        reduce_only = true_param(params, "reduceOnly") if family is Family.USDM else False
        position_side = params.get("positionSide", "BOTH").upper()
        if family is Family.USDM and position_side != "BOTH":
            raise errors.position_side()
        side_effect = "NO_SIDE_EFFECT"
        if wallet is Wallet.MARGIN:
            side_effect = params.get("sideEffectType", "NO_SIDE_EFFECT").upper()
            if side_effect not in _SIDE_EFFECTS:
                raise errors.invalid_value("sideEffectType")
            if params.get("isIsolated", "FALSE").upper() == "TRUE":
                raise errors.unsupported()
        response_type = params.get("newOrderRespType", "").upper()
        if not response_type:
            response_type = (
                "ACK" if family is Family.USDM else ("FULL" if wire_type != "LIMIT_MAKER" else "ACK")
            )
        if response_type not in (("ACK", "RESULT") if family is Family.USDM else ("ACK", "RESULT", "FULL")):
            raise errors.invalid_value("newOrderRespType")
        order_params = OrderParams(
            symbol=symbol,
            side=Side(side_text),
            order_type=OrderType.MARKET if wire_type == "MARKET" else OrderType.LIMIT,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            post_only=post_only,
            reduce_only=reduce_only,
            client_order_id=client_id,
            quote_quantity=quote_quantity,
            side_effect=side_effect,
            wire_type=wire_type,
            wire_time_in_force=tif_text if wire_type == "LIMIT" else "GTC",
        )
        return order_params, response_type

    async def new_order(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        wallet = self._wallet(request)
        order_params, response_type = self._order_params(call.params, wallet)
        order = self.venue.submit(call.principal.account, wallet, order_params, self.now())
        self.exchange.commit(force=True)
        if wallet is Wallet.USDM:
            return json_response(
                self.reports.futures_order(order, with_time=False, ack=response_type == "ACK")
            )
        return json_response(self.reports.spot_order(order, response_type.lower()))

    def _reference(self, params: dict[str, str]) -> tuple[int | None, str]:
        order_id = opt_int(params, "orderId")
        client_id = params.get("origClientOrderId", "")
        if order_id is None and not client_id:
            raise BinanceError(
                400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        return order_id, client_id

    def _order_body(self, wallet: Wallet, order: Any, kind: str = "query", cancel_id: str = "") -> Any:
        if wallet is Wallet.USDM:
            return self.reports.futures_order(order, with_time=kind == "query")
        return self.reports.spot_order(order, kind, cancel_client_id=cancel_id)

    async def query_order(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        wallet = self._wallet(request)
        listing = self._listing(wallet.family, call.params)
        order_id, client_id = self._reference(call.params)
        order = self.venue.find(call.principal.account, wallet, listing.symbol, order_id, client_id)
        return json_response(self._order_body(wallet, order))

    async def query_open_order(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        listing = self._listing(Family.USDM, call.params)
        order_id, client_id = self._reference(call.params)
        order = self.venue.find(call.principal.account, Wallet.USDM, listing.symbol, order_id, client_id)
        if order.status.is_final:
            raise BinanceError(400, -2013, "Order does not exist.")
        return json_response(self._order_body(Wallet.USDM, order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        wallet = self._wallet(request)
        listing = self._listing(wallet.family, call.params)
        order_id, client_id = self._reference(call.params)
        order = self.venue.cancel(
            call.principal.account, wallet, listing.symbol, order_id, client_id, self.now()
        )
        self.exchange.commit(force=True)
        cancel_id = call.params.get("newClientOrderId") or f"cancel_{order.exchange_order_id}"
        return json_response(self._order_body(wallet, order, "cancel", cancel_id))

    async def cancel_all(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        wallet = self._wallet(request)
        listing = self._listing(wallet.family, call.params)
        orders = self.venue.cancel_all(call.principal.account, wallet, listing.symbol, self.now())
        self.exchange.commit(force=True)
        if wallet is Wallet.USDM:
            return json_response({"code": 200, "msg": "The operation of cancel all open order is done."})
        return json_response(
            [
                self._order_body(wallet, order, "cancel", f"cancel_{order.exchange_order_id}")
                for order in orders
            ]
        )

    async def open_orders(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        wallet = self._wallet(request)
        symbol = call.params.get("symbol", "")
        orders = self.venue.open_orders(call.principal.account, wallet, symbol)
        return json_response([self._order_body(wallet, order) for order in orders])

    async def all_orders(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        wallet = self._wallet(request)
        listing = self._listing(wallet.family, call.params)
        limit = opt_int(call.params, "limit", ALL_ORDERS_LIMIT)
        if limit is None or not 1 <= limit <= ALL_ORDERS_MAX:
            raise errors.invalid_value("limit")
        from_id = opt_int(call.params, "orderId")
        start = opt_int(call.params, "startTime")
        end = opt_int(call.params, "endTime")
        if start is not None and end is not None and end < start:
            raise errors.invalid_value("endTime")
        orders = [
            order
            for order in self.venue.all_orders(call.principal.account, wallet, listing.symbol)
            if (from_id is None or int(order.exchange_order_id) >= from_id)
            and (start is None or order.created_ms >= start)
            and (end is None or order.created_ms <= end)
        ]
        # as Binance: from an order id or a start time, the first ``limit`` orders from there
        # (oldest first; a reader pages forward); otherwise the most recent ``limit``
        page = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
        return json_response([self._order_body(wallet, order) for order in page])

    # -- account --------------------------------------------------------------------------

    async def futures_account(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        version = 3 if request.path.startswith("/fapi/v3") else 2
        return json_response(
            self.balances.futures_account(call.principal.account, self.now(), version=version)
        )

    async def futures_balance(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        return json_response(self.balances.futures_balance(call.principal.account, self.now()))

    async def position_risk(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        version = 3 if request.path.startswith("/fapi/v3") else 2
        symbol = call.params.get("symbol") or None
        if symbol is not None:
            self.venue.listing(Family.USDM, symbol)
        body = self.balances.position_risk(call.principal.account, symbol, self.now(), version=version)
        return json_response(body)

    async def set_leverage(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        listing = self._listing(Family.USDM, call.params)
        text = req_str(call.params, "leverage")
        if not text.isdigit():
            raise errors.invalid_leverage(text)
        leverage = self.venue.set_leverage(call.principal.account, listing.symbol, int(text))
        self.exchange.commit(force=True)
        return json_response(
            {"leverage": int(leverage), "maxNotionalValue": "1000000000", "symbol": listing.symbol}
        )

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        symbol = call.params.get("symbol") or None
        if symbol is not None:
            self.venue.listing(Family.USDM, symbol)
            return json_response(self.balances.leverage_brackets(symbol))
        return json_response(self.balances.leverage_brackets(None))

    async def margin_type(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        self._listing(Family.USDM, call.params)
        if req_str(call.params, "marginType").upper() in ("CROSSED", "CROSS"):
            raise BinanceError(400, -4046, "No need to change margin type.")
        raise errors.unsupported()

    async def position_mode(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return json_response({"dualSidePosition": False})

    async def set_position_mode(self, request: web.Request) -> web.Response:
        call = await self._signed(request, trade=True)
        if true_param(call.params, "dualSidePosition"):
            raise errors.unsupported()
        raise BinanceError(400, -4059, "No need to change position side.")

    async def user_trades(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        wallet = self._wallet(request)
        listing = self._listing(wallet.family, call.params)
        limit = opt_int(call.params, "limit", 500) or 500
        start = opt_int(call.params, "startTime")
        end = opt_int(call.params, "endTime")
        order_id = opt_int(call.params, "orderId")
        from_id = opt_int(call.params, "fromId")
        trades = [
            trade
            for trade in self.venue.trades
            if trade.account == call.principal.account
            and trade.wallet is wallet
            and trade.symbol == listing.symbol
            and (start is None or trade.time_ms >= start)
            and (end is None or trade.time_ms <= end)
            and (order_id is None or trade.order_id == order_id)
            and (from_id is None or trade.trade_id >= from_id)
        ]
        trades = trades[:limit] if start is not None or from_id is not None else trades[-limit:]
        build = self.reports.futures_trade if wallet is Wallet.USDM else self.reports.spot_trade
        return json_response([build(trade) for trade in trades])

    async def income(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        params = call.params
        symbol = params.get("symbol", "")
        if symbol:
            self.venue.listing(Family.USDM, symbol)
        kind = params.get("incomeType", "")
        start = opt_int(params, "startTime")
        end = opt_int(params, "endTime")
        limit = opt_int(params, "limit", 100) or 100
        entries = [
            entry
            for entry in self.venue.ledger
            if entry.account == call.principal.account
            and entry.wallet is Wallet.USDM
            and (not symbol or entry.symbol == symbol)
            and (not kind or entry.kind == kind)
            and (start is None or entry.time_ms >= start)
            and (end is None or entry.time_ms <= end)
        ]
        entries = entries[:limit] if start is not None else entries[-limit:]
        return json_response([self.reports.income(entry) for entry in entries])

    async def commission_rate(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        listing = self._listing(Family.USDM, call.params)
        fees = listing.rules.fees
        return json_response(
            {
                "symbol": listing.symbol,
                "makerCommissionRate": format(fees.maker, "f"),
                "takerCommissionRate": format(fees.taker, "f"),
            }
        )

    async def spot_account(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        spot = self.venue.family_listings(Family.SPOT)
        fees = (spot[0].rules.fees.maker, spot[0].rules.fees.taker) if spot else (ZERO, ZERO)
        return json_response(self.balances.spot_account(call.principal.account, self.now(), fees))

    async def margin_account(self, request: web.Request) -> web.Response:
        call = await self._signed(request)
        return json_response(self.balances.margin_account(call.principal.account))

    async def margin_pairs(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return json_response(
            [
                {
                    "id": index + 1,
                    "symbol": listing.symbol,
                    "base": listing.instrument.base,
                    "quote": listing.instrument.quote,
                    "isMarginTrade": True,
                    "isBuyAllowed": True,
                    "isSellAllowed": True,
                }
                for index, listing in enumerate(self.venue.family_listings(Family.SPOT))
            ]
        )

    async def isolated_pairs(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return json_response([])

    async def coins(self, request: web.Request) -> web.Response:
        await self._signed(request)
        assets = sorted(
            {listing.instrument.base for listing in self.venue.listings.values()}
            | {listing.instrument.quote for listing in self.venue.listings.values()}
        )
        return json_response(
            [
                {
                    "coin": asset,
                    "name": asset,
                    "depositAllEnable": True,
                    "withdrawAllEnable": True,
                    "free": "0",
                    "locked": "0",
                    "freeze": "0",
                    "withdrawing": "0",
                    "ipoing": "0",
                    "ipoable": "0",
                    "storage": "0",
                    "isLegalMoney": False,
                    "trading": True,
                    "networkList": [],
                }
                for asset in assets
            ]
        )

    # -- user streams ---------------------------------------------------------------------

    async def new_listen_key(self, request: web.Request) -> web.Response:
        account = self._user_stream_account(request)
        wallet = Wallet.USDM if request.path.startswith("/fapi") else Wallet.SPOT
        key = self.exchange.hub.listen_key(account, wallet)
        self.exchange.commit(force=True)
        return json_response({"listenKey": key})

    async def keep_listen_key(self, request: web.Request) -> web.Response:
        account = self._user_stream_account(request)
        params = await self._public(request)
        if request.path.startswith("/api"):
            self.exchange.hub.check_listen_key(req_str(params, "listenKey"), account)
        elif not any(owner[0] == account for owner in self.exchange.hub.listen_keys.values()):
            raise errors.listen_key_unknown()
        return json_response({})

    async def close_listen_key(self, request: web.Request) -> web.Response:
        account = self._user_stream_account(request)
        params = await self._public(request)
        hub = self.exchange.hub
        if request.path.startswith("/api"):
            key = req_str(params, "listenKey")
            hub.check_listen_key(key, account)
            hub.close_listen_key(key)
        else:
            for key, owner in list(hub.listen_keys.items()):
                if owner == (account, Wallet.USDM):
                    hub.close_listen_key(key)
        self.exchange.commit(force=True)
        return json_response({})

    async def new_listen_token(self, request: web.Request) -> web.Response:
        account = self._user_stream_account(request)
        token, expiry = self.exchange.hub.listen_token(account)
        return json_response({"token": token, "expirationTime": expiry})
