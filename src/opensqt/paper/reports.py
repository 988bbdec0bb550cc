"""Binance JSON bodies (REST) for the paper venue's markets, orders, trades and income, with
numbers formatted as Binance formats them (see :mod:`opensqt.paper.wire`). Balances and
positions are in :mod:`opensqt.paper.balances`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from opensqt.model.enums import OrderStatus, OrderType, Side
from opensqt.model.money import ZERO
from opensqt.model.resources import Order
from opensqt.paper.market_data import INTERVALS_MS, Candle
from opensqt.paper.records import Family, LedgerEntry, OrderExtra, TradeRecord, Wallet
from opensqt.paper.venue import Listing, PaperVenue
from opensqt.paper.wire import SPOT_DECIMALS, fmt

__all__ = ["Reports", "money_text", "price_text", "qty_text", "quote_text"]

_RATE_DECIMALS = 8
_DELIVERY_PERPETUAL = 4133404800000
_ONBOARD = 1569398400000
_MAX_PRICE = Decimal(10_000_000)

_SPOT_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
]
_FUTURES_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]


def price_text(listing: Listing, value: Decimal) -> str:
    """A price as the listing's API family formats it."""
    return fmt(value, listing.price_decimals if listing.family is Family.USDM else SPOT_DECIMALS)


def qty_text(listing: Listing, value: Decimal) -> str:
    """A base quantity as the listing's API family formats it."""
    return fmt(value, listing.qty_decimals if listing.family is Family.USDM else SPOT_DECIMALS)


def quote_text(listing: Listing, value: Decimal) -> str:
    """A quote amount (price x quantity), exact on the futures API up to its decimals."""
    if listing.family is Family.SPOT:
        return fmt(value, SPOT_DECIMALS)
    return fmt(value, max(5, listing.price_decimals + listing.qty_decimals))


def money_text(value: Decimal) -> str:
    """A balance, PnL, fee or margin figure (8 decimals)."""
    return fmt(value, 8)


