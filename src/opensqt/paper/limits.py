"""The request log and Binance's rate-limit answers: 429, then 418 for a client that does not
back off.

A *client* is an API key (the ``X-MBX-APIKEY`` header), or the caller's IP when a request has
none. An *order request* places or cancels orders: POST or DELETE on ``/fapi/v1/order``,
``/api/v3/order``, ``/sapi/v1/margin/order`` and the cancel-all paths.

Request log (always on): every REST request (``/admin`` and WebSocket upgrades excepted) with
its arrival time (wall ms on the paper clock and monotonic ms), method, path, API key, account,
the ``timestamp`` it was signed with, the client order id it names, whether it is an order
request, the answer's status and ``Retry-After``, the wall ms of the answer, and which rule
below refused it, if one did. The last ``request_log_size`` requests are kept
(``GET /admin/requests``, ``DELETE /admin/requests``).

Bans (``ban``, off by default so a client may resend at once after an injected 429): once the
venue answers a client 429 or 418 with ``Retry-After: S`` (a fault, the order limit, any
route), for S seconds every order request from that client is answered 418 ("banned", the
remaining seconds in ``Retry-After``) and not handled, as Binance answers a client that ignores
a 429. A request the client had already sent is not a failure to back off: one signed at most
``ban_grace_ms`` after the 429 that started the ban (its ``timestamp`` parameter, same clock) is
answered 429 again instead. Every 429/418 answered extends the ban to its own Retry-After.

Order limit (``orders_per_interval`` > 0, off by default): at most that many order requests from
one client are admitted in any ``interval_ms`` sliding window; the next is answered 429 (-1015,
``Retry-After: retry_after_s``) without being handled (and, with bans on, starts a ban).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from opensqt.clock import Clock
from opensqt.paper.auth import KeyRing
from opensqt.paper.binance_errors import BinanceError, errors
from opensqt.paper.rest import json_response
from opensqt.paper.settings import RateLimitSettings

__all__ = [
    "ORDER_PATHS",
    "RequestLog",
    "RequestRecord",
    "Traffic",
    "is_order_request",
]

ORDER_PATHS = frozenset(
    {
        "/fapi/v1/order",
        "/fapi/v1/allOpenOrders",
        "/api/v3/order",
        "/api/v3/openOrders",
        "/sapi/v1/margin/order",
        "/sapi/v1/margin/openOrders",
    }
)


def is_order_request(method: str, path: str) -> bool:
    """Whether a request places or cancels orders (what an order rate limit counts)."""
    return method in ("POST", "DELETE") and path in ORDER_PATHS


@dataclass(slots=True)
class RequestRecord:
    """One REST request and its answer (``status`` 0: no answer was sent, e.g. dropped)."""

    seq: int
    time_ms: int
    monotonic_ms: float
    method: str
    path: str
    api_key: str
    account: str
    client: str
    order: bool
    signed_ms: int | None
    client_order_id: str = ""
    status: int = 0
    retry_after: int | None = None
    answered_ms: int | None = None
    answered_monotonic_ms: float | None = None  # the host's monotonic clock, as monotonic_ms
    rule: str = ""  # "ban", "in_flight" or "order_limit" when a rule here refused the request

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """The last ``capacity`` requests, oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: deque[RequestRecord] = deque(maxlen=capacity)
        self.evicted = 0
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def append(self, record: RequestRecord) -> None:
        if len(self.entries) == self.capacity:
            self.evicted += 1
        self.entries.append(record)

    def clear(self) -> None:
        self.entries.clear()
        self.evicted = 0

    def query(
        self, *, path: str = "", method: str = "", status: int | None = None, order: bool | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in self.entries
            if r.path.startswith(path)
            and (not method or r.method == method)
            and (status is None or r.status == status)
            and (order is None or r.order == order)
        ]


@dataclass(slots=True)
class Ban:
    """A client's ban: ``started_ms`` is when the 429 that began it was answered."""

    started_ms: int
    until_ms: int


@dataclass(slots=True)
class _Window:
    admitted: deque[int] = field(default_factory=deque)


def _signed_ms(params: Mapping[str, str]) -> int | None:
    text = params.get("timestamp", "")
    return int(text) if text.isdigit() else None


def _note_params(record: RequestRecord, params: Mapping[str, str]) -> None:
    """The signed time and the order's client id, from a request's parameters."""
    if record.signed_ms is None:
        record.signed_ms = _signed_ms(params)
    if not record.client_order_id:
        record.client_order_id = params.get("newClientOrderId") or params.get("origClientOrderId") or ""


