"""Fixtures: a paper exchange in this event loop on a free loopback port (manual market), the
unmodified ccxt clients pointed at it, and the OpenSQT adapter over them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from pydantic import SecretStr

from opensqt.clock import SystemClock
from opensqt.exchange.ccxt_adapter import CcxtExchange, CcxtVenueConfig, rewrite_urls
from opensqt.model import MarketType
from opensqt.monitors.cache import MarketCache
from opensqt.monitors.feeds import FeedRunner
from opensqt.paper import PaperExchange, PaperSettings
from opensqt.paper.settings import AccountSettings, ApiKeySettings, MarketSettings
from opensqt.paper.sources import ManualSource
from opensqt.transport.bus import EventBus

T = TypeVar("T")

TRADE_KEY, TRADE_SECRET = "paper-main-trade-key", "paper-main-trade-secret"
READ_KEY, READ_SECRET = "paper-main-read-key", "paper-main-read-secret"
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"


def paper_settings(state_file: Path, **overrides: Any) -> PaperSettings:
    """The default markets and the dev account ``main`` (10 000 USDT per wallet), port 0."""
    account = AccountSettings(
        name="main",
        keys=[
            ApiKeySettings(api_key=SecretStr(TRADE_KEY), api_secret=SecretStr(TRADE_SECRET)),
            ApiKeySettings(api_key=SecretStr(READ_KEY), api_secret=SecretStr(READ_SECRET), can_trade=False),
        ],
        spot={"USDT": Decimal(10_000)},
        margin={"USDT": Decimal(10_000)},
        futures={"USDT": Decimal(10_000)},
    )
    values: dict[str, Any] = {"port": 0, "state_file": state_file, "accounts": [account], **overrides}
    return PaperSettings(**values)


def tuned_markets(
    markets: list[MarketSettings], family: str, symbol: str | None = None, **rules: Any
) -> list[MarketSettings]:
    """``markets`` with ``rules`` set on their ``family`` (``"spot"`` or ``"perp"``) rules, of
    ``symbol`` only when given (markets without that family are left as they are)."""
    return [
        m.model_copy(update={family: getattr(m, family).model_copy(update=rules)})
        if getattr(m, family) is not None and symbol in (None, m.symbol)
        else m
        for m in markets
    ]


class Admin:
    """The paper exchange's admin API over HTTP."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base_url + path, json=body) as response:
            payload = await response.json()
            if response.status != 200:
                raise AssertionError(f"{method} {path} -> {response.status} {payload}")
            return payload

    async def price(self, symbol: str, price: str, family: str = "both") -> Any:
        return await self.request(
            "POST", "/admin/price", {"symbol": symbol, "price": price, "family": family}
        )

    async def funding(self, symbol: str, rate: str | None = None) -> Any:
        body: dict[str, Any] = {"symbol": symbol}
        if rate is not None:
            body["rate"] = rate
        return await self.request("POST", "/admin/funding", body)

    async def fault(self, **spec: Any) -> Any:
        return await self.request("POST", "/admin/faults", spec)

    async def clear_faults(self) -> Any:
        return await self.request("DELETE", "/admin/faults")

    async def state(self) -> Any:
        return await self.request("GET", "/admin/state")

    async def orders(self, **query: str) -> list[dict[str, Any]]:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        result: list[dict[str, Any]] = await self.request("GET", "/admin/orders" + suffix)
        return result

    async def ledger(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/admin/ledger")
        return result

    async def open_account(self, name: str, key: str, secret: str, **balances: dict[str, str]) -> Any:
        return await self.request(
            "POST",
            "/admin/accounts",
            {"name": name, "keys": [{"api_key": key, "api_secret": secret}], **balances},
        )


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[PaperExchange]:
    """A paper exchange with a manual market (BTCUSDT at 30000, ETHUSDT at 2000)."""
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), source=ManualSource())
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
async def admin(paper: PaperExchange) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as session:
        yield Admin(paper.rest_url, session)


class Endpoints(Protocol):
    """Where a paper exchange answers (in process or as a process)."""

    @property
    def rest_url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...

    @property
    def spot_ws_url(self) -> str: ...


def make_ccxt(
    exchange_id: str, paper: Endpoints, *, key: str = TRADE_KEY, secret: str = TRADE_SECRET, **options: Any
) -> Any:
    """An unmodified ccxt.pro client with every URL pointed at the paper exchange."""
    timeout = options.pop("timeout", 5000)
    client = getattr(ccxtpro, exchange_id)(
        {
            "apiKey": key,
            "secret": secret,
            "timeout": timeout,
            "enableRateLimit": False,
            "timeout_on_exit": 0,  # ccxt sleeps 250 ms in close() by default
            "options": {"fetchCurrencies": False, **options},
        }
    )
    ws_url = paper.ws_url if exchange_id == "binanceusdm" else paper.spot_ws_url
    client.urls["api"] = rewrite_urls(client.urls["api"], paper.rest_url, ws_url)
    return client


@pytest.fixture
async def usdm(paper: PaperExchange) -> AsyncIterator[Any]:
    """ccxt.pro ``binanceusdm`` with the trade key, markets loaded."""
    client = make_ccxt("binanceusdm", paper)
    await client.load_markets()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def spot(paper: PaperExchange) -> AsyncIterator[Any]:
    """ccxt.pro ``binance`` (spot and margin) with the trade key, markets loaded."""
    client = make_ccxt("binance", paper)
    await client.load_markets()
    try:
        yield client
    finally:
        await client.close()


def feed_runner(watcher: Any, bus: EventBus, **options: Any) -> FeedRunner:
    """The monitor's FeedRunner over ``watcher`` (an adapter, read-only key) for account "main"
    and BTCUSDT on the paper venue, publishing on ``bus``; ``options`` as FeedRunner takes them."""
    return FeedRunner(
        watcher, bus, MarketCache(default_venue="paper"), SystemClock(), account="main",
        symbols=("BTCUSDT",), **options,
    )  # fmt: skip


def adapter_for(
    paper: PaperExchange,
    market_type: MarketType,
    *,
    timeout_ms: int = 5000,
    key: str = TRADE_KEY,
    secret: str = TRADE_SECRET,
    options: dict[str, Any] | None = None,
) -> CcxtExchange:
    exchange_id = "binanceusdm" if market_type is MarketType.PERPETUAL else "binance"
    adapter = CcxtExchange(
        CcxtVenueConfig(
            venue="paper",
            exchange_id=exchange_id,
            market_type=market_type,
            api_key=SecretStr(key),
            api_secret=SecretStr(secret),
            rest_url=paper.rest_url,
            ws_url=paper.ws_url if market_type is MarketType.PERPETUAL else paper.spot_ws_url,
            timeout_ms=timeout_ms,
            options=options or {},
        )
    )
    adapter.client.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() by default
    return adapter


@pytest.fixture
async def perp_adapter(paper: PaperExchange) -> AsyncIterator[CcxtExchange]:
    """The OpenSQT adapter (CcxtExchange) on the USDⓈ-M perpetuals, markets loaded."""
    adapter = adapter_for(paper, MarketType.PERPETUAL)
    await adapter.load_markets()
    try:
        yield adapter
    finally:
        await adapter.close()


async def next_update(
    awaitable: Awaitable[T], trigger: Callable[[], Awaitable[Any]], wait_s: float = 3.0
) -> T:
    """Start a ``watch_*`` call, let it subscribe, run ``trigger``, and return what it receives."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.sleep(0.2)
    if task.done():  # an error or an update that was already queued
        return task.result()
    await trigger()
    try:
        return await asyncio.wait_for(task, wait_s)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
