"""The admin and introspection API (loopback only): drive the market, settle funding, open
accounts, inject faults, and read the whole state and the order log.

======  ===================  ==================================================================
method  path                 body / answer
======  ===================  ==================================================================
GET     /admin/state         accounts (balances per wallet, positions, open orders), markets
GET     /admin/orders        the order log (every change of every order), ``?account=&symbol=``
                             and ``after=<seq>`` for the entries after one already read
GET     /admin/trades        every fill
GET     /admin/ledger        deposits, realized PnL, commissions, funding
POST    /admin/price         ``{symbol, price, family?: spot|usdm|both, volume?}``; answers
                             ``{applied, order_events, stale_feed, applied_monotonic_ms}``
POST    /admin/quote         ``{symbol, bid, ask, family?}``
POST    /admin/fill          ``{account, symbol, qty, client_order_id | order_id, wallet?: spot|
                             margin|usdm (default usdm)}``: a trade of ``qty`` against an open
                             order at its limit price (it keeps resting, PARTIALLY_FILLED, until
                             it has nothing left); answers ``{order}``
POST    /admin/book          ``{symbol, depth, family?}``: the quantity on the book at the touch,
                             all an arriving order can take (``null``: unlimited; see
                             ``book_depth`` in the market settings); answers each family's depth
POST    /admin/funding       ``{symbol?, rate?, at?}``: settle funding (all perpetuals by default)
                             ``at`` ``"now"`` (default) or ``"next"``: at the scheduled funding
                             time, so the schedule moves one interval on (a new funding period)
POST    /admin/funding-rate  ``{symbol, rate}``: the rate the next settlement uses
POST    /admin/accounts      ``{name, keys: [{api_key, api_secret, can_trade?}], spot?, margin?,
                             futures?}`` (balances as ``{"USDT": "1000"}``)
GET     /admin/faults        active faults
POST    /admin/faults        a fault or a list of faults (see :mod:`opensqt.paper.faults`)
DELETE  /admin/faults        clear every fault
GET     /admin/requests      the request log (:mod:`opensqt.paper.limits`): ``{requests: [...],
                             evicted, capacity}``, ``?path=`` (prefix) ``&method=&status=&order=``
DELETE  /admin/requests      empty the request log
GET     /admin/limits        ban and order-limit settings, and the active bans
POST    /admin/limits        change some of them, e.g. ``{"ban": true, "orders_per_interval": 5}``
DELETE  /admin/limits        lift every ban and forget the order-limit counts
======  ===================  ==================================================================
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from opensqt.exchange.state import encode
from opensqt.model.money import ZERO
from opensqt.paper.binance_errors import BinanceError
from opensqt.paper.faults import FaultError
from opensqt.paper.records import Family, Wallet, core_account
from opensqt.paper.rest import json_response

if TYPE_CHECKING:
    from opensqt.paper.app import PaperExchange

__all__ = ["AdminApi"]

_LOOPBACK = ("127.0.0.1", "::1")


class AdminError(ValueError):
    """A malformed admin request (answered 400 with ``{"error": ...}``)."""


def _opt_decimal(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float | bool):
        raise AdminError(f"{name} must be a decimal string or an integer, not {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise AdminError(f"{name}: {value!r} is not a decimal number") from exc
    if not result.is_finite():
        raise AdminError(f"{name} must be finite")
    return result


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(body: dict[str, Any], name: str) -> Decimal:
    value = _opt_decimal(body, name)
    if value is None:
        raise AdminError(f"{name} is required")
    return value


def _families(body: dict[str, Any], venue_has: set[Family]) -> list[Family]:
    family = body.get("family", "both")
    if family == "both":
        return [f for f in (Family.USDM, Family.SPOT) if f in venue_has]
    try:
        return [Family(family)]
    except ValueError as exc:
        raise AdminError("family must be spot, usdm or both") from exc


class AdminApi:
    """Admin routes over one :class:`~opensqt.paper.app.PaperExchange`."""

    def __init__(self, exchange: PaperExchange) -> None:
        self.exchange = exchange
        self.venue = exchange.venue

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/state", self.state),
            web.get("/admin/orders", self.orders),
            web.get("/admin/trades", self.trades),
            web.get("/admin/ledger", self.ledger),
            web.post("/admin/price", self.price),
            web.post("/admin/quote", self.quote),
            web.post("/admin/fill", self.fill),
            web.post("/admin/book", self.book),
            web.post("/admin/funding", self.funding),
            web.post("/admin/funding-rate", self.funding_rate),
            web.post("/admin/accounts", self.accounts),
            web.get("/admin/faults", self.faults),
            web.post("/admin/faults", self.add_faults),
            web.delete("/admin/faults", self.clear_faults),
            web.get("/admin/requests", self.requests),
            web.delete("/admin/requests", self.clear_requests),
            web.get("/admin/limits", self.limits),
            web.post("/admin/limits", self.set_limits),
            web.delete("/admin/limits", self.reset_limits),
        ]

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Admin paths answer loopback clients only; malformed bodies get 400."""
        if not request.path.startswith("/admin"):
            return await handler(request)  # type: ignore[no-any-return]
        if request.remote not in _LOOPBACK:
            return json_response({"error": "the admin API is loopback only"}, status=403)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except (AdminError, FaultError) as error:
            return json_response({"error": str(error)}, status=400)

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError as exc:
            raise AdminError("the body must be JSON") from exc

    async def _object(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise AdminError("the body must be a JSON object")
        return body

    # -- introspection --------------------------------------------------------------------

    async def state(self, request: web.Request) -> web.Response:
        venue = self.venue
        core = venue.core
        accounts: dict[str, Any] = {}
        for name in venue.accounts:
            wallets: dict[str, Any] = {}
            for wallet in Wallet:
                held = core.account(core_account(name, wallet))
                entry: dict[str, Any] = {
                    "balances": {asset: str(value) for asset, value in sorted(held.balances.items())},
                    "locked": {asset: str(value) for asset, value in sorted(held.locked.items())},
                    "open_orders": [encode(order) for order in core.open_orders(held.account_id)],
                    "fees_paid": str(held.fees_paid),
                    "funding": str(held.funding_paid),
                }
                if wallet is Wallet.USDM:
                    entry["positions"] = {
                        key.partition(":")[2]: {
                            **position.to_state(),
                            "leverage": str(held.leverage.get(key, Decimal(1))),
                            "liquidation_price": str(
                                core.liquidation_price(
                                    held.account_id, Family.USDM.value, key.partition(":")[2]
                                )
                            ),
                        }
                        for key, position in sorted(held.positions.items())
                        if position.size
                    }
                wallets[wallet.value] = entry
            accounts[name] = wallets
        markets: dict[str, Any] = {}
        for family, symbol in venue.listings:
            last = venue.last_price(family, symbol)
            quote = venue.quotes.get((family, symbol))
            market: dict[str, Any] = {
                "last": None if last is None else str(last),
                "quote": None if quote is None else [str(quote[0]), str(quote[1])],
                "book_depth": _text(venue.book_depth(family, symbol)),
            }
            if family is Family.USDM:
                funding = venue.funding[symbol]
                market["funding"] = {"rate": str(funding.rate), "next_ms": funding.next_ms}
            markets[f"{family.value}:{symbol}"] = market
        return json_response(
            {
                "accounts": accounts,
                "markets": markets,
                "order_count": len(venue.orders),
                "log_length": len(venue.order_log),
                "core_version": core.version,
                "saves": self.exchange.store.saves if self.exchange.store else 0,
                "faults": self.exchange.faults.describe(),
                "stream_connections": self.exchange.hub.connection_count,
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        account = request.query.get("account", "")
        symbol = request.query.get("symbol", "")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError as exc:
            raise AdminError("after must be an integer (an order log sequence number)") from exc
        log = self.venue.order_log
        start = len(log)
        while start > 0 and log[start - 1].seq > after:  # the log is in sequence order
            start -= 1
        entries = [
            encode(entry)
            for entry in log[start:]
            if (not account or entry.account == account) and (not symbol or entry.order.symbol == symbol)
        ]
        return json_response(entries)

    async def trades(self, request: web.Request) -> web.Response:
        account = request.query.get("account", "")
        return json_response([encode(t) for t in self.venue.trades if not account or t.account == account])

    async def ledger(self, request: web.Request) -> web.Response:
        account = request.query.get("account", "")
        return json_response([encode(e) for e in self.venue.ledger if not account or e.account == account])

    # -- market ---------------------------------------------------------------------------

    async def price(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        symbol = str(body.get("symbol", ""))
        price = _decimal(body, "price")
        volume = _opt_decimal(body, "volume") or ZERO
        if price <= 0:
            raise AdminError("price must be positive")
        families = _families(body, {family for family, sym in self.venue.listings if sym == symbol})
        if not families:
            raise AdminError(f"unknown symbol {symbol!r}")
        applied = False
        events = 0
        for family in families:
            result = self.exchange.apply_price(family, symbol, price, volume)
            applied = applied or result is not None
            events += result or 0
        # the host's monotonic clock when the venue had the new price (benchmarks measure from it)
        applied_monotonic_ms = round(time.monotonic() * 1000, 3)
        self.exchange.commit()  # fills were committed by apply_price; a price alone within 1 s
        return json_response(
            {
                "applied": applied,
                "order_events": events,
                "stale_feed": self.exchange.faults.stale_feed,
                "applied_monotonic_ms": applied_monotonic_ms,
            }
        )

    async def fill(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        account = str(body.get("account", ""))
        if account not in self.venue.accounts:
            raise AdminError(f"unknown account {account!r}")
        try:
            wallet = Wallet(str(body.get("wallet", Wallet.USDM.value)))
        except ValueError as exc:
            raise AdminError("wallet must be spot, margin or usdm") from exc
        symbol = str(body.get("symbol", ""))
        if (wallet.family, symbol) not in self.venue.listings:
            raise AdminError(f"unknown symbol {symbol!r} on {wallet.family.value}")
        client_id = str(body.get("client_order_id", ""))
        raw_id = body.get("order_id")
        if (raw_id is None) == (not client_id):
            raise AdminError("give one of client_order_id and order_id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, int)):
            raise AdminError(f"order_id must be an integer, not {raw_id!r}")
        qty = _decimal(body, "qty")
        now_ms = self.exchange.clock.now_ms()
        try:
            order = self.venue.fill(account, wallet, symbol, raw_id, client_id, qty, now_ms)
        except BinanceError as exc:
            reference = client_id or raw_id
            raise AdminError(
                f"no open order {reference!r} of {account!r} in {wallet.value} {symbol}"
            ) from exc
        except ValueError as exc:
            raise AdminError(str(exc)) from exc
        self.exchange.commit(force=True)
        return json_response({"order": encode(order)})

    async def book(self, request: web.Request) -> web.Response:
        """Set the quantity on the book at the touch (``depth``; null: unlimited) of one symbol's
        markets (``family``: spot, usdm or both)."""
        body = await self._object(request)
        symbol = str(body.get("symbol", ""))
        if "depth" not in body:
            raise AdminError("depth is required (a decimal string, or null for unlimited)")
        depth = _opt_decimal(body, "depth")
        families = _families(body, {family for family, sym in self.venue.listings if sym == symbol})
        if not families:
            raise AdminError(f"unknown symbol {symbol!r}")
        try:
            for family in families:  # every market checked first: a refusal changes nothing
                self.venue.check_book_depth(family, symbol, depth)
        except ValueError as exc:
            raise AdminError(str(exc)) from exc
        for family in families:
            self.venue.set_book_depth(family, symbol, depth)
        self.exchange.commit(force=True)
        return json_response(
            {family.value: _text(self.venue.book_depth(family, symbol)) for family in families}
        )

    async def quote(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        symbol = str(body.get("symbol", ""))
        bid = _decimal(body, "bid")
        ask = _decimal(body, "ask")
        families = _families(body, {family for family, sym in self.venue.listings if sym == symbol})
        if not families:
            raise AdminError(f"unknown symbol {symbol!r}")
        if self.exchange.faults.stale_feed:
            return json_response({"applied": False, "order_events": 0, "stale_feed": True})
        events = 0
        for family in families:
            events += self.venue.set_quote(family, symbol, bid, ask, self.exchange.clock.now_ms())
        self.exchange.commit(force=True)
        return json_response({"applied": True, "order_events": events, "stale_feed": False})

    async def funding(self, request: web.Request) -> web.Response:
        body = await self._object(request) if request.can_read_body else {}
        rate = _opt_decimal(body, "rate")
        symbol = body.get("symbol")
        at = body.get("at", "now")
        if at not in ("now", "next"):
            raise AdminError('at must be "now" or "next"')
        symbols = [str(symbol)] if symbol else list(self.venue.funding)
        for name in symbols:
            if name not in self.venue.funding:
                raise AdminError(f"{name!r} is not a perpetual")
        now = self.exchange.clock.now_ms()
        payments = []
        for name in symbols:
            when = self.venue.funding[name].next_ms if at == "next" else now
            payments.extend(self.venue.settle_funding(name, when, rate))
        self.exchange.commit(force=True)
        return json_response({"payments": [encode(entry) for entry in payments]})

    async def funding_rate(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        symbol = str(body.get("symbol", ""))
        rate = _decimal(body, "rate")
        if symbol not in self.venue.funding:
            raise AdminError(f"{symbol!r} is not a perpetual")
        self.venue.set_funding_rate(symbol, rate)
        self.exchange.commit(force=True)
        return json_response({"symbol": symbol, "rate": str(rate)})

    async def accounts(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        name = body.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise AdminError("name must be a non-empty string without '/'")
        if name in self.venue.accounts:
            raise AdminError(f"account {name!r} exists")
        keys = body.get("keys") or []
        if not isinstance(keys, list) or not keys:
            raise AdminError("keys must be a non-empty list")
        parsed_keys = []
        for key in keys:
            if not isinstance(key, dict) or not key.get("api_key") or not key.get("api_secret"):
                raise AdminError("each key needs api_key and api_secret")
            if str(key["api_key"]) in self.exchange.keys:
                raise AdminError("api_key is in use")
            parsed_keys.append(
                (str(key["api_key"]), str(key["api_secret"]), bool(key.get("can_trade", True)))
            )
        balances: dict[Wallet, dict[str, Decimal]] = {}
        for wallet, field_name in (
            (Wallet.SPOT, "spot"),
            (Wallet.MARGIN, "margin"),
            (Wallet.USDM, "futures"),
        ):
            amounts = body.get(field_name) or {}
            if not isinstance(amounts, dict):
                raise AdminError(f"{field_name} must be an object of asset -> amount")
            balances[wallet] = {}
            for asset, amount in amounts.items():
                value = _decimal({"amount": amount}, "amount")
                if value < 0:
                    raise AdminError("balances must not be negative")
                balances[wallet][str(asset)] = value
        self.exchange.open_account(name, balances, parsed_keys)
        self.exchange.commit(force=True)
        return json_response({"name": name})

    # -- faults ---------------------------------------------------------------------------

    async def faults(self, request: web.Request) -> web.Response:
        return json_response(self.exchange.faults.describe())

    async def add_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        specs = body if isinstance(body, list) else [body]
        if not all(isinstance(spec, dict) for spec in specs):
            raise AdminError("a fault is a JSON object")
        plan = self.exchange.faults
        parsed = [(spec, plan.parse(spec)) for spec in specs]
        dropped = 0
        for spec, fault in parsed:
            if fault is not None:
                plan.add(fault)
            elif spec["kind"] == "stale_feed":
                plan.stale_feed = bool(spec.get("on", True))
            else:
                refuse_ms = spec.get("refuse_ms", 0)
                if not isinstance(refuse_ms, int) or refuse_ms < 0:
                    raise AdminError("refuse_ms must be a non-negative integer")
                hub = self.exchange.hub
                hub.refuse_until_ms = self.exchange.clock.now_ms() + refuse_ms
                dropped += await hub.drop_all()
        return json_response({**plan.describe(), "dropped_connections": dropped})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.exchange.faults.clear()
        self.exchange.hub.refuse_until_ms = 0
        return json_response(self.exchange.faults.describe())

    # -- request log and rate limits ------------------------------------------------------

    async def requests(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            status = int(query["status"]) if query.get("status") else None
        except ValueError as exc:
            raise AdminError("status must be an integer") from exc
        order_text = query.get("order", "")
        if order_text not in ("", "true", "false"):
            raise AdminError("order must be true or false")
        log = self.exchange.traffic.log
        records = log.query(
            path=query.get("path", ""),
            method=query.get("method", "").upper(),
            status=status,
            order=None if not order_text else order_text == "true",
        )
        return json_response(
            {"requests": [r.to_json() for r in records], "evicted": log.evicted, "capacity": log.capacity}
        )

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.exchange.traffic.log.clear()
        return json_response({"requests": []})

    async def limits(self, request: web.Request) -> web.Response:
        return json_response(self.exchange.traffic.describe())

    async def set_limits(self, request: web.Request) -> web.Response:
        body = await self._object(request)
        if "request_log_size" in body:
            raise AdminError("request_log_size is set at start (settings) only")
        try:
            self.exchange.traffic.configure(body)
        except ValidationError as exc:
            raise AdminError(str(exc)) from exc
        return json_response(self.exchange.traffic.describe())

    async def reset_limits(self, request: web.Request) -> web.Response:
        self.exchange.traffic.reset()
        return json_response(self.exchange.traffic.describe())
