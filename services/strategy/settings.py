"""Strategy settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.grid.config import GridConfig, GridMode


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


class StrategySettings(ServiceSettings):
    identity: str = "strategy"
    grpc: GrpcSettings = GrpcSettings(port=50052, probe_port=8082)
    # The venue whose price subjects the agents follow (strategy itself never calls a venue).
    market_venue: str = Field(default="paper", pattern=r"^[a-z0-9_-]{1,32}$")
    account: str = Field(default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The executor this strategy sends orders to (mTLS, as the strategy identity).
    executor_address: str = "127.0.0.1:50053"
    market_makers: tuple[MarketMakerSettings, ...] = ()
