"""The exchange port over ccxt (``ccxt.pro``: REST and WebSocket), for real venues and the paper one.

- ccxt is told to return numbers as strings (``exchange.number = str``), so prices and
  quantities become ``Decimal`` exactly, never through a float;
- every URL can be pointed elsewhere (the paper exchange) with ``rest_url`` / ``ws_url``;
- every ccxt exception is translated by :func:`opensqt.exchange.errors.translate`;
- API keys are ``SecretStr`` and are handed to ccxt only, never logged.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt.pro as ccxtpro
from pydantic import SecretStr

from opensqt.errors import InvalidOrder, OpenSQTError
from opensqt.exchange.errors import translate
from opensqt.exchange.port import CANDLE_INTERVAL_MS, Balance, VenueCapabilities
from opensqt.model import (
    Candle,
    FundingRate,
    Instrument,
    MarketType,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PriceChange,
    Side,
    TimeInForce,
)
from opensqt.model.money import ZERO, parse_decimal
from opensqt.telemetry import get_logger

__all__ = ["CcxtExchange", "CcxtVenueConfig", "rewrite_urls"]

log = get_logger(__name__)
T = TypeVar("T")

_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "PO": TimeInForce.GTC}


@dataclass(frozen=True, slots=True)
class CcxtVenueConfig:
    """How to reach one venue account through ccxt.

    ``exchange_id`` is the ccxt class (``binanceusdm`` for USDⓈ-M futures, ``binance`` for spot
    and margin). ``rest_url``/``ws_url`` replace the scheme and host of every URL (the path stays),
    which is how the paper exchange is reached.
    """

    venue: str
    exchange_id: str
    market_type: MarketType
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    rest_url: str | None = None
    ws_url: str | None = None
    timeout_ms: int = 10_000
    default_funding_interval_hours: int = 8
    options: Mapping[str, Any] = field(default_factory=dict)


#: How much shorter than the request timeout a Binance recvWindow is (clock skew allowance;
#: at most a quarter of the timeout).
RECV_WINDOW_MARGIN_MS = 2_000

FUNDING_INTERVALS_REFRESH_S = 3_600.0
"""The perpetuals' funding intervals are read at start and again this often (a venue may move a
symbol from 8 h to 4 h in a volatile market)."""
FUNDING_INTERVALS_RETRY_S = 60.0
"""After a failed read of the funding intervals, the next one is this much later."""

#: Orders asked for per page of :meth:`CcxtExchange.fetch_recent_orders` (Binance's allOrders
#: answers at most 1000).
RECENT_ORDERS_PAGE_SIZE = 1_000
#: Pages :meth:`CcxtExchange.fetch_recent_orders` reads at most; a longer listing is cut (and
#: logged) rather than holding the caller for an unbounded number of requests.
RECENT_ORDERS_MAX_PAGES = 20


def _hours(interval: Any) -> int:
    """Hours of a ccxt funding interval such as ``"4h"``; 0 when it is absent or unreadable."""
    text = str(interval or "")
    return int(text[:-1]) if text.endswith("h") and text[:-1].isdigit() else 0


def _base_commission(raw: Mapping[str, Any], base: str, *, stream: bool) -> Decimal | None:
    """The commission ccxt's ``raw`` order reports in the ``base`` asset, summed; ``None`` when
    it reports no fees (a look-up: Binance lists fills only in an order's placement answer).

    An order-stream message carries its own trade's fee only: it is the order's whole
    commission only when that trade is all the order filled (last filled = cumulative filled;
    :meth:`CcxtExchange._base_commission` sums the trades of an order that filled in several).
    """
    fees = raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])
    if not fees or not base:
        return None
    if stream:
        info = raw.get("info") or {}
        last, cumulative = info.get("l"), info.get("z")
        if last is None or cumulative is None or Decimal(str(last)) != Decimal(str(cumulative)):
            return None
    return _cost_in(fees, base)


def _cost_in(fees: Iterable[Mapping[str, Any] | None], asset: str) -> Decimal:
    """The summed cost of ccxt fee entries (``{"cost", "currency"}``) charged in ``asset``."""
    total = ZERO
    for fee in fees:
        if fee and fee.get("currency") == asset and fee.get("cost") is not None:
            total += _d(fee["cost"], "fee.cost")
    return total


def rewrite_urls(urls: Any, rest_url: str | None, ws_url: str | None) -> Any:
    """A copy of ccxt's ``urls['api']`` with every http(s) URL moved to ``rest_url`` and every
    ws(s) URL to ``ws_url`` (scheme and host replaced, path kept)."""
    if isinstance(urls, dict):
        return {k: rewrite_urls(v, rest_url, ws_url) for k, v in urls.items()}
    if isinstance(urls, str):
        parts = urlsplit(urls)
        target = (
            rest_url
            if parts.scheme in ("http", "https")
            else ws_url
            if parts.scheme in ("ws", "wss")
            else None
        )
        if target:
            base = urlsplit(target)
            return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))
    return urls


def _d(value: Any, field_name: str, *, default: Decimal | None = ZERO) -> Decimal:
    if value is None or value == "":
        if default is None:
            raise InvalidOrder(f"venue response has no {field_name}")
        return default
    return parse_decimal(str(value), field=field_name)


class CcxtExchange:
    """:class:`~opensqt.exchange.port.ExchangePort` over one ccxt.pro exchange instance."""

    def __init__(self, config: CcxtVenueConfig, capabilities: VenueCapabilities | None = None) -> None:
        self.venue = config.venue
        self.config = config
        options: dict[str, Any] = {
            "fetchCurrencies": False,
            # v2 position risk carries the leverage (v3 does not)
            "fetchPositionsRisk": {"useV2": True},
            # all open orders in one call (a halt cancels everything); costs more rate weight
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            # positions come from REST (fetch_positions); ccxt.pro's own WebSocket snapshot
            # compares numbers with ints and breaks with number=str
            "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
            "defaultType": {
                MarketType.PERPETUAL: "future",
                MarketType.SPOT: "spot",
                MarketType.MARGIN: "margin",
            }[config.market_type],
        }
        if config.exchange_id.startswith("binance"):
            # A signed request is accepted only within recvWindow of its timestamp. Keeping the
            # window shorter than the timeout (by RECV_WINDOW_MARGIN_MS for clock skew, at most
            # a quarter of the timeout) means
            # a request whose answer timed out can no longer be accepted by the time the
            # executor looks its client id up: the lookup sees the order, or it never will be.
            margin = min(RECV_WINDOW_MARGIN_MS, config.timeout_ms // 4)
            options["recvWindow"] = config.timeout_ms - margin
        options.update(config.options)
        window = config.options.get("recvWindow")
        if window is not None and (not isinstance(window, int) or window >= config.timeout_ms):
            raise ValueError(
                f"options.recvWindow {window!r} must be whole milliseconds below the timeout "
                f"({config.timeout_ms} ms): an order whose answer timed out must no longer be "
                "acceptable when the executor looks it up"
            )
        params: dict[str, Any] = {
            "enableRateLimit": False,  # the executor owns the rate budget
            "timeout": config.timeout_ms,
            "timeout_on_exit": 0,  # ccxt would sleep 250 ms in close()
            "options": options,
        }
        if config.api_key is not None and config.api_secret is not None:
            params["apiKey"] = config.api_key.get_secret_value()
            params["secret"] = config.api_secret.get_secret_value()
        exchange_class = getattr(ccxtpro, config.exchange_id, None)
        if exchange_class is None:
            raise ValueError(f"ccxt has no exchange {config.exchange_id!r}")
        self._ex: Any = exchange_class(params)
        self._ex.number = str
        self.capabilities = capabilities or VenueCapabilities(
            perpetuals=config.market_type is MarketType.PERPETUAL,
            spot=config.market_type is not MarketType.PERPETUAL,
            margin_borrow=config.market_type is MarketType.MARGIN,
            watch_book_ticker=bool(self._ex.has.get("watchBidsAsks")),
            watch_mark_price=config.market_type is MarketType.PERPETUAL,
            watch_positions=config.market_type is MarketType.PERPETUAL,
        )
        if config.rest_url or config.ws_url:
            self._ex.urls["api"] = rewrite_urls(self._ex.urls["api"], config.rest_url, config.ws_url)
        self._instruments: dict[str, Instrument] = {}
        self._unified: dict[str, str] = {}
        # each perpetual's funding interval as the venue lists it (hours), and when it was read
        # (time.monotonic); a symbol the venue does not list pays every default_funding_interval_hours
        self._funding_hours: dict[str, int] = {}
        self._funding_hours_read = -math.inf
        self._funding_refresh: asyncio.Task[None] | None = None

    @property
    def client(self) -> Any:
        """The underlying ccxt exchange (for tests and diagnostics)."""
        return self._ex

    async def _call(self, awaitable: Awaitable[T], *, submit: bool = False) -> T:
        try:
            return await awaitable
        except Exception as exc:
            raise translate(
                exc, headers=getattr(self._ex, "last_response_headers", None), submit=submit
            ) from exc

    # --- markets ---------------------------------------------------------------------------

    async def load_markets(self, *, reload: bool = False) -> dict[str, Instrument]:
        markets: dict[str, Any] = await self._call(self._ex.load_markets(reload))
        if self.config.market_type is MarketType.PERPETUAL:
            await self._read_funding_intervals()
        instruments: dict[str, Instrument] = {}
        for unified, market in markets.items():
            if not self._wanted(market):
                continue
            instrument = self._instrument(market)
            instruments[instrument.symbol] = instrument
            self._unified[instrument.symbol] = unified
        self._instruments = instruments
        return dict(instruments)

    def _wanted(self, market: Mapping[str, Any]) -> bool:
        if self.config.market_type is MarketType.PERPETUAL:
            return bool(market.get("swap")) and bool(market.get("linear"))
        return bool(market.get("spot"))

    def _instrument(self, market: Mapping[str, Any]) -> Instrument:
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        return Instrument(
            venue=self.venue,
            symbol=str(market["id"]),
            market_type=self.config.market_type,
            base=str(market["base"]),
            quote=str(market["quote"]),
            tick_size=_d(precision.get("price"), "precision.price", default=None),
            step_size=_d(precision.get("amount"), "precision.amount", default=None),
            min_qty=_d((limits.get("amount") or {}).get("min"), "limits.amount.min"),
            min_notional=_d((limits.get("cost") or {}).get("min"), "limits.cost.min"),
            funding_interval_hours=self.funding_interval_hours(str(market["id"]))
            if self.config.market_type is MarketType.PERPETUAL
            else 0,
            max_client_order_id_length=self.capabilities.max_client_order_id_length,
        )

    def funding_interval_hours(self, symbol: str) -> int:
        """Hours between fundings of the perpetual ``symbol`` (venue id): the venue's own
        figure per symbol where it lists one (Binance's fundingInfo lists the symbols that do
        not pay every 8 hours), else ``default_funding_interval_hours``."""
        return self._funding_hours.get(symbol, self.config.default_funding_interval_hours)

    async def _read_funding_intervals(self) -> None:
        """Read every perpetual's funding interval (one public request). A venue that has no
        such listing, or does not answer, keeps what was read before (the default at first)."""
        self._funding_hours_read = time.monotonic()
        if not self._ex.has.get("fetchFundingIntervals"):
            return
        try:
            raw: dict[str, Any] = await self._call(self._ex.fetch_funding_intervals())
        except OpenSQTError as exc:  # asked again in a minute, not an hour
            self._funding_hours_read = (
                time.monotonic() - FUNDING_INTERVALS_REFRESH_S + FUNDING_INTERVALS_RETRY_S
            )
            log.warning("funding_intervals_unread", venue=self.venue, error=str(exc)[:300],
                        default_hours=self.config.default_funding_interval_hours)  # fmt: skip
            return
        hours: dict[str, int] = {}
        for unified, entry in raw.items():
            market = self._ex.markets.get(unified)
            every = _hours((entry or {}).get("interval"))
            if market and every:
                hours[str(market["id"])] = every
        self._funding_hours = hours
        for symbol, instrument in self._instruments.items():
            wanted = self.funding_interval_hours(symbol)
            if instrument.funding_interval_hours != wanted:
                log.info("funding_interval_changed", venue=self.venue, symbol=symbol,
                         hours=wanted, was=instrument.funding_interval_hours)  # fmt: skip
                self._instruments[symbol] = replace(instrument, funding_interval_hours=wanted)

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise InvalidOrder(f"unknown symbol {symbol!r} on {self.venue} (load_markets first)") from None

    def _u(self, symbol: str) -> str:
        self.instrument(symbol)
        return self._unified[symbol]

    # --- orders ----------------------------------------------------------------------------

    def _order_params(self, order: Order) -> dict[str, Any]:
        if not order.client_order_id:
            raise InvalidOrder("client_order_id is required: it is the idempotency key")
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.post_only:
            # postOnly alone: with a timeInForce ccxt would send that instead of GTX / LIMIT_MAKER
            params["postOnly"] = True
        elif order.order_type is OrderType.LIMIT:
            params["timeInForce"] = order.time_in_force.value
        if order.reduce_only and self.config.market_type is MarketType.PERPETUAL:
            params["reduceOnly"] = True
        if self.config.market_type is MarketType.MARGIN:
            params["marginMode"] = "cross"
            # borrow to sell short; repay automatically when buying back
            params["sideEffectType"] = "AUTO_REPAY" if order.reduce_only else "MARGIN_BUY"
        return params

    async def create_order(self, order: Order) -> Order:
        raw = await self._call(
            self._ex.create_order(
                self._u(order.symbol),
                order.order_type.value.lower(),
                order.side.value.lower(),
                str(order.quantity),
                str(order.price) if order.order_type is OrderType.LIMIT else None,
                self._order_params(order),
            ),
            submit=True,
        )
        return self._order(raw, fallback=order)

    @staticmethod
    def _ref_params(client_order_id: str, exchange_order_id: str) -> tuple[str | None, dict[str, Any]]:
        if exchange_order_id:
            return exchange_order_id, {}
        if client_order_id:
            return None, {"origClientOrderId": client_order_id}
        raise InvalidOrder("give a client_order_id or an exchange_order_id")

    async def cancel_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order:
        order_id, params = self._ref_params(client_order_id, exchange_order_id)
        raw = await self._call(self._ex.cancel_order(order_id, self._u(symbol), params))
        return await self._with_commission(self._order(raw))

    async def fetch_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order:
        order_id, params = self._ref_params(client_order_id, exchange_order_id)
        raw = await self._call(self._ex.fetch_order(order_id, self._u(symbol), params))
        return await self._with_commission(self._order(raw))

    async def _with_commission(self, order: Order) -> Order:
        """A spot or margin buy that filled, whose answer did not report its fees (Binance lists
        fills only in the placement's answer): its base-asset commission from its trades (one
        more request). Unchanged when the trades do not cover the whole fill."""
        if (
            self.config.market_type is MarketType.PERPETUAL
            or order.side is not Side.BUY
            or order.filled_qty <= 0
            or order.base_commission is not None
            or not order.exchange_order_id
        ):
            return order
        params: dict[str, Any] = {"orderId": order.exchange_order_id}
        if self.config.market_type is MarketType.MARGIN:
            params["type"] = "margin"
        try:
            raws = await self._call(self._ex.fetch_my_trades(self._u(order.symbol), None, None, params))
        except OpenSQTError as exc:  # the order itself is known: answer it, its fees unknown
            log.warning("order_trades_unread", venue=self.venue, client_order_id=order.client_order_id,
                        error=str(exc))  # fmt: skip
            return order
        base = self.instrument(order.symbol).base
        trades = [t for t in raws if str(t.get("order") or "") == order.exchange_order_id]
        if sum((_d(t.get("amount"), "amount") for t in trades), ZERO) != order.filled_qty:
            return order
        return replace(order, base_commission=_cost_in((t.get("fee") for t in trades), base))

    async def fetch_open_orders(self, symbol: str = "") -> list[Order]:
        raws = await self._call(self._ex.fetch_open_orders(self._u(symbol) if symbol else None))
        return [self._order(r) for r in raws]

    async def fetch_recent_orders(
        self, symbol: str, *, since_ms: int, page_size: int = RECENT_ORDERS_PAGE_SIZE
    ) -> list[Order]:
        """Every order of ``symbol`` created since ``since_ms``, oldest first, read page by page.

        Binance's allOrders answers, from a start time, the first ``limit`` orders created from
        then (not the newest), so one request would cut off the newest orders of a busy account.
        While a page comes back full the next one starts at the newest creation time in it
        (inclusive: more orders of that millisecond may follow; repeats are dropped by order id).
        """
        orders: dict[str, Order] = {}
        if since_ms <= 0:  # no start time: the venue's newest page (a start of 0 would be refused
            # by Binance, which reads at most 7 days of futures orders and 24 h of spot ones)
            raws = await self._call(self._ex.fetch_orders(self._u(symbol), None, page_size))
            return sorted((self._order(r) for r in raws), key=lambda order: order.created_ms)
        start = since_ms
        for _ in range(RECENT_ORDERS_MAX_PAGES):
            raws = await self._call(self._ex.fetch_orders(self._u(symbol), start, page_size))
            page = [self._order(r) for r in raws]
            for order in page:
                orders.setdefault(order.exchange_order_id, order)
            if len(page) < page_size:
                break
            newest = max(order.created_ms for order in page)
            if newest <= start:
                # a whole page created in one millisecond: asking from it again gets the same page
                log.warning("recent_orders_page_stuck", symbol=symbol, created_ms=newest, page_size=page_size)
                break
            start = newest
        else:
            log.warning(
                "recent_orders_cut",
                symbol=symbol,
                since_ms=since_ms,
                read_until_ms=start,
                pages=RECENT_ORDERS_MAX_PAGES,
                page_size=page_size,
            )
        return sorted(orders.values(), key=lambda order: order.created_ms)

    def _order(self, raw: Mapping[str, Any], fallback: Order | None = None, *, stream: bool = False) -> Order:
        """``stream``: ``raw`` is one order-stream message, whose fee is its own trade's only."""
        unified = raw.get("symbol")
        market = self._ex.markets.get(unified) if unified else None
        symbol = str(market["id"]) if market else (fallback.symbol if fallback else str(unified))
        filled = _d(raw.get("filled"), "filled")
        status_text = str(raw.get("status") or "open")
        status = _STATUS.get(status_text)
        if status is None:
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
        order_type = OrderType.MARKET if str(raw.get("type", "")).lower() == "market" else OrderType.LIMIT
        tif = _TIF.get(str(raw.get("timeInForce") or "GTC"), TimeInForce.GTC)
        return Order(
            symbol=symbol,
            side=Side.BUY if str(raw.get("side")).lower() == "buy" else Side.SELL,
            order_type=order_type,
            quantity=_d(raw.get("amount"), "amount", default=fallback.quantity if fallback else ZERO),
            price=_d(raw.get("price"), "price") if order_type is OrderType.LIMIT else ZERO,
            client_order_id=str(raw.get("clientOrderId") or (fallback.client_order_id if fallback else "")),
            exchange_order_id=str(raw.get("id") or ""),
            venue=self.venue,
            market_type=self.config.market_type,
            time_in_force=tif,
            post_only=bool(raw.get("postOnly")) or raw.get("timeInForce") == "PO",
            reduce_only=bool(raw.get("reduceOnly")),
            status=status,
            filled_qty=filled,
            average_price=_d(raw.get("average"), "average"),
            created_ms=int(raw.get("timestamp") or 0),
            updated_ms=int(raw.get("lastUpdateTimestamp") or raw.get("timestamp") or 0),
            base_commission=self._base_commission(raw, str(market["base"]) if market else "", filled, stream),
        )

    def _base_commission(
        self, raw: Mapping[str, Any], base: str, filled: Decimal, stream: bool
    ) -> Decimal | None:
        commission = _base_commission(raw, base, stream=stream)
        if commission is not None or not stream or not base or filled <= 0:
            return commission
        # An order that filled in several trades: the sum of its trades' fees, from the trades
        # the stream brought this session (ccxt keeps them by id, in the same step as the
        # order's state), when they are all it filled. ccxt's own running sum of an order's
        # fees cannot be used: it adds floats only, and this client's numbers are strings.
        cache = getattr(self._ex, "myTrades", None)
        hashmap = getattr(cache, "hashmap", None)
        if not isinstance(hashmap, dict):
            return None
        order_id = str(raw.get("id") or "")
        if not order_id:
            return None
        trades = [
            t for t in hashmap.get(raw.get("symbol"), {}).values() if str(t.get("order") or "") == order_id
        ]
        if not trades or sum((_d(t.get("amount"), "amount") for t in trades), ZERO) != filled:
            return None
        return _cost_in((t.get("fee") for t in trades), base)

    # --- account ---------------------------------------------------------------------------

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open derivative positions of this venue's markets. A spot or margin venue holds
        balances, not positions: none (ccxt's binance would answer with the account's futures
        positions, which belong to the perpetual venue)."""
        if not self.capabilities.perpetuals:
            return []
        unified = [self._u(s) for s in symbols] if symbols else None
        raws = await self._call(self._ex.fetch_positions(unified))
        return [p for p in (self._position(r) for r in raws) if p is not None]

    def _position(self, raw: Mapping[str, Any]) -> Position | None:
        market = self._ex.markets.get(raw.get("symbol"))
        if market is None or not self._wanted(market):
            return None
        contracts = _d(raw.get("contracts"), "contracts")
        size = -contracts if str(raw.get("side")) == "short" else contracts
        return Position(
            symbol=str(market["id"]),
            size=size,
            entry_price=_d(raw.get("entryPrice"), "entryPrice"),
            mark_price=_d(raw.get("markPrice"), "markPrice"),
            liquidation_price=_d(raw.get("liquidationPrice"), "liquidationPrice"),
            unrealized_pnl=_d(raw.get("unrealizedPnl"), "unrealizedPnl"),
            leverage=_d(raw.get("leverage"), "leverage"),
            venue=self.venue,
            market_type=self.config.market_type,
            updated_ms=int(raw.get("timestamp") or 0),
        )

    async def fetch_balances(self) -> dict[str, Balance]:
        raw = await self._call(self._ex.fetch_balance())
        balances: dict[str, Balance] = {}
        for asset, total in (raw.get("total") or {}).items():
            balances[asset] = Balance(
                asset=asset,
                free=_d((raw.get("free") or {}).get(asset), "free"),
                used=_d((raw.get("used") or {}).get(asset), "used"),
                total=_d(total, "total"),
            )
        return balances

    # --- funding ---------------------------------------------------------------------------

    def _funding(self, raw: Mapping[str, Any]) -> FundingRate:
        market = self._ex.markets.get(raw.get("symbol"))
        hours = _hours(raw.get("interval"))
        symbol = str(market["id"]) if market else str(raw.get("symbol"))
        return FundingRate(
            symbol=symbol,
            rate=_d(raw.get("fundingRate"), "fundingRate", default=None),
            interval_hours=hours or self.funding_interval_hours(symbol),
            next_funding_ms=int(raw.get("nextFundingTimestamp") or raw.get("fundingTimestamp") or 0),
            mark_price=_d(raw.get("markPrice"), "markPrice"),
            index_price=_d(raw.get("indexPrice"), "indexPrice"),
            venue=self.venue,
            time_ms=int(raw.get("timestamp") or 0),
        )

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        return self._funding(await self._call(self._ex.fetch_funding_rate(self._u(symbol))))

    async def fetch_funding_history(
        self, symbol: str, *, since_ms: int = 0, limit: int = 100
    ) -> list[FundingRate]:
        raws = await self._call(self._ex.fetch_funding_rate_history(self._u(symbol), since_ms or None, limit))
        return [self._funding(r) for r in raws]

    # --- streams ---------------------------------------------------------------------------

    async def watch_ticker(self, symbol: str) -> PriceChange:
        raw = await self._call(self._ex.watch_ticker(self._u(symbol)))
        return PriceChange(
            venue=self.venue,
            symbol=symbol,
            price=_d(raw.get("last") or raw.get("close"), "last", default=None),
            bid=_d(raw.get("bid"), "bid"),
            ask=_d(raw.get("ask"), "ask"),
            exchange_ms=int(raw.get("timestamp") or 0),
        )

    async def watch_book_ticker(self, symbol: str) -> PriceChange:
        """The next change of the venue's best bid and ask (Binance ``<symbol>@bookTicker``,
        pushed on every change of the top of the book, where ``@ticker`` is a 24 h summary
        pushed at intervals), with their mid as the price. A quote with an empty or crossed
        side has no mid to trade on: it is skipped and the next one awaited."""
        unified = self._u(symbol)
        while True:
            quotes = await self._call(self._ex.watch_bids_asks([unified]))
            raw = quotes.get(unified) or {}
            bid = _d(raw.get("bid"), "bid")
            ask = _d(raw.get("ask"), "ask")
            if 0 < bid <= ask:
                return PriceChange(
                    venue=self.venue,
                    symbol=symbol,
                    price=(bid + ask) / 2,
                    bid=bid,
                    ask=ask,
                    exchange_ms=int(raw.get("timestamp") or 0),
                )

    async def fetch_candles(self, symbol: str, interval: str, *, limit: int) -> list[Candle]:
        raws = await self._call(self._ex.fetch_ohlcv(self._u(symbol), interval, None, limit))
        return self._candles(symbol, interval, raws)

    async def watch_candles(self, symbol: str, interval: str) -> list[Candle]:
        raws = await self._call(self._ex.watch_ohlcv(self._u(symbol), interval))
        return self._candles(symbol, interval, raws)

    def _candles(self, symbol: str, interval: str, raws: list[list[Any]]) -> list[Candle]:
        step = CANDLE_INTERVAL_MS.get(interval, 0)
        candles = []
        for ts, o, h, low, c, v in raws:
            candles.append(
                Candle(
                    symbol=symbol,
                    interval=interval,
                    open_ms=int(ts),
                    open=_d(o, "open"),
                    high=_d(h, "high"),
                    low=_d(low, "low"),
                    close=_d(c, "close"),
                    volume=_d(v, "volume"),
                    closed=bool(step) and int(ts) + step <= int(self._ex.milliseconds()),
                    venue=self.venue,
                )
            )
        return candles

    async def watch_mark_price(self, symbol: str) -> FundingRate:
        """Mark price with the funding rate and next funding time of Binance's markPrice stream.

        ccxt.pro returns a ticker; the rate (``r``) and next funding time (``T``) are in its raw
        message.
        """
        raw = await self._call(self._ex.watch_mark_price(self._u(symbol)))
        due = time.monotonic() - self._funding_hours_read >= FUNDING_INTERVALS_REFRESH_S
        if due and (self._funding_refresh is None or self._funding_refresh.done()):
            # venues change a symbol's interval at times; read in the background (a watcher
            # away on a REST call would miss the stream's messages meanwhile)
            self._funding_refresh = asyncio.create_task(self._read_funding_intervals())
        info = raw.get("info") or {}
        return FundingRate(
            symbol=symbol,
            rate=_d(info.get("r"), "r", default=None),
            interval_hours=self.funding_interval_hours(symbol),
            next_funding_ms=int(info.get("T") or 0),
            mark_price=_d(raw.get("markPrice") or info.get("p"), "markPrice"),
            index_price=_d(raw.get("indexPrice") or info.get("i"), "indexPrice"),
            venue=self.venue,
            time_ms=int(raw.get("timestamp") or info.get("E") or 0),
        )

    async def watch_orders(self, symbol: str = "") -> list[Order]:
        params = {"type": "margin"} if self.config.market_type is MarketType.MARGIN else {}
        raws = await self._call(
            self._ex.watch_orders(self._u(symbol) if symbol else None, None, None, params)
        )
        # (a buy that filled in several trades: its commission is summed from the trades the
        # stream brought; unknown when the stream missed one: no request here, the reader
        # waits on the stream alone)
        return [self._order(r, stream=True) for r in raws]

    async def close(self) -> None:
        if self._funding_refresh is not None and not self._funding_refresh.done():
            self._funding_refresh.cancel()
        try:
            await self._ex.close()
        except Exception as exc:  # closing must not fail a shutdown
            log.debug("ccxt_close_failed", error=str(exc))
