"""Strategy settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from opensqt.arbitrage.config import MAX_AGENT_LENGTH, ArbitrageConfig
from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.grid.config import GridConfig, GridMode
from opensqt.model import Instrument, MarketType


class MarketMakerSettings(BaseModel):
    """One trailing-grid agent on one symbol (behaviour.md §1)."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9]{1,12}$")
    symbol: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    price_interval: Decimal = Field(gt=0)
    order_notional: Decimal = Field(gt=0)
    buy_window: int = Field(default=5, ge=1)
    sell_window: int = Field(default=5, ge=1)
    max_open_orders: int = Field(default=10, ge=1)
    min_order_value: Decimal = Field(default=Decimal(5), ge=0)
    mode: Literal["long", "neutral"] = "long"
    trail_hysteresis: int = Field(default=1, ge=0)
    client_id_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9]{0,8}$")
    # False when anything besides this agent trades the symbol on the account (another
    # deployment, a person): reconciliation at start then reads no position as the grid's, and
    # the position is not checked while trading.
    owns_position: bool = True
    # While trading, compare the venue's position with the slots' this often (0: never); the same
    # drift of 5% or more on two settled checks in a row makes the agent reduce-only until Resume.
    position_check_seconds: float = Field(default=30.0, ge=0)
    # Liquidation guard (behaviour.md §4): a position update whose mark is closer to its
    # liquidation price than this fraction of the mark exits the grid's position at once and
    # makes the agent reduce-only until Resume (0: off). Not applied with owns_position false.
    liquidation_threshold: Decimal = Field(default=Decimal("0.10"), ge=0, lt=1)
    # Widen price_interval to ATR * volatility_scale when the grid starts with no slot in use
    # (behaviour.md §1); 0: off. The ATR is over the atr_period latest closed atr_interval
    # candles, from the monitor at monitor_address. While slots are in use a restart keeps the
    # interval they were laid on.
    volatility_scale: Decimal = Field(default=Decimal(0), ge=0)
    atr_period: int = Field(default=14, ge=1, le=499)
    atr_interval: Literal["1m", "3m", "5m", "15m", "1h"] = "1m"

    @model_validator(mode="after")
    def _check_interval(self) -> MarketMakerSettings:
        if 0 < self.position_check_seconds < 1:
            raise ValueError(
                f"position_check_seconds must be 0 (off) or at least 1, got {self.position_check_seconds}"
            )
        return self

    def grid_config(self) -> GridConfig:
        return GridConfig(
            price_interval=self.price_interval,
            order_notional=self.order_notional,
            buy_window=self.buy_window,
            sell_window=self.sell_window,
            max_open_orders=self.max_open_orders,
            min_order_value=self.min_order_value,
            mode=GridMode(self.mode),
            trail_hysteresis=self.trail_hysteresis,
            client_id_prefix=self.client_id_prefix,
            agent=self.name,
        )


