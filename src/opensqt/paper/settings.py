"""Settings of the paper exchange (pydantic-settings, environment prefix ``OPENSQT_PAPER_``).

Nested values use ``__`` (``OPENSQT_PAPER_SOURCE__KIND=manual``); lists are JSON
(``OPENSQT_PAPER_ACCOUNTS='[{"name": "main", ...}]'``).

Development defaults (documented, never for real money): one account ``main`` with 100 000 USDT
in each wallet (spot, cross margin, USDⓈ-M futures) and two keys,

=====================  ==========================  ===========================  =========
key                    api key                     secret                       may trade
=====================  ==========================  ===========================  =========
trade (executor)       ``paper-main-trade-key``    ``paper-main-trade-secret``  yes
read-only (monitor)    ``paper-main-read-key``     ``paper-main-read-secret``   no
=====================  ==========================  ===========================  =========

and two markets, BTCUSDT and ETHUSDT, each listed spot (with cross margin) and as a USDⓈ-M
perpetual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from opensqt.exchange.orders import FillRule

__all__ = [
    "AccountSettings",
    "ApiKeySettings",
    "FeeSettings",
    "MarketSettings",
    "PaperSettings",
    "PerpSettings",
    "RateLimitSettings",
    "SourceSettings",
    "SpotSettings",
]


class ApiKeySettings(BaseModel):
    """One API key of an account. A key that may not trade gets -2015 on order endpoints."""

    model_config = {"extra": "forbid"}

    api_key: SecretStr
    api_secret: SecretStr
    can_trade: bool = True


def _usdt(amount: str) -> dict[str, Decimal]:
    return {"USDT": Decimal(amount)}


class AccountSettings(BaseModel):
    """A paper account: its keys and the starting balance (a deposit) of each wallet."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    keys: list[ApiKeySettings]
    spot: dict[str, Decimal] = Field(default_factory=lambda: _usdt("100000"))
    margin: dict[str, Decimal] = Field(default_factory=lambda: _usdt("100000"))
    futures: dict[str, Decimal] = Field(default_factory=lambda: _usdt("100000"))


class FeeSettings(BaseModel):
    """Maker and taker fee rates (fractions of the notional)."""

    model_config = {"extra": "forbid"}

    maker: Decimal
    taker: Decimal


def _check_on_step(step_size: Decimal, **quantities: Decimal | None) -> None:
    for name, qty in quantities.items():
        if qty is not None and qty % step_size != 0:
            raise ValueError(f"{name} {qty} must be a multiple of the step size {step_size}")


class SpotSettings(BaseModel):
    """Rules of a spot market (also traded on cross margin)."""

    model_config = {"extra": "forbid"}

    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")
    fees: FeeSettings = FeeSettings(maker=Decimal("0.001"), taker=Decimal("0.001"))
    # the most one trade fills: a larger fill comes as several trades (each its own order-stream
    # message, PARTIALLY_FILLED until the last), as on a busy book; None: one trade per fill
    max_trade_qty: Decimal | None = Field(default=None, gt=0)
    # the quantity on the book at the touch, all an arriving order can take: a MARKET or IOC
    # order fills that much and expires with the rest (EXPIRED with a partial fill), a larger FOK
    # expires unfilled, a GTC limit rests with the rest; None: unlimited. POST /admin/book
    # changes it while running.
    book_depth: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _quantities_on_step(self) -> SpotSettings:
        _check_on_step(self.step_size, max_trade_qty=self.max_trade_qty, book_depth=self.book_depth)
        return self


class PerpSettings(BaseModel):
    """Rules of a USDⓈ-M perpetual."""

    model_config = {"extra": "forbid"}

    tick_size: Decimal = Decimal("0.1")
    step_size: Decimal = Decimal("0.001")
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal("1000")
    min_notional: Decimal = Decimal("5")
    fees: FeeSettings = FeeSettings(maker=Decimal("0.0002"), taker=Decimal("0.0005"))
    maintenance_margin_rate: Decimal = Decimal("0.004")
    max_leverage: int = 125
    funding_interval_hours: int = 8
    funding_rate: Decimal = Decimal("0.0001")
    max_trade_qty: Decimal | None = Field(default=None, gt=0)  # as for spot
    book_depth: Decimal | None = Field(default=None, gt=0)  # as for spot

    @model_validator(mode="after")
    def _quantities_on_step(self) -> PerpSettings:
        _check_on_step(self.step_size, max_trade_qty=self.max_trade_qty, book_depth=self.book_depth)
        return self

    @field_validator("funding_interval_hours")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value not in (1, 2, 4, 8):
            raise ValueError("funding_interval_hours must be 1, 2, 4 or 8")
        return value


