"""The paper exchange process: venue, persistence, streams, faults, market source and the
aiohttp server, assembled and run.

In tests, run it in process::

    exchange = PaperExchange(settings, source=ManualSource())
    await exchange.start()            # binds settings.host:settings.port (0: a free port)
    ... ccxt with rest_url=exchange.rest_url, ws_url=exchange.ws_url ...
    await exchange.stop()

or as a process: ``opensqt paper-exchange`` / ``python -m opensqt.paper``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from decimal import Decimal
from typing import Any

from aiohttp import web

from opensqt.clock import Clock, SystemClock
from opensqt.model.money import round_to_step
from opensqt.paper.admin import AdminApi
from opensqt.paper.auth import KeyRing
from opensqt.paper.binance_errors import BinanceError, errors
from opensqt.paper.faults import FaultPlan
from opensqt.paper.limits import Traffic
from opensqt.paper.records import Family, Wallet
from opensqt.paper.reports import Reports
from opensqt.paper.rest import RestApi, json_response
from opensqt.paper.settings import PaperSettings
from opensqt.paper.sources import MarketSource, make_source
from opensqt.paper.store import PaperStore
from opensqt.paper.streams import StreamHub
from opensqt.paper.venue import PaperVenue, next_funding_ms
from opensqt.telemetry import get_logger

__all__ = ["PaperExchange", "serve"]

log = get_logger(__name__)

_BACKGROUND_SAVE_MS = 1000


class PaperExchange:
    """A running paper exchange (see the module docstring).

    Args:
        settings: markets, accounts, keys, source, state file, host and port.
        clock: the wall clock (tests may inject one; signatures are checked against it).
        source: overrides the source ``settings.source`` describes.
        persist: ``False`` keeps everything in memory (benchmarks).
    """

    def __init__(
        self,
        settings: PaperSettings,
        *,
        clock: Clock | None = None,
        source: MarketSource | None = None,
        persist: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        now = self.clock.now_ms()
        self.venue = PaperVenue(
            settings.markets,
            fill_rule=settings.fill_rule,
            default_leverage=settings.default_leverage,
            margin_max_leverage=settings.margin_max_leverage,
            now_ms=now,
        )
        self.reports = Reports(self.venue)
        self.keys = KeyRing(recv_window_max_ms=settings.recv_window_max_ms)
        self.faults = FaultPlan()
        self.traffic = Traffic(settings.rate_limits, self.clock, self.keys)
        self.hub = StreamHub(self.venue, self.keys, self.clock.now_ms)
        self.store = PaperStore(settings.state_file) if persist else None
        self.source = source or make_source(settings.source, settings.markets, now_ms=now)
        # mark prices at Binance's cadence, unless a replay runs in market time
        self.hub.paced = settings.stream_pacing and not self.source.market_time
        self._runtime_keys: list[dict[str, Any]] = []
        self._last_save_ms = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.host = settings.host
        self.port = settings.port
        self._load(now)
        self.app = self._build_app()

    # -- state ------------------------------------------------------------------------------

    def _load(self, now: int) -> None:
        saved = self.store.load() if self.store is not None else None
        if saved is not None:
            self.venue.restore(saved.venue, saved.order_log, saved.trades, saved.ledger, now)
            self.hub.listen_keys = {
                key: (account, Wallet(wallet))
                for key, (account, wallet) in saved.extra.get("listen_keys", {}).items()
            }
            for key in saved.extra.get("runtime_keys", []):
                self.keys.add(key["account"], key["api_key"], key["api_secret"], can_trade=key["can_trade"])
                self._runtime_keys.append(key)
            log.info(
                "paper_state_restored", orders=len(self.venue.orders), log_entries=len(self.venue.order_log)
            )
        for account in self.settings.accounts:
            for key in account.keys:
                self.keys.add(
                    account.name,
                    key.api_key.get_secret_value(),
                    key.api_secret.get_secret_value(),
                    can_trade=key.can_trade,
                )
            if account.name not in self.venue.accounts:
                balances = {
                    Wallet.SPOT: account.spot,
                    Wallet.MARGIN: account.margin,
                    Wallet.USDM: account.futures,
                }
                self.venue.add_account(account.name, balances, now)
        for market in self.settings.markets:
            for family, rules in ((Family.USDM, market.perp), (Family.SPOT, market.spot)):
                if rules is not None and self.venue.last_price(family, market.symbol) is None:
                    price = round_to_step(market.start_price, rules.tick_size)
                    self.venue.move_price(family, market.symbol, price, now)
        if self.source.market_time:
            # the source's first bar starts the candle history, not a wall-clock minute
            for book in self.venue.candles.values():
                book.reset()
        self.commit(force=True)

    def open_account(
        self, name: str, balances: dict[Wallet, dict[str, Decimal]], keys: list[tuple[str, str, bool]]
    ) -> None:
        """Open an account at run time with its keys (both persisted)."""
        self.venue.add_account(name, balances, self.clock.now_ms())
        for api_key, api_secret, can_trade in keys:
            self.keys.add(name, api_key, api_secret, can_trade=can_trade)
            self._runtime_keys.append(
                {"account": name, "api_key": api_key, "api_secret": api_secret, "can_trade": can_trade}
            )

    def commit(self, *, force: bool = False) -> None:
        """Persist the changes since the last save: always when ``force`` or when orders,
        trades or ledger entries are pending; price-only changes at most once a second."""
        if self.store is None:
            self.venue.unsaved.clear()
            self.venue.dirty = False
            return
        now = self.clock.now_ms()
        pending = bool(self.venue.unsaved)
        if not (force or pending or (self.venue.dirty and now - self._last_save_ms >= _BACKGROUND_SAVE_MS)):
            return
        extra = {
            "listen_keys": {
                key: [account, wallet.value] for key, (account, wallet) in self.hub.listen_keys.items()
            },
            "runtime_keys": self._runtime_keys,
        }
        self.store.save(self.venue.to_state(), extra, self.venue.unsaved)
        self.venue.unsaved = []
        self.venue.dirty = False
        self._last_save_ms = now

    # -- market input -----------------------------------------------------------------------

    def apply_price(
        self, family: Family, symbol: str, price: Decimal, volume: Decimal, *, market_ms: int | None = None
    ) -> int | None:
        """Move a market (``None`` when the feed is stale: the price is discarded).
        ``market_ms``: the source's time of the price (candles are keyed by it)."""
        if self.faults.stale_feed:
            return None
        listing = self.venue.listing(family, symbol)
        price = round_to_step(price, listing.instrument.tick_size)
        if market_ms is None and self.source.market_time:
            # a price from the admin API while a replay runs: at the market's time, not the clock's
            market_ms = self.venue.candles[(family, symbol)].latest_ms
        events = self.venue.move_price(
            family, symbol, price, self.clock.now_ms(), volume, market_ms=market_ms
        )
        self.commit(force=events > 0)
        return events

    def on_source_price(
        self,
        symbol: str,
        price: Decimal,
        volume: Decimal,
        *,
        spot_price: Decimal | None,
        market_ms: int | None = None,
    ) -> None:
        if (Family.USDM, symbol) in self.venue.listings:
            self.apply_price(Family.USDM, symbol, price, volume, market_ms=market_ms)
            if market_ms is not None and symbol in self.venue.funding:
                self._market_funding(symbol, market_ms)
        if (Family.SPOT, symbol) in self.venue.listings:
            spot = spot_price if spot_price is not None else price
            self.apply_price(Family.SPOT, symbol, spot, volume, market_ms=market_ms)

    def _market_funding(self, symbol: str, market_ms: int) -> None:
        """Funding on the source's time line: a replay settles every interval it replays.

        The schedule starts from the first market price (the one set at start-up belongs to the
        wall clock); a settlement happens when the market's time reaches the next funding time.
        """
        state = self.venue.funding[symbol]
        hours = self.venue.listing(Family.USDM, symbol).funding_interval_hours
        interval_ms = hours * 3_600_000
        if not market_ms - interval_ms < state.next_ms <= market_ms + interval_ms:
            state.next_ms = next_funding_ms(market_ms, hours)
            return
        if market_ms >= state.next_ms:
            self.venue.settle_funding(symbol, market_ms)
            self.commit(force=True)

    def on_source_funding_rate(self, symbol: str, rate: Decimal) -> None:
        if symbol in self.venue.funding:
            self.venue.set_funding_rate(symbol, rate)

    # -- HTTP -------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        admin = AdminApi(self)
        app = web.Application(
            middlewares=[
                self.traffic.middleware,  # outermost: logs every answer, refuses banned/limited orders
                self._fault_middleware,
                self._error_middleware,
                admin.guard,
            ]
        )
        app.add_routes(RestApi(self).routes())
        app.add_routes(admin.routes())
        app.router.add_route("*", "/{tail:.*}", self._fallback)
        return app

    async def _fallback(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.hub.handle(request)
        raise errors.not_found()

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except BinanceError as error:
            return json_response(error.body(), status=error.status, headers=dict(error.headers))
        except web.HTTPException:
            raise
        except Exception:
            log.exception("paper_request_failed", path=request.path)
            internal = errors.internal()
            return json_response(internal.body(), status=internal.status)
        return response

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/admin") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)  # type: ignore[no-any-return]
        plan = self.faults
        method = request.method
        latency = plan.take("latency", method, path)
        if latency is not None:
            await asyncio.sleep(latency.ms / 1000)
        for kind in ("http_error", "reject"):
            fault = plan.take(kind, method, path)
            if fault is not None:
                error = fault.error(self.clock.now_ms())
                return json_response(error.body(), status=error.status, headers=dict(error.headers))
        response: web.StreamResponse = await handler(request)
        if response.status < 400:
            fault = plan.take("ambiguous", method, path)
            if fault is not None:
                log.info("paper_fault_ambiguous", path=path, mode=fault.mode)
                if fault.mode == "drop":
                    if request.transport is not None:
                        request.transport.abort()
                    raise asyncio.CancelledError
                await asyncio.sleep(fault.delay_ms / 1000)
        return response

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket base URL for ccxt's ``binanceusdm``."""
        return f"ws://{self.host}:{self.port}"

    @property
    def spot_ws_url(self) -> str:
        """The WebSocket base URL for ccxt's ``binance`` (spot and margin): ccxt tells spot
        streams from futures ones by ``/stream`` in the URL (Binance's host is
        ``stream.binance.com``), so the path carries it."""
        return f"{self.ws_url}/stream"

    async def start(self) -> None:
        """Serve on ``host:port`` (port 0 picks a free one) and start the source and the
        funding and saving loops."""
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        self._tasks = [
            asyncio.create_task(self._run_source(), name="paper-source"),
            asyncio.create_task(self._housekeeping(), name="paper-housekeeping"),
        ]
        log.info("paper_exchange_started", url=self.rest_url, source=type(self.source).__name__)

    async def _run_source(self) -> None:
        try:
            wanted = {name.lower() for name in self.settings.source.wait_for_streams}
            if wanted:
                log.info("paper_source_waiting_for_subscribers", streams=sorted(wanted))
                await self.hub.wait_for_streams(wanted)
                log.info("paper_source_starting", streams=sorted(wanted))
            await self.source.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("paper_source_failed")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                # a market-time source settles funding on its own time line (on_source_price)
                if not self.source.market_time and self.venue.settle_due_funding(self.clock.now_ms()):
                    self.commit(force=True)
                else:
                    self.commit()
            except Exception:
                log.exception("paper_housekeeping_failed")

    async def stop(self) -> None:
        """Stop serving, save, and close the store."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.commit(force=True)
        if self.store is not None:
            self.store.close()


async def serve(settings: PaperSettings, *, ready: Any = None) -> None:
    """Run a paper exchange until SIGINT/SIGTERM (``ready`` is called with it once serving)."""
    exchange = PaperExchange(settings)
    await exchange.start()
    if ready is not None:
        ready(exchange)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await exchange.stop()