class ArbitrageBotSettings(BaseModel):
    """One funding-rate arbitrage agent: a spot leg hedged by a perpetual (behaviour.md §3).

    The spot leg trades through the spot executor (``spot_executor_address``, venue
    ``spot_market_venue``), the perpetual through the executor at ``executor_address`` (venue
    ``market_venue``). Exactly one of ``order_base_qty`` and ``order_quote_notional`` sizes an
    entry. Every threshold is checked as the pure :class:`ArbitrageConfig` checks it.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=MAX_AGENT_LENGTH)
    symbol: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # The perpetual's symbol on its venue (default: the spot symbol).
    perp_symbol: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,32}$")
    order_base_qty: Decimal | None = Field(default=None, gt=0)
    order_quote_notional: Decimal | None = Field(default=None, gt=0)
    min_spread_apr: Decimal = Decimal("0.10")
    exit_spread_apr: Decimal = Decimal("0.01")
    spot_taker_fee: Decimal = Decimal("0.001")
    perp_taker_fee: Decimal = Decimal("0.0005")
    expected_holding_days: Decimal = Decimal(30)
    use_margin: bool = False
    toxic_basis: Decimal = Decimal("-0.005")
    toxic_count: int = 3
    toxic_check_interval_ms: int = 0
    max_data_age_ms: int = 60_000
    liquidation_threshold: Decimal = Decimal("0.10")
    dust_qty: Decimal = Decimal("0.0001")
    # A spot buy pays its commission in the base asset (Binance without BNB fees): spot buys are
    # sized up by spot_taker_fee. Off when the account pays fees in BNB.
    spot_fee_in_base: bool = True
    # After a plan failed with an order whose outcome is unknown, the wait before the legs'
    # hedge is checked (longer than the executor's venue timeout plus its look-up margin).
    unknown_order_settle_ms: int = 20_000

    @property
    def perp(self) -> str:
        return self.perp_symbol or self.symbol

    @model_validator(mode="after")
    def _check_with_the_core(self) -> ArbitrageBotSettings:
        # The same checks the agent will meet at start, on stand-in instruments, so that a bad
        # value fails at settings time with the core's message.
        spot_type = MarketType.MARGIN if self.use_margin else MarketType.SPOT
        self.arbitrage_config(_stand_in("spot", self.symbol, spot_type), _stand_in("perp", self.perp, None))
        return self

    def arbitrage_config(self, spot: Instrument, perp: Instrument) -> ArbitrageConfig:
        """The agent's config on the executors' instruments (``ValueError`` when invalid)."""
        return ArbitrageConfig(
            agent=self.name,
            spot=spot,
            perp=perp,
            order_base_qty=self.order_base_qty,
            order_quote_notional=self.order_quote_notional,
            min_spread_apr=self.min_spread_apr,
            exit_spread_apr=self.exit_spread_apr,
            spot_taker_fee=self.spot_taker_fee,
            perp_taker_fee=self.perp_taker_fee,
            expected_holding_days=self.expected_holding_days,
            use_margin=self.use_margin,
            toxic_basis=self.toxic_basis,
            toxic_count=self.toxic_count,
            toxic_check_interval_ms=self.toxic_check_interval_ms,
            max_data_age_ms=self.max_data_age_ms,
            liquidation_threshold=self.liquidation_threshold,
            dust_qty=self.dust_qty,
            spot_fee_in_base=self.spot_fee_in_base,
            unknown_order_settle_ms=self.unknown_order_settle_ms,
        )


def _stand_in(venue: str, symbol: str, market_type: MarketType | None) -> Instrument:
    """An instrument for the settings-time check; the rules that depend on the real instrument
    (its step against dust_qty) are checked at start, on the executors' instruments."""
    return Instrument(
        venue=venue,
        symbol=symbol,
        market_type=market_type or MarketType.PERPETUAL,
        base="BASE",
        quote="QUOTE",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001") if market_type is None else Decimal("0.00000001"),
        funding_interval_hours=8 if market_type is None else 0,
    )


class StrategySettings(ServiceSettings):
    identity: str = "strategy"
    grpc: GrpcSettings = GrpcSettings(port=50052, probe_port=8082)
    # The venue whose price subjects the agents follow (strategy itself never calls a venue).
    market_venue: str = Field(default="paper", pattern=r"^[a-z0-9_-]{1,32}$")
    account: str = Field(default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The executor this strategy sends orders to (mTLS, as the strategy identity).
    executor_address: str = "127.0.0.1:50053"
    # The monitor of market_venue: candle history for grids with a volatility_scale.
    monitor_address: str = "127.0.0.1:50051"
    market_makers: tuple[MarketMakerSettings, ...] = ()
    # Arbitrage bots: the perpetual leg on ``market_venue`` through ``executor_address``, the
    # spot leg on ``spot_market_venue`` through ``spot_executor_address``.
    arbitrage_bots: tuple[ArbitrageBotSettings, ...] = ()
    spot_market_venue: str = Field(default="paper-spot", pattern=r"^[a-z0-9_-]{1,32}$")
    spot_executor_address: str = "127.0.0.1:50055"

    @model_validator(mode="after")
    def _check_agents(self) -> StrategySettings:
        names = [m.name for m in self.market_makers] + [a.name for a in self.arbitrage_bots]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"agent names must be unique, repeated: {', '.join(duplicates)}")
        if self.arbitrage_bots and self.spot_market_venue == self.market_venue:
            raise ValueError(
                f"spot_market_venue and market_venue are both {self.market_venue!r}: the spot and "
                "perpetual legs need distinct venue names (one executor and monitor each)"
            )
        # One account nets every order on a symbol into one position: an arbitrage bot's perp leg
        # is re-synced from that position, so no other agent may trade its perp on this account.
        grid_symbols = {m.symbol for m in self.market_makers}
        perps = [bot.perp_symbol or bot.symbol for bot in self.arbitrage_bots]
        shared = sorted(grid_symbols.intersection(perps) | {s for s in perps if perps.count(s) > 1})
        if shared:
            raise ValueError(
                f"{', '.join(shared)}: an arbitrage bot's perpetual must be traded by no other agent "
                f"on account {self.account!r} (the venue keeps one position per symbol and account)"
            )
        return self