class MarketSettings(BaseModel):
    """A symbol, listed spot and/or as a perpetual; ``start_price`` seeds the market sources."""

    model_config = {"extra": "forbid"}

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,20}$")
    base: str
    quote: str = "USDT"
    start_price: Decimal
    spot: SpotSettings | None = Field(default_factory=SpotSettings)
    perp: PerpSettings | None = Field(default_factory=PerpSettings)


class SourceSettings(BaseModel):
    """Where market prices come from.

    ``synthetic``: the backtester's seeded generator, ``bars_per_second`` one-minute candles per
    second of wall time; ``csv``: candle files (``csv_files``: symbol -> path) replayed
    ``speed`` times faster than real time; ``manual``: only ``POST /admin/price`` moves prices;
    ``live``: Binance's public WebSocket (needs the internet; never used by the tests).
    """

    model_config = {"extra": "forbid"}

    kind: Literal["synthetic", "csv", "manual", "live"] = "synthetic"
    seed: int = 7
    bars_per_second: float = 1.0
    csv_files: dict[str, Path] = Field(default_factory=dict)
    speed: float = Field(default=60.0, gt=0)
    loop: bool = True
    # Replay only the bars that open in [replay_from, replay_until) (UTC when no zone is given).
    replay_from: datetime | None = None
    replay_until: datetime | None = None
    # Hold the source until a client has subscribed to each of these market streams (Binance's
    # lower-case names, e.g. "btcusdt@kline_1m"): a fast replay that must reach its consumer
    # from the first bar. Empty: start at once.
    wait_for_streams: list[str] = Field(default_factory=list)

    @field_validator("replay_from", "replay_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _window(self) -> SourceSettings:
        if self.replay_from and self.replay_until and self.replay_until <= self.replay_from:
            raise ValueError("source.replay_until must be after source.replay_from")
        return self


class RateLimitSettings(BaseModel):
    """The request log's size, Binance's 418 ban after an ignored 429, and a per-client order
    limit (:mod:`opensqt.paper.limits`); bans and the limit are off by default."""

    model_config = {"extra": "forbid"}

    ban: bool = False
    ban_grace_ms: int = Field(default=0, ge=0)
    orders_per_interval: int = Field(default=0, ge=0)
    interval_ms: int = Field(default=1000, ge=1)
    retry_after_s: int = Field(default=1, ge=1)
    request_log_size: int = Field(default=50_000, ge=1)


def _default_accounts() -> list[AccountSettings]:
    return [
        AccountSettings(
            name="main",
            keys=[
                ApiKeySettings(
                    api_key=SecretStr("paper-main-trade-key"), api_secret=SecretStr("paper-main-trade-secret")
                ),
                ApiKeySettings(
                    api_key=SecretStr("paper-main-read-key"),
                    api_secret=SecretStr("paper-main-read-secret"),
                    can_trade=False,
                ),
            ],
        )
    ]


def _default_markets() -> list[MarketSettings]:
    return [
        MarketSettings(symbol="BTCUSDT", base="BTC", start_price=Decimal("30000")),
        MarketSettings(
            symbol="ETHUSDT",
            base="ETH",
            start_price=Decimal("2000"),
            spot=SpotSettings(step_size=Decimal("0.0001"), min_qty=Decimal("0.0001")),
            perp=PerpSettings(tick_size=Decimal("0.01")),
        ),
    ]


class PaperSettings(BaseSettings):
    """Everything the ``opensqt paper-exchange`` process needs."""

    model_config = SettingsConfigDict(env_prefix="OPENSQT_PAPER_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8090
    state_file: Path = Path(".run/paper-exchange.sqlite")
    accounts: list[AccountSettings] = Field(default_factory=_default_accounts)
    markets: list[MarketSettings] = Field(default_factory=_default_markets)
    source: SourceSettings = Field(default_factory=SourceSettings)
    fill_rule: FillRule = FillRule.THROUGH
    default_leverage: int = 20
    margin_max_leverage: Decimal = Decimal(3)
    recv_window_max_ms: int = 60_000
    # Push the mark-price streams every 3 s (``@1s``: 1 s) as Binance does, not on every price
    # change (only while the market runs on the wall clock; a replay in market time pushes all).
    stream_pacing: bool = True
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log_format: Literal["console", "json"] = "console"
    # uvloop (libuv) by default, as the services; "asyncio" is the standard library's loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("markets")
    @classmethod
    def _unique_symbols(cls, markets: list[MarketSettings]) -> list[MarketSettings]:
        symbols = [market.symbol for market in markets]
        if len(set(symbols)) != len(symbols):
            raise ValueError("market symbols must be unique")
        return markets
