"""WebSocket streams: market data and user data, as Binance (and ccxt.pro) speak them.

Every WebSocket upgrade, whatever its path, lands in :meth:`StreamHub.handle`:

* ``/ws-api/v3`` (spot WebSocket API): ``userDataStream.subscribe.signature`` (spot wallet,
  signed with the key's secret) and ``userDataStream.subscribe.listenToken`` (cross-margin
  wallet, token from ``POST /sapi/v1/userListenToken``); events arrive as
  ``{"subscriptionId": n, "event": {...}}``;
* a listen key in the query (``?listenKey=``) or as the last path segment: the USDⓈ-M user
  data stream (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``) or the legacy spot one;
* anything else: market streams. Paths with a ``market``, ``public`` or ``private`` segment
  (ccxt's USDⓈ-M URLs) are futures, the rest spot. Streams are named in the path
  (``/ws/btcusdt@miniTicker``, ``/stream?streams=a/b``) or subscribed with
  ``{"method": "SUBSCRIBE", "params": [...], "id": n}`` (answered ``{"result": null, "id": n}``).

Market streams: ``<symbol>@miniTicker``, ``@ticker``, ``@bookTicker``, ``@kline_<interval>``,
``@markPrice`` / ``@markPrice@1s`` (futures), ``!miniTicker@arr``, ``!ticker@arr``,
``!markPrice@arr[@1s]``. A message is sent on every price change, except for mark prices and
klines when the hub is ``paced`` (a market on the wall clock): Binance pushes the mark price
every 3 s (``@1s``: every second) and klines every 250 ms (spot: 2 s), not on every trade, and
so does the hub, with the latest figures; a kline whose candle closes goes out at once with
``"x": true``. A replay in market time pushes every change (its seconds pass faster).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from opensqt.model.enums import OrderType
from opensqt.model.money import ZERO
from opensqt.paper.auth import KeyRing
from opensqt.paper.binance_errors import BinanceError, errors
from opensqt.paper.market_data import INTERVALS_MS
from opensqt.paper.records import (
    AccountChanged,
    Family,
    OrderChanged,
    PriceMoved,
    VenueEvent,
    Wallet,
    core_account,
)
from opensqt.paper.reports import Reports, money_text, price_text, qty_text, quote_text
from opensqt.paper.venue import Listing, PaperVenue
from opensqt.paper.wire import SPOT_DECIMALS, fmt
from opensqt.telemetry import get_logger

__all__ = ["StreamHub"]

log = get_logger(__name__)

_FUTURES_SEGMENTS = {"market", "public", "private"}
#: How often the pacer looks for paced messages that are due.
_PACER_TICK_S = 0.05


def _pace_ms(name: str, family: Family) -> int:
    """Binance's push period of a market stream that is not pushed on every change (0: it is):
    mark prices every 3 s (``@1s``: 1 s); klines every 250 ms (USDⓈ-M) or 2 s (spot)."""
    symbol, _, channel = name.partition("@")
    if symbol == "!markprice" or channel.startswith("markprice"):
        return 1_000 if name.endswith("@1s") else 3_000
    if channel.startswith("kline_"):
        return 250 if family is Family.USDM else 2_000
    return 0


def _candle_of(payload: Any) -> int | None:
    """The open time of a kline message's candle (None for other messages)."""
    if isinstance(payload, dict) and payload.get("e") == "kline":
        return int(payload["k"]["t"])
    return None


_LISTEN_TOKEN_VALIDITY_MS = 24 * 3_600_000


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    family: Family
    combined: bool = False
    streams: dict[str, str] = field(default_factory=dict)  # lower-case name -> name as subscribed
    users: dict[tuple[str, Wallet], int | None] = field(default_factory=dict)  # -> WS API subscription id
    next_subscription: int = 0
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    def send(self, payload: Any) -> None:
        self.queue.put_nowait(json.dumps(payload, separators=(",", ":")))

    def send_market(self, stream: str, payload: Any) -> None:
        """A market stream's message, wrapped when the connection combines streams."""
        self.send({"stream": stream, "data": payload} if self.combined else payload)