class Traffic:
    """The request log, bans and the order limit, as one aiohttp middleware."""

    def __init__(self, settings: RateLimitSettings, clock: Clock, keys: KeyRing) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = keys
        self.log = RequestLog(settings.request_log_size)
        self.bans: dict[str, Ban] = {}
        self._windows: dict[str, _Window] = {}

    # -- configuration --------------------------------------------------------------------

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update of the settings (validated; the log keeps its capacity)."""
        merged = {**self.settings.model_dump(), **changes}
        merged["request_log_size"] = self.settings.request_log_size
        self.settings = RateLimitSettings.model_validate(merged)

    def reset(self) -> None:
        """Lift every ban and forget the order-limit windows."""
        self.bans.clear()
        self._windows.clear()

    def describe(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        return {
            **self.settings.model_dump(),
            "bans": {
                client: {"started_ms": ban.started_ms, "until_ms": ban.until_ms}
                for client, ban in self.bans.items()
                if ban.until_ms > now
            },
        }

    # -- the middleware -------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/admin") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)  # type: ignore[no-any-return]
        record = self._arrive(request)
        self.log.append(record)
        try:
            refusal = await self._refusal(request, record)
            if refusal is not None:
                response: web.StreamResponse = json_response(
                    refusal.body(), status=refusal.status, headers=dict(refusal.headers)
                )
            else:
                response = await handler(request)
        except web.HTTPException as exc:
            await self._read_body(request, record)
            self._answered(record, exc.status, exc.headers)
            raise
        # any other exception (the ambiguous fault's dropped connection) leaves status 0
        await self._read_body(request, record)
        self._answered(record, response.status, response.headers)
        return response

    def _arrive(self, request: web.Request) -> RequestRecord:
        time_ms, monotonic_ms = self.clock.now_ms(), round(time.monotonic() * 1000, 3)
        query = dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        api_key = request.headers.get("X-MBX-APIKEY", "")
        account = self.keys.principal(api_key).account if api_key and api_key in self.keys else ""
        record = RequestRecord(
            seq=self.log.next_seq(),
            time_ms=time_ms,
            monotonic_ms=monotonic_ms,
            method=request.method,
            path=request.path,
            api_key=api_key,
            account=account,
            client=api_key or f"ip:{request.remote}",
            order=is_order_request(request.method, request.path),
            signed_ms=None,
        )
        _note_params(record, query)
        return record

    @staticmethod
    async def _read_body(request: web.Request, record: RequestRecord) -> None:
        """Note the parameters of a form body (a POST's signed parameters). Reading consumes
        the body, so this runs only once the handler has read it (aiohttp keeps it) or will
        not run."""
        if not request.body_exists or request.content_type != "application/x-www-form-urlencoded":
            return
        _note_params(record, dict(parse_qsl(await request.text(), keep_blank_values=True)))

    async def _refusal(self, request: web.Request, record: RequestRecord) -> BinanceError | None:
        """The answer a rule gives instead of handling the request, if one refuses it."""
        if not record.order:
            return None
        now = record.time_ms
        ban = self.bans.get(record.client)
        if self.settings.ban and ban is not None and ban.until_ms > now:
            await self._read_body(request, record)  # refused either way: the body is ours
            remaining = max(1, math.ceil((ban.until_ms - now) / 1000))
            in_flight = record.signed_ms is not None and (
                record.signed_ms <= ban.started_ms + self.settings.ban_grace_ms
            )
            if in_flight:
                record.rule = "in_flight"
                return errors.too_many_requests(remaining)
            record.rule = "ban"
            return errors.banned(remaining, ban.until_ms)
        limit = self.settings.orders_per_interval
        if limit > 0:
            window = self._windows.setdefault(record.client, _Window()).admitted
            while window and window[0] <= now - self.settings.interval_ms:
                window.popleft()
            if len(window) >= limit:
                record.rule = "order_limit"
                retry_after = self.settings.retry_after_s
                return BinanceError(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per "
                    f"{self.settings.interval_ms} ms.",
                    (("Retry-After", str(retry_after)),),
                )
            window.append(now)
        return None

    def _answered(self, record: RequestRecord, status: int, headers: Mapping[str, str]) -> None:
        now = self.clock.now_ms()
        record.status = status
        record.answered_ms = now
        record.answered_monotonic_ms = round(time.monotonic() * 1000, 3)
        text = headers.get("Retry-After")
        record.retry_after = int(text) if text is not None and text.isdigit() else None
        # the ban's own 418 reports the remaining time; it does not lengthen the ban
        starts_ban = status in (418, 429) and record.retry_after is not None and record.rule != "ban"
        if starts_ban and self.settings.ban:
            until = now + (record.retry_after or 0) * 1000
            ban = self.bans.get(record.client)
            if ban is None or ban.until_ms <= now:
                self.bans[record.client] = Ban(started_ms=now, until_ms=until)
            else:
                ban.until_ms = max(ban.until_ms, until)