class Reports:
    """Builds the REST bodies; one instance per venue."""

    def __init__(self, venue: PaperVenue) -> None:
        self.venue = venue

    # -- market data ------------------------------------------------------------------------

    def exchange_info(self, family: Family, now_ms: int) -> dict[str, Any]:
        listings = self.venue.family_listings(family)
        if family is Family.USDM:
            quotes = sorted({listing.instrument.quote for listing in listings})
            return {
                "timezone": "UTC",
                "serverTime": now_ms,
                "futuresType": "U_MARGINED",
                "rateLimits": _FUTURES_RATE_LIMITS,
                "exchangeFilters": [],
                "assets": [
                    {"asset": asset, "marginAvailable": True, "autoAssetExchange": "-10000"}
                    for asset in quotes
                ],
                "symbols": [self._futures_symbol(listing) for listing in listings],
            }
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": _SPOT_RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [self._spot_symbol(listing) for listing in listings],
        }

    @staticmethod
    def empty_exchange_info(now_ms: int) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [],
        }

    def _futures_symbol(self, listing: Listing) -> dict[str, Any]:
        instrument = listing.instrument
        p, q = listing.price_decimals, listing.qty_decimals
        return {
            "symbol": instrument.symbol,
            "pair": instrument.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": _DELIVERY_PERPETUAL,
            "onboardDate": _ONBOARD,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": instrument.base,
            "quoteAsset": instrument.quote,
            "marginAsset": instrument.quote,
            "pricePrecision": p,
            "quantityPrecision": q,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(instrument.tick_size, p),
                    "maxPrice": fmt(_MAX_PRICE, p),
                    "tickSize": fmt(instrument.tick_size, p),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(instrument.min_qty, q),
                    "maxQty": fmt(listing.max_qty, q),
                    "stepSize": fmt(instrument.step_size, q),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(instrument.min_qty, q),
                    "maxQty": fmt(listing.max_qty, q),
                    "stepSize": fmt(instrument.step_size, q),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": format(instrument.min_notional.normalize(), "f")},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT", "MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "permissionSets": ["GRID", "COPY"],
        }

    def _spot_symbol(self, listing: Listing) -> dict[str, Any]:
        instrument = listing.instrument
        d = SPOT_DECIMALS
        return {
            "symbol": instrument.symbol,
            "status": "TRADING",
            "baseAsset": instrument.base,
            "baseAssetPrecision": 8,
            "quoteAsset": instrument.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(instrument.tick_size, d),
                    "maxPrice": fmt(_MAX_PRICE, d),
                    "tickSize": fmt(instrument.tick_size, d),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(instrument.min_qty, d),
                    "maxQty": fmt(listing.max_qty, d),
                    "stepSize": fmt(instrument.step_size, d),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(ZERO, d),
                    "maxQty": fmt(listing.max_qty, d),
                    "stepSize": fmt(ZERO, d),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(instrument.min_notional, d),
                    "applyMinToMarket": True,
                    "maxNotional": fmt(Decimal(9_000_000), d),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "NONE"],
        }

    def ticker_24h(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        family, symbol = listing.family, listing.symbol
        stats = self.venue.candles[(family, symbol)].day_stats(now_ms)
        last = self.venue.last_price(family, symbol) or ZERO
        open_ = stats.open if stats else last
        change = last - open_
        percent = change * 100 / open_ if open_ else ZERO
        volume = stats.volume if stats else ZERO
        quote_volume = stats.quote_volume if stats else ZERO
        weighted = quote_volume / volume if volume else last
        body: dict[str, Any] = {
            "symbol": symbol,
            "priceChange": price_text(listing, change),
            "priceChangePercent": fmt(percent, 3),
            "weightedAvgPrice": price_text(listing, weighted),
        }
        if family is Family.SPOT:
            body["prevClosePrice"] = price_text(listing, open_)
        body["lastPrice"] = price_text(listing, last)
        body["lastQty"] = qty_text(listing, ZERO)
        if family is Family.SPOT:
            top = self.venue.book_top(family, symbol) or (ZERO, ZERO)
            body.update(
                {
                    "bidPrice": price_text(listing, top[0]),
                    "bidQty": qty_text(listing, ZERO),
                    "askPrice": price_text(listing, top[1]),
                    "askQty": qty_text(listing, ZERO),
                }
            )
        body.update(
            {
                "openPrice": price_text(listing, open_),
                "highPrice": price_text(listing, stats.high if stats else last),
                "lowPrice": price_text(listing, stats.low if stats else last),
                "volume": qty_text(listing, volume),
                "quoteVolume": quote_text(listing, quote_volume),
                "openTime": stats.open_ms if stats else now_ms,
                "closeTime": now_ms,
                "firstId": 0,
                "lastId": stats.trades if stats else 0,
                "count": stats.trades if stats else 0,
            }
        )
        return body

    def book_ticker(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        top = self.venue.book_top(listing.family, listing.symbol) or (ZERO, ZERO)
        body: dict[str, Any] = {
            "symbol": listing.symbol,
            "bidPrice": price_text(listing, top[0]),
            "bidQty": qty_text(listing, Decimal(1000)),
            "askPrice": price_text(listing, top[1]),
            "askQty": qty_text(listing, Decimal(1000)),
        }
        if listing.family is Family.USDM:
            body["time"] = now_ms
        return body

    def price_ticker(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        last = self.venue.last_price(listing.family, listing.symbol) or ZERO
        body: dict[str, Any] = {"symbol": listing.symbol, "price": price_text(listing, last)}
        if listing.family is Family.USDM:
            body["time"] = now_ms
        return body

    def kline_row(self, listing: Listing, candle: Candle, interval_ms: int) -> list[Any]:
        return [
            candle.open_ms,
            price_text(listing, candle.open),
            price_text(listing, candle.high),
            price_text(listing, candle.low),
            price_text(listing, candle.close),
            qty_text(listing, candle.volume),
            candle.open_ms + interval_ms - 1,
            quote_text(listing, candle.quote_volume),
            candle.trades,
            qty_text(listing, ZERO),
            quote_text(listing, ZERO),
            "0",
        ]

    def klines(
        self, listing: Listing, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        interval_ms = INTERVALS_MS[interval]
        book = self.venue.candles[(listing.family, listing.symbol)]
        return [
            self.kline_row(listing, candle, interval_ms)
            for candle in book.candles(interval_ms, start_ms=start_ms, end_ms=end_ms, limit=limit)
        ]

    def premium_index(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        venue = self.venue
        mark = venue.last_price(Family.USDM, listing.symbol) or ZERO
        index = venue.index_price(listing.symbol) or mark
        funding = venue.funding[listing.symbol]
        return {
            "symbol": listing.symbol,
            "markPrice": fmt(mark, 8),
            "indexPrice": fmt(index, 8),
            "estimatedSettlePrice": fmt(index, 8),
            "lastFundingRate": fmt(funding.rate, _RATE_DECIMALS),
            "interestRate": "0.00010000",
            "nextFundingTime": funding.next_ms,
            "time": now_ms,
        }

    def funding_history(
        self, listing: Listing | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        rows: list[tuple[int, str, Decimal, Decimal]] = []
        for symbol, history in self.venue.funding_history.items():
            if listing is not None and symbol != listing.symbol:
                continue
            rows.extend((time_ms, symbol, rate, mark) for time_ms, rate, mark in history)
        rows.sort()
        rows = [
            row
            for row in rows
            if (start_ms is None or row[0] >= start_ms) and (end_ms is None or row[0] <= end_ms)
        ]
        rows = rows[:limit] if start_ms is not None else rows[-limit:]
        return [
            {
                "symbol": symbol,
                "fundingRate": fmt(rate, _RATE_DECIMALS),
                "fundingTime": time_ms,
                "markPrice": fmt(mark, 8),
            }
            for time_ms, symbol, rate, mark in rows
        ]

    def funding_info(self) -> list[dict[str, Any]]:
        return [
            {
                "symbol": listing.symbol,
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": listing.funding_interval_hours,
                "disclaimer": False,
            }
            for listing in self.venue.family_listings(Family.USDM)
        ]

    # -- orders -----------------------------------------------------------------------------

    def _extra(self, order: Order) -> OrderExtra:
        return self.venue.extras[int(order.exchange_order_id)]

    def futures_order(self, order: Order, *, with_time: bool = True, ack: bool = False) -> dict[str, Any]:
        listing = self.venue.listing(Family.USDM, order.symbol)
        extra = self._extra(order)
        filled = ZERO if ack else order.filled_qty
        cum_quote = ZERO if ack else extra.cum_quote
        average = ZERO if ack or not filled else order.average_price
        status = OrderStatus.NEW if ack else order.status
        price = "0" if order.order_type is OrderType.MARKET else price_text(listing, order.price)
        body: dict[str, Any] = {
            "orderId": int(order.exchange_order_id),
            "symbol": order.symbol,
            "status": status.value,
            "clientOrderId": order.client_order_id,
            "price": price,
            "avgPrice": fmt(average, max(5, listing.price_decimals)),
            "origQty": qty_text(listing, order.quantity),
            "executedQty": qty_text(listing, filled),
            "cumQty": qty_text(listing, filled),
            "cumQuote": quote_text(listing, cum_quote),
            "timeInForce": extra.wire_time_in_force,
            "type": extra.wire_type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side.value,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": extra.wire_type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
        }
        if with_time:
            body["time"] = order.created_ms
        body["updateTime"] = order.created_ms if ack else order.updated_ms
        return body

    def spot_order(self, order: Order, kind: str, *, cancel_client_id: str = "") -> dict[str, Any]:
        """A spot/margin order body: ``kind`` is ``ack``, ``result``, ``full`` (new order),
        ``query`` or ``cancel``."""
        extra = self._extra(order)
        margin = extra.wallet is Wallet.MARGIN
        d = SPOT_DECIMALS
        order_id = int(order.exchange_order_id)
        if kind == "ack":
            body: dict[str, Any] = {
                "symbol": order.symbol,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                "transactTime": order.created_ms,
            }
            if margin:
                body["isIsolated"] = False
            return body
        price = fmt(order.price if order.order_type is OrderType.LIMIT else ZERO, d)
        common = {
            "price": price,
            "origQty": fmt(order.quantity, d),
            "executedQty": fmt(order.filled_qty, d),
            "cummulativeQuoteQty": fmt(extra.cum_quote, d),
            "status": order.status.value,
            "timeInForce": extra.wire_time_in_force,
            "type": extra.wire_type,
            "side": order.side.value,
        }
        if kind == "cancel":
            body = {
                "symbol": order.symbol,
                "origClientOrderId": order.client_order_id,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": cancel_client_id,
                "transactTime": order.updated_ms,
                **common,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        elif kind == "query":
            body = {
                "symbol": order.symbol,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                **common,
                "stopPrice": fmt(ZERO, d),
                "icebergQty": fmt(ZERO, d),
                "time": order.created_ms,
                "updateTime": order.updated_ms,
                "isWorking": order.status.is_working,
                "workingTime": order.created_ms,
                "origQuoteOrderQty": fmt(ZERO, d),
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        else:
            body = {
                "symbol": order.symbol,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                "transactTime": order.created_ms,
                **common,
                "workingTime": order.created_ms,
                "origQuoteOrderQty": fmt(ZERO, d),
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
            if kind == "full":
                body["fills"] = [
                    {
                        "price": fmt(trade.price, d),
                        "qty": fmt(trade.quantity, d),
                        "commission": fmt(trade.commission, d),
                        "commissionAsset": trade.commission_asset,
                        "tradeId": trade.trade_id,
                    }
                    for trade in self.venue.trades
                    if trade.order_id == order_id
                ]
        if margin:
            body["isIsolated"] = False
        return body

    # -- trades and income ------------------------------------------------------------------

    def futures_trade(self, trade: TradeRecord) -> dict[str, Any]:
        listing = self.venue.listing(Family.USDM, trade.symbol)
        return {
            "buyer": trade.side is Side.BUY,
            "commission": money_text(trade.commission),
            "commissionAsset": trade.commission_asset,
            "id": trade.trade_id,
            "maker": trade.maker,
            "orderId": trade.order_id,
            "price": price_text(listing, trade.price),
            "qty": qty_text(listing, trade.quantity),
            "quoteQty": quote_text(listing, trade.quote_quantity),
            "realizedPnl": money_text(trade.realized_pnl),
            "side": trade.side.value,
            "positionSide": "BOTH",
            "symbol": trade.symbol,
            "time": trade.time_ms,
        }

    def spot_trade(self, trade: TradeRecord) -> dict[str, Any]:
        d = SPOT_DECIMALS
        body: dict[str, Any] = {
            "symbol": trade.symbol,
            "id": trade.trade_id,
            "orderId": trade.order_id,
            "orderListId": -1,
            "price": fmt(trade.price, d),
            "qty": fmt(trade.quantity, d),
            "quoteQty": fmt(trade.quote_quantity, d),
            "commission": fmt(trade.commission, d),
            "commissionAsset": trade.commission_asset,
            "time": trade.time_ms,
            "isBuyer": trade.side is Side.BUY,
            "isMaker": trade.maker,
            "isBestMatch": True,
        }
        if trade.wallet is Wallet.MARGIN:
            body["isIsolated"] = False
        return body

    def income(self, entry: LedgerEntry) -> dict[str, Any]:
        return {
            "symbol": entry.symbol,
            "incomeType": entry.kind,
            "income": money_text(entry.amount),
            "asset": entry.asset,
            "info": entry.kind,
            "time": entry.time_ms,
            "tranId": entry.tran_id,
            "tradeId": entry.trade_id,
        }
