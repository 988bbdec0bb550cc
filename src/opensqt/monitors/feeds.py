"""The monitor's feeds: exchange streams in, v1 events out.

Each feed is a loop over one ccxt.pro stream. On any error it records the failure in the feed's
health, waits (exponential backoff, capped), reconnects, and first resyncs what it may have
missed over REST (recent and open orders, and positions, for the account feed). Events carry ids
built from what they describe, so a resynced repeat is dropped by JetStream's de-duplication.

- prices: ``PriceChange`` on core NATS, with a per-symbol sequence so consumers conflate; from
  the book ticker by default (the mid of the best bid and ask, on every change of either), or
  from the ticker (the last trade price);
- candles: a candle is published once, closed, when the next one starts (market time, not the
  wall clock: the paper exchange may run faster than real time);
- funding: ``FundingUpdate`` from the mark-price stream (rate, next funding time, mark price);
- account: ``OrderUpdate`` for every change of an own order, ``PositionUpdate`` for positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal, TypeVar

from opensqt.cancellation import raise_if_cancelled
from opensqt.clock import Clock
from opensqt.errors import OpenSQTError, OrderNotFound
from opensqt.exchange.port import ExchangePort
from opensqt.model import Candle, FundingUpdate, Order, OrderUpdate, PositionUpdate
from opensqt.monitors.cache import FeedStatus, MarketCache
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.bus import EventBus
from opensqt.transport.subjects import CANDLE, FUNDING, ORDER, POSITION, PRICE

__all__ = ["FeedRunner", "PriceFeed", "next_batch", "order_event_id"]

T = TypeVar("T")

#: Where prices come from: the book ticker (best bid and ask on every change; the price is the
#: mid) or the venue's ticker (last trade; on Binance a 24 h summary pushed at intervals).
PriceFeed = Literal["book_ticker", "ticker"]

log = get_logger(__name__)


async def next_batch(batches: asyncio.Queue[T], wait: float) -> T | None:
    """The next item of ``batches``; ``None`` once ``wait`` seconds (> 0) pass without one.

    A cancel always propagates. ``asyncio.wait_for`` on Python 3.11 returns the item instead
    when the cancel and the item arrive in the same turn of the loop, so a task stopped at that
    moment went on waiting, and whoever awaited its end hung (a monitor's shutdown too).
    """
    if wait <= 0:
        return await batches.get()
    try:
        async with asyncio.timeout(wait):
            return await batches.get()
    except TimeoutError:
        return None


def order_event_id(order: Order) -> str:
    """One id per observable state of an order: a repeat of the same state is a duplicate."""
    order_id = order.exchange_order_id or order.client_order_id
    return f"{order.venue}-{order_id}-{order.status.value}-{order.filled_qty}"


class FeedRunner:
    """Runs every feed of one venue account and keeps their health in the cache."""

    def __init__(
        self,
        exchange: ExchangePort,
        bus: EventBus,
        cache: MarketCache,
        clock: Clock,
        *,
        account: str,
        symbols: tuple[str, ...],
        candle_interval: str = "1m",
        position_poll_seconds: float = 2.0,
        max_backoff_seconds: float = 10.0,
        resync_lookback_ms: int = 6 * 3_600_000,
        resync_overlap_ms: int = 60_000,
        quiet_resync_seconds: float = 1.0,
        idle_resync_seconds: float = 60.0,
        funding_refresh_seconds: float = 30.0,
        metrics: ServiceMetrics | None = None,
        price_feed: PriceFeed = "book_ticker",
    ) -> None:
        self._exchange = exchange
        self._bus = bus
        self._cache = cache
        self._clock = clock
        self._venue = exchange.venue
        self._account = account
        self._symbols = symbols
        self._interval = candle_interval
        self._position_poll = position_poll_seconds
        self._max_backoff = max_backoff_seconds
        self._metrics = metrics
        self._sequence: dict[str, int] = {}
        self._markets_loaded = False
        self._resync_lookback_ms = resync_lookback_ms
        self._resync_overlap_ms = resync_overlap_ms
        self._quiet_resync = quiet_resync_seconds
        self._idle_resync = idle_resync_seconds
        self._funding_refresh_ms = int(funding_refresh_seconds * 1000)
        self._last_order_ms = 0
        # orders whose last published state is open, by (symbol, exchange order id): a resync
        # checks those its listing of recent orders no longer covers
        self._open_orders: dict[tuple[str, str], Order] = {}
        self._markets_lock = asyncio.Lock()
        self._positions_seen: dict[str, tuple[str, ...]] = {}
        if price_feed == "book_ticker" and not exchange.capabilities.watch_book_ticker:
            log.warning("price_feed_fallback", wanted="book_ticker", using="ticker", venue=self._venue)
            price_feed = "ticker"
        self.price_feed: PriceFeed = price_feed
        self._watch_price = (
            exchange.watch_book_ticker if price_feed == "book_ticker" else exchange.watch_ticker
        )

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """(name, coroutine factory) of every feed loop."""
        feeds: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for symbol in self._symbols:
            for feed, body in (
                ("ticker", self._ticker),
                ("candles", self._candles),
                ("funding", self._funding),
            ):
                if feed == "funding" and not self._exchange.capabilities.perpetuals:
                    continue
                feeds.append((f"{feed}-{symbol}", functools.partial(self._loop, feed, symbol, body)))
        feeds.append(("orders", lambda: self._loop("orders", "*", self._orders)))
        feeds.append(("positions", lambda: self._loop("positions", "*", self._positions)))
        return feeds

    async def _loop(self, feed: str, symbol: str, body: Callable[[FeedStatus, str], Awaitable[None]]) -> None:
        status = self._cache.feed(feed, symbol, self._venue)
        delay = 0.2
        while True:
            raise_if_cancelled()
            try:
                await self._ensure_markets()
                await body(status, symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a feed never ends on an error: it reconnects and resyncs
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # a library turned our cancellation into an error: stop, do not reconnect
                    raise asyncio.CancelledError from exc
                status.connected = False
                status.reconnects += 1
                status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if isinstance(exc, OpenSQTError):  # the venue or the bus said no: expected
                    log.warning(
                        "feed_error", feed=feed, symbol=symbol, error=status.last_error, retry_in=delay
                    )
                else:  # a bug or an error nobody translated: say where, keep the feed alive
                    log.exception("feed_crashed", feed=feed, symbol=symbol, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = 0.2

    async def _ensure_markets(self) -> None:
        async with self._markets_lock:
            if not self._markets_loaded:
                await self._exchange.load_markets()
                self._markets_loaded = True

    def _seen(self, status: FeedStatus) -> None:
        status.connected = True
        status.last_event_ms = self._clock.now_ms()

    # --- market ----------------------------------------------------------------------------

    async def _ticker(self, status: FeedStatus, symbol: str) -> None:
        while True:
            raise_if_cancelled()
            price = await self._watch_price(symbol)
            self._seen(status)
            sequence = self._sequence[symbol] = self._sequence.get(symbol, 0) + 1
            price = replace(price, received_ms=status.last_event_ms, sequence=sequence)
            self._cache.on_price(price)
            await self._bus.publish(PRICE, PRICE.subject(venue=self._venue, symbol=symbol), price)

    async def _candles(self, status: FeedStatus, symbol: str) -> None:
        forming: Candle | None = None
        subject = CANDLE.subject(venue=self._venue, symbol=symbol, interval=self._interval)
        while True:
            raise_if_cancelled()
            candles = await self._exchange.watch_candles(symbol, self._interval)
            self._seen(status)
            newest = candles[-1] if candles else None  # the cache lists candles as they arrived
            if forming is not None and newest is not None and newest.open_ms < forming.open_ms:
                # The venue's candle time went back (a paper replay restarted): follow the venue's
                # new history instead of waiting for it to pass the old time.
                log.warning(
                    "candle_time_went_back",
                    symbol=symbol,
                    forming_ms=forming.open_ms,
                    received_ms=newest.open_ms,
                )
                forming = replace(newest, closed=False)
                continue
            for candle in sorted(candles, key=lambda c: c.open_ms):
                if forming is not None and candle.open_ms > forming.open_ms:
                    await self._bus.publish(CANDLE, subject, replace(forming, closed=True))
                if forming is None or candle.open_ms >= forming.open_ms:
                    forming = replace(candle, closed=False)

    async def _funding(self, status: FeedStatus, symbol: str) -> None:
        """Publish the funding when its rate or next funding time changes, and unchanged at least
        every ``funding_refresh_seconds``: a consumer that ignores funding older than its limit
        (the arbitrage bot after a restart or a long halt) gets a fresh one within that time."""
        subject = FUNDING.subject(venue=self._venue, symbol=symbol)
        published_ms = 0  # when this loop last published (the venue's time of the update)
        while True:
            raise_if_cancelled()
            funding = await self._exchange.watch_mark_price(symbol)
            self._seen(status)
            previous = self._cache.latest_funding(symbol, self._venue)
            self._cache.on_funding(funding)
            seen_ms = funding.time_ms or self._clock.now_ms()
            changed = previous is None or (previous.rate, previous.next_funding_ms) != (
                funding.rate,
                funding.next_funding_ms,
            )
            refresh = 0 < self._funding_refresh_ms <= seen_ms - published_ms
            if changed or refresh:
                # the venue's time in the id: replicas publishing the same update are one message
                await self._bus.publish(
                    FUNDING,
                    subject,
                    FundingUpdate(funding),
                    msg_id=f"{symbol}-{funding.next_funding_ms}-{funding.rate}-{seen_ms}",
                )
                published_ms = seen_ms

    # --- account ---------------------------------------------------------------------------

    async def _publish_order(self, order: Order) -> None:
        update = OrderUpdate(event_id=order_event_id(order), order=order, source="monitor")
        subject = ORDER.subject(account=self._account, symbol=order.symbol)
        await self._bus.publish(ORDER, subject, update, msg_id=update.event_id)
        # only once stored: the resync after a failed publish starts from the last stored one
        self._last_order_ms = max(self._last_order_ms, order.updated_ms)
        if order.exchange_order_id and order.symbol in self._symbols:  # what the resync lists
            key = (order.symbol, order.exchange_order_id)
            if order.status.is_final:
                self._open_orders.pop(key, None)
            else:
                self._open_orders[key] = order

    async def _orders(self, status: FeedStatus, symbol: str) -> None:
        await self._resync_orders()
        self._seen(status)
        # The stream is read back to back, and published by another task. ccxt.pro wakes a
        # watcher only when an update arrives while a watch call is waiting: an update that
        # comes while the watcher is away (publishing the previous one) stays in ccxt's cache
        # until the next update wakes it, and the last update of a burst (the third of three
        # cancels, say) would wait for the next order event, however long that takes. So the
        # reader never waits on anything but the stream, and once the stream has been quiet
        # for ``quiet_resync_seconds`` after an update, the publisher asks the venue (REST)
        # for what changed meanwhile, in case an update is still held in ccxt's cache; and
        # every ``idle_resync_seconds`` without any update, in case one was lost on the way.
        batches: asyncio.Queue[list[Order]] = asyncio.Queue()
        reader = asyncio.current_task()
        publisher = asyncio.create_task(self._publish_orders(batches), name="orders-publisher")

        def publisher_done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None and reader is not None:
                reader.cancel()  # the reader is waiting on the stream: stop it and say why

        publisher.add_done_callback(publisher_done)
        try:
            while True:
                raise_if_cancelled()
                batch = await self._exchange.watch_orders()
                self._seen(status)
                batches.put_nowait(batch)
        except asyncio.CancelledError:
            if publisher.done() and not publisher.cancelled() and publisher.exception() is not None:
                if reader is not None:
                    reader.uncancel()
                raise publisher.exception() from None  # type: ignore[misc]
            raise
        finally:
            publisher.remove_done_callback(publisher_done)
            publisher.cancel()
            with contextlib.suppress(BaseException):
                await publisher

    async def _publish_orders(self, batches: asyncio.Queue[list[Order]]) -> None:
        quiet_check_due = False
        while True:
            raise_if_cancelled()
            wait = self._quiet_resync if quiet_check_due else self._idle_resync
            batch = await next_batch(batches, wait)
            if batch is None:
                quiet_check_due = False
                try:
                    await self._resync_orders(open_orders=False)
                except OpenSQTError as exc:  # the stream still runs: the next check tries again
                    log.warning("orders_resync_failed", error=str(exc))
                continue
            for order in batch:
                await self._publish_order(order)
            quiet_check_due = self._quiet_resync > 0

    async def _resync_orders(self, *, open_orders: bool = True) -> None:
        """Publish, from REST, the orders created lately (filled or cancelled ones too, or their
        fills would be lost), then (``open_orders``) the open ones, then the final state of the
        orders last published open that neither listing showed. Repeats are harmless: JetStream
        de-duplicates by event id and slot transitions are idempotent."""
        since = (
            self._last_order_ms - self._resync_overlap_ms
            if self._last_order_ms
            else self._clock.now_ms() - self._resync_lookback_ms
        )
        shown: set[tuple[str, str]] = set()
        for watched in self._symbols:
            for order in sorted(
                await self._exchange.fetch_recent_orders(watched, since_ms=max(0, since)),
                key=lambda o: (o.updated_ms, o.exchange_order_id),
            ):
                shown.add((order.symbol, order.exchange_order_id))
                await self._publish_order(order)
        listed_open = await self._exchange.fetch_open_orders() if open_orders else None
        for order in listed_open or ():
            shown.add((order.symbol, order.exchange_order_id))
            await self._publish_order(order)
        await self._check_open_orders(shown, listed_open)

    async def _check_open_orders(self, shown: set[tuple[str, str]], listed_open: list[Order] | None) -> None:
        """Publish what the venue says of each order last published open that the resync's
        listings did not show. The venue lists orders by creation time, so one created before
        the resync window that filled or was cancelled while the stream was down (or whose
        update the stream lost) is in no listing of recent orders and no longer open: only a
        lookup by id tells its final state. ``listed_open`` is the account's open orders when
        the resync already read them; otherwise they are read per symbol concerned."""
        unseen = [key for key in self._open_orders if key not in shown]
        if not unseen:
            return
        unlisted: set[str] = set()
        if listed_open is None:
            for symbol in sorted({symbol for symbol, _ in unseen}):
                try:
                    orders = await self._exchange.fetch_open_orders(symbol)
                except OpenSQTError as exc:  # its orders stay remembered: the next resync asks
                    unlisted.add(symbol)
                    log.warning("open_orders_check_failed", symbol=symbol, error=str(exc)[:300])
                    continue
                for order in orders:
                    shown.add((order.symbol, order.exchange_order_id))
                    await self._publish_order(order)
        for key in unseen:
            if key in shown or key[0] in unlisted:
                continue
            symbol, exchange_order_id = key
            try:
                order = await self._exchange.fetch_order(symbol, exchange_order_id=exchange_order_id)
            except OrderNotFound as exc:
                # the venue no longer knows it (Binance drops old cancelled orders): asking
                # again at every resync would never get an answer
                forgotten = self._open_orders.pop(key)
                log.warning(
                    "open_order_forgotten",
                    symbol=symbol,
                    exchange_order_id=exchange_order_id,
                    client_order_id=forgotten.client_order_id,
                    last_status=forgotten.status.value,
                    error=str(exc)[:300],
                )
                continue
            except OpenSQTError as exc:  # kept: the next resync asks again
                log.warning(
                    "open_order_lookup_failed",
                    symbol=symbol,
                    exchange_order_id=exchange_order_id,
                    error=str(exc)[:300],
                )
                continue
            await self._publish_order(order)

    async def _positions(self, status: FeedStatus, symbol: str) -> None:
        while True:
            raise_if_cancelled()
            for position in await self._exchange.fetch_positions():
                # mark and liquidation price matter too: the liquidation guard watches them
                key = tuple(map(str, (position.size, position.entry_price, position.mark_price,
                                      position.liquidation_price)))  # fmt: skip
                if self._positions_seen.get(position.symbol) == key:
                    continue
                self._positions_seen[position.symbol] = key
                event_id = f"{self._venue}-{position.symbol}-{'-'.join(key)}-{position.updated_ms}"
                update = PositionUpdate(event_id=event_id, position=replace(position, account=self._account))
                await self._bus.publish(
                    POSITION,
                    POSITION.subject(account=self._account, symbol=position.symbol),
                    update,
                    msg_id=event_id,
                )
            self._seen(status)
            await asyncio.sleep(self._position_poll)