def _price_first(stream: tuple[str, str]) -> int:
    """Send order of one price move's messages on a connection: the quotes and tickers a
    trader reacts to first, then mark prices, then candles (a client reads them in order)."""
    channel = stream[0].partition("@")[2]
    if channel == "bookticker":
        return 0
    if channel in ("ticker", "miniticker", "arr"):
        return 1
    if channel.startswith("markprice"):
        return 2
    return 3


class StreamHub:
    """All WebSocket connections; a listener of the venue that turns events into messages."""

    def __init__(self, venue: PaperVenue, keys: KeyRing, now_ms: Callable[[], int]) -> None:
        self.venue = venue
        self.keys = keys
        self.now_ms = now_ms
        self.reports = Reports(venue)
        self.listen_keys: dict[str, tuple[str, Wallet]] = {}
        self.listen_tokens: dict[str, tuple[str, int]] = {}  # token -> (account, expiry)
        self.refuse_until_ms = 0
        self._connections: set[_Connection] = set()
        self.paced = False  # mark prices and klines at Binance's cadence (module docstring)
        # (connection, stream, family, symbol) -> (stream as subscribed, latest message)
        self._due: dict[tuple[_Connection, str, Family, str], tuple[str, Any]] = {}
        self._paced_at: dict[tuple[_Connection, str, Family, str], float] = {}
        self._pacer: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()  # set whenever a connection subscribes to something
        venue.subscribe(self.on_event)

    def subscribed_streams(self) -> set[str]:
        """Every market stream some connection is subscribed to (lower-case names)."""
        return {name for connection in self._connections for name in connection.streams}

    async def wait_for_streams(self, wanted: set[str]) -> None:
        """Until each of ``wanted`` has a subscriber."""
        while not wanted <= self.subscribed_streams():
            self._subscribed.clear()
            await self._subscribed.wait()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- listen keys ----------------------------------------------------------------------

    def listen_key(self, account: str, wallet: Wallet) -> str:
        """The account wallet's listen key (the same while it lives, as on Binance)."""
        for key, owner in self.listen_keys.items():
            if owner == (account, wallet):
                return key
        key = secrets.token_hex(32)
        self.listen_keys[key] = (account, wallet)
        return key

    def check_listen_key(self, key: str, account: str) -> None:
        owner = self.listen_keys.get(key)
        if owner is None or owner[0] != account:
            raise errors.listen_key_unknown()

    def close_listen_key(self, key: str) -> None:
        self.listen_keys.pop(key, None)

    def listen_token(self, account: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        expiry = self.now_ms() + _LISTEN_TOKEN_VALIDITY_MS
        self.listen_tokens[token] = (account, expiry)
        return token, expiry

    # -- connections ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one WebSocket connection until it closes."""
        if self.now_ms() < self.refuse_until_ms:
            raise web.HTTPServiceUnavailable(text="stream temporarily unavailable")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        segments = [segment for segment in request.path.split("/") if segment]
        family = Family.USDM if _FUTURES_SEGMENTS & set(segments) or "ws-fapi" in segments else Family.SPOT
        connection = _Connection(ws, request, family)
        ws_api = any(segment.startswith(("ws-api", "ws-fapi")) for segment in segments)
        key = request.query.get("listenKey") or (segments[-1] if segments else "")
        if not ws_api and key in self.listen_keys:
            account, wallet = self.listen_keys[key]
            connection.users[(account, wallet)] = None
            connection.family = wallet.family
        elif not ws_api:
            self._streams_from_url(connection, request, segments)
        self._connections.add(connection)
        if connection.streams:
            self._subscribed.set()
        writer = asyncio.create_task(self._writer(connection))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._on_text(connection, message.data, ws_api=ws_api)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(connection)
            for gone in [paced for paced in self._paced_at if paced[0] is connection]:
                del self._paced_at[gone]
            connection.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
        return ws

    @staticmethod
    def _streams_from_url(connection: _Connection, request: web.Request, segments: list[str]) -> None:
        if "streams" in request.query:
            connection.combined = True
            for name in request.query["streams"].split("/"):
                if name:
                    connection.streams[name.lower()] = name
        elif segments and "@" in segments[-1]:
            connection.streams[segments[-1].lower()] = segments[-1]

    async def _writer(self, connection: _Connection) -> None:
        while True:
            text = await connection.queue.get()
            if text is None or connection.ws.closed:
                return
            try:
                await connection.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def drop_all(self) -> int:
        """Drop every connection (abort the transport: the client sees a lost connection)."""
        dropped = list(self._connections)
        for connection in dropped:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
            else:  # pragma: no cover - a connection always has a transport while open
                await connection.ws.close()
        return len(dropped)

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        for connection in list(self._connections):
            with contextlib.suppress(Exception):
                await connection.ws.close()

    # -- requests from clients ------------------------------------------------------------

    def _on_text(self, connection: _Connection, text: str, *, ws_api: bool) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            connection.send({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            return
        if not isinstance(request, dict):
            connection.send({"error": {"code": 2, "msg": "Invalid request: not an object"}})
            return
        if ws_api:
            self._on_api_request(connection, request)
        else:
            self._on_stream_request(connection, request)

    def _on_stream_request(self, connection: _Connection, request: dict[str, Any]) -> None:
        method = request.get("method")
        request_id = request.get("id")
        params = request.get("params") or []
        if method == "SUBSCRIBE" and isinstance(params, list):
            for name in params:
                connection.streams[str(name).lower()] = str(name)
            self._subscribed.set()
            connection.send({"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE" and isinstance(params, list):
            for name in params:
                connection.streams.pop(str(name).lower(), None)
            connection.send({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            connection.send({"result": list(connection.streams.values()), "id": request_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            connection.send(
                {"result": None if method == "SET_PROPERTY" else connection.combined, "id": request_id}
            )
        else:
            connection.send(
                {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id}
            )

    def _on_api_request(self, connection: _Connection, request: dict[str, Any]) -> None:
        method = request.get("method")
        request_id = request.get("id")
        params = request.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        try:
            if method == "userDataStream.subscribe.signature":
                principal = self.keys.verify_ws({k: str(v) for k, v in params.items()}, self.now_ms())
                result = self._subscribe_user(connection, principal.account, Wallet.SPOT)
            elif method == "userDataStream.subscribe.listenToken":
                token = self.listen_tokens.get(str(params.get("listenToken", "")))
                if token is None or token[1] < self.now_ms():
                    raise BinanceError(400, -1125, "This listenToken does not exist.")
                result = self._subscribe_user(connection, token[0], Wallet.MARGIN)
            elif method == "userDataStream.unsubscribe":
                wanted = params.get("subscriptionId")
                for owner, subscription in list(connection.users.items()):
                    if wanted is None or subscription == wanted:
                        del connection.users[owner]
                result = {}
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self.now_ms()}
            else:
                raise BinanceError(400, -1020, "This operation is not supported.")
        except BinanceError as error:
            connection.send({"id": request_id, "status": error.status, "error": error.body()})
            return
        connection.send({"id": request_id, "status": 200, "result": result})

    def _subscribe_user(self, connection: _Connection, account: str, wallet: Wallet) -> dict[str, int]:
        subscription = connection.next_subscription
        connection.next_subscription += 1
        connection.users[(account, wallet)] = subscription
        return {"subscriptionId": subscription}

    # -- events from the venue ------------------------------------------------------------

    def on_event(self, event: VenueEvent) -> None:
        """Venue listener: queue the messages the event produces."""
        if not self._connections:
            return
        if isinstance(event, PriceMoved):
            self._on_price(event)
        elif isinstance(event, OrderChanged):
            self._to_users(event.entry.account, event.entry.wallet, self._order_message(event))
        elif isinstance(event, AccountChanged):
            self._to_users(event.account, event.wallet, self._account_message(event))

    def _to_users(self, account: str, wallet: Wallet, payload: dict[str, Any]) -> None:
        for connection in self._connections:
            if (account, wallet) not in connection.users:
                continue
            subscription = connection.users[(account, wallet)]
            if subscription is None:
                connection.send(payload)
            else:
                connection.send({"subscriptionId": subscription, "event": payload})

    def _on_price(self, event: PriceMoved) -> None:
        listing = self.venue.listing(event.family, event.symbol)
        lower = event.symbol.lower()
        built: dict[str, Any] = {}
        for connection in self._connections:
            if connection.family is not event.family or not connection.streams:
                continue
            for name, original in sorted(connection.streams.items(), key=_price_first):
                payload = built.get(name)
                if payload is None:
                    payload = self._market_payload(name, lower, listing, event)
                    if payload is None:
                        continue
                    built[name] = payload
                if self.paced and _pace_ms(name, event.family):
                    self._pace_later((connection, name, event.family, event.symbol), original, payload)
                    continue
                connection.send_market(original, payload)

    def _pace_later(self, key: tuple[_Connection, str, Family, str], original: str, payload: Any) -> None:
        """Keep ``payload`` as the stream's next message. A kline whose candle has closed meanwhile
        goes out at once, marked closed (Binance sends each candle's final state)."""
        pending = self._due.get(key)
        if pending is not None and _candle_of(pending[1]) not in (None, _candle_of(payload)):
            key[0].send_market(original, {**pending[1], "k": {**pending[1]["k"], "x": True}})
        self._due[key] = (original, payload)
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        """Send each paced message once its stream's period has passed since the last one."""
        loop = asyncio.get_running_loop()
        while self._due:
            await asyncio.sleep(_PACER_TICK_S)
            now = loop.time()
            for key, (original, payload) in list(self._due.items()):
                connection, name, family = key[0], key[1], key[2]
                if connection not in self._connections:
                    del self._due[key]
                    continue
                if now - self._paced_at.get(key, -1e9) < _pace_ms(name, family) / 1000:
                    continue
                del self._due[key]
                self._paced_at[key] = now
                connection.send_market(original, payload)

    def _market_payload(self, name: str, lower: str, listing: Listing, event: PriceMoved) -> Any:
        symbol, _, channel = name.partition("@")
        if symbol.startswith("!"):
            kind = symbol[1:]
            if kind == "miniticker" and channel == "arr":
                return [self._mini_ticker(listing, event.time_ms)]
            if kind == "ticker" and channel == "arr":
                return [self._ticker(listing, event.time_ms)]
            if kind == "markprice" and channel.startswith("arr") and listing.family is Family.USDM:
                return [self._mark_price(listing, event.time_ms)]
            return None
        if symbol != lower:
            return None
        if channel == "miniticker":
            return self._mini_ticker(listing, event.time_ms)
        if channel == "ticker":
            return self._ticker(listing, event.time_ms)
        if channel == "bookticker":
            return self._book_ticker(listing, event.time_ms)
        if channel.startswith("markprice") and listing.family is Family.USDM:
            return self._mark_price(listing, event.time_ms)
        if channel.startswith("kline_") and channel[6:] in {i.lower() for i in INTERVALS_MS}:
            interval = next(i for i in INTERVALS_MS if i.lower() == channel[6:])
            return self._kline(listing, interval, event.time_ms)
        return None

    def _mini_ticker(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        ticker = self.reports.ticker_24h(listing, now_ms)
        return {
            "e": "24hrMiniTicker",
            "E": now_ms,
            "s": listing.symbol,
            "c": ticker["lastPrice"],
            "o": ticker["openPrice"],
            "h": ticker["highPrice"],
            "l": ticker["lowPrice"],
            "v": ticker["volume"],
            "q": ticker["quoteVolume"],
        }

    def _ticker(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        ticker = self.reports.ticker_24h(listing, now_ms)
        body: dict[str, Any] = {
            "e": "24hrTicker",
            "E": now_ms,
            "s": listing.symbol,
            "p": ticker["priceChange"],
            "P": ticker["priceChangePercent"],
            "w": ticker["weightedAvgPrice"],
        }
        if listing.family is Family.SPOT:
            body["x"] = ticker["prevClosePrice"]
        body.update({"c": ticker["lastPrice"], "Q": ticker["lastQty"]})
        if listing.family is Family.SPOT:
            body.update(
                {
                    "b": ticker["bidPrice"],
                    "B": ticker["bidQty"],
                    "a": ticker["askPrice"],
                    "A": ticker["askQty"],
                }
            )
        body.update(
            {
                "o": ticker["openPrice"],
                "h": ticker["highPrice"],
                "l": ticker["lowPrice"],
                "v": ticker["volume"],
                "q": ticker["quoteVolume"],
                "O": ticker["openTime"],
                "C": ticker["closeTime"],
                "F": ticker["firstId"],
                "L": ticker["lastId"],
                "n": ticker["count"],
            }
        )
        return body

    def _book_ticker(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        top = self.venue.book_top(listing.family, listing.symbol) or (ZERO, ZERO)
        size = qty_text(listing, Decimal(1000))
        body: dict[str, Any] = {}
        if listing.family is Family.USDM:
            body.update({"e": "bookTicker", "u": now_ms, "E": now_ms, "T": now_ms})
        else:
            body["u"] = now_ms
        body.update(
            {
                "s": listing.symbol,
                "b": price_text(listing, top[0]),
                "B": size,
                "a": price_text(listing, top[1]),
                "A": size,
            }
        )
        return body

    def _mark_price(self, listing: Listing, now_ms: int) -> dict[str, Any]:
        index = self.reports.premium_index(listing, now_ms)
        return {
            "e": "markPriceUpdate",
            "E": now_ms,
            "s": listing.symbol,
            "p": index["markPrice"],
            "i": index["indexPrice"],
            "P": index["estimatedSettlePrice"],
            "r": index["lastFundingRate"],
            "T": index["nextFundingTime"],
        }

    def _kline(self, listing: Listing, interval: str, now_ms: int) -> dict[str, Any] | None:
        interval_ms = INTERVALS_MS[interval]
        candle = self.venue.candles[(listing.family, listing.symbol)].current(interval_ms)
        if candle is None:
            return None
        return {
            "e": "kline",
            "E": now_ms,
            "s": listing.symbol,
            "k": {
                "t": candle.open_ms,
                "T": candle.open_ms + interval_ms - 1,
                "s": listing.symbol,
                "i": interval,
                "f": 0,
                "L": 0,
                "o": price_text(listing, candle.open),
                "c": price_text(listing, candle.close),
                "h": price_text(listing, candle.high),
                "l": price_text(listing, candle.low),
                "v": qty_text(listing, candle.volume),
                "n": candle.trades,
                "x": False,
                "q": quote_text(listing, candle.quote_volume),
                "V": qty_text(listing, ZERO),
                "Q": quote_text(listing, ZERO),
                "B": "0",
            },
        }

    # -- user data ------------------------------------------------------------------------

    def _order_message(self, event: OrderChanged) -> dict[str, Any]:
        entry, extra = event.entry, event.extra
        order = entry.order
        traded = entry.execution == "TRADE"
        if entry.wallet is Wallet.USDM:
            listing = self.venue.listing(Family.USDM, order.symbol)
            return {
                "e": "ORDER_TRADE_UPDATE",
                "T": entry.time_ms,
                "E": entry.time_ms,
                "o": {
                    "s": order.symbol,
                    "c": order.client_order_id,
                    "S": order.side.value,
                    "o": extra.wire_type,
                    "f": extra.wire_time_in_force,
                    "q": qty_text(listing, order.quantity),
                    "p": "0" if order.order_type is OrderType.MARKET else price_text(listing, order.price),
                    "ap": fmt(order.average_price, max(5, listing.price_decimals)),
                    "sp": "0",
                    "x": entry.execution,
                    "X": order.status.value,
                    "i": int(order.exchange_order_id),
                    "l": qty_text(listing, entry.last_quantity),
                    "z": qty_text(listing, order.filled_qty),
                    "L": price_text(listing, entry.last_price),
                    "N": event.commission_asset,
                    "n": money_text(entry.commission),
                    "T": entry.time_ms,
                    "t": entry.trade_id,
                    "b": "0",
                    "a": "0",
                    "m": entry.maker,
                    "R": order.reduce_only,
                    "wt": "CONTRACT_PRICE",
                    "ot": extra.wire_type,
                    "ps": "BOTH",
                    "cp": False,
                    "rp": money_text(entry.realized_pnl),
                    "pP": False,
                    "si": 0,
                    "ss": 0,
                    "V": "EXPIRE_MAKER",
                    "pm": "NONE",
                    "gtd": 0,
                },
            }
        d = SPOT_DECIMALS
        return {
            "e": "executionReport",
            "E": entry.time_ms,
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side.value,
            "o": extra.wire_type,
            "f": extra.wire_time_in_force,
            "q": fmt(order.quantity, d),
            "p": fmt(order.price if order.order_type is OrderType.LIMIT else ZERO, d),
            "P": fmt(ZERO, d),
            "F": fmt(ZERO, d),
            "g": -1,
            "C": order.client_order_id if entry.execution == "CANCELED" else "",
            "x": entry.execution,
            "X": order.status.value,
            "r": "NONE",
            "i": int(order.exchange_order_id),
            "l": fmt(entry.last_quantity, d),
            "z": fmt(order.filled_qty, d),
            "L": fmt(entry.last_price, d),
            "n": fmt(entry.commission, d),
            "N": event.commission_asset if traded else None,
            "T": entry.time_ms,
            "t": entry.trade_id if traded else -1,
            "I": entry.seq,
            # on the book: working, and not in the middle of taking (a maker trade leaves a
            # resting order on the book, PARTIALLY_FILLED)
            "w": order.status.is_working and (not traded or entry.maker),
            "m": entry.maker,
            "M": False,
            "O": order.created_ms,
            "Z": fmt(extra.cum_quote, d),
            "Y": fmt(entry.last_price * entry.last_quantity, d),
            "Q": fmt(ZERO, d),
            "W": order.created_ms,
            "V": "EXPIRE_MAKER",
        }

    def _account_message(self, event: AccountChanged) -> dict[str, Any]:
        account = self.venue.core.account(core_account(event.account, event.wallet))
        if event.wallet is Wallet.USDM:
            positions = []
            for symbol in event.symbols:
                listing = self.venue.listing(Family.USDM, symbol)
                position = self.venue.core.position(account.account_id, Family.USDM.value, symbol)
                positions.append(
                    {
                        "s": symbol,
                        "pa": qty_text(listing, position.size),
                        "ep": money_text(position.entry_price),
                        "bep": money_text(position.entry_price),
                        "cr": money_text(account.positions[_key(symbol)].realized_pnl)
                        if _key(symbol) in account.positions
                        else "0",
                        "up": money_text(position.unrealized_pnl),
                        "mt": "cross",
                        "iw": "0",
                        "ps": "BOTH",
                    }
                )
            return {
                "e": "ACCOUNT_UPDATE",
                "E": event.time_ms,
                "T": event.time_ms,
                "a": {
                    "m": event.reason,
                    "B": [
                        {
                            "a": asset,
                            "wb": money_text(account.balance(asset)),
                            "cw": money_text(account.balance(asset)),
                            "bc": "0",
                        }
                        for asset in event.assets
                    ],
                    "P": positions,
                },
            }
        d = SPOT_DECIMALS
        return {
            "e": "outboundAccountPosition",
            "E": event.time_ms,
            "u": event.time_ms,
            "B": [
                {
                    "a": asset,
                    "f": fmt(account.free(asset), d),
                    "l": fmt(account.locked.get(asset, ZERO), d),
                }
                for asset in event.assets
            ],
        }


def _key(symbol: str) -> str:
    return f"{Family.USDM.value}:{symbol}"
