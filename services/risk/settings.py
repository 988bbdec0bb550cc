"""Risk settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.model import TradingStateKind
from opensqt.risk.config import CrashConfig, LiquidationConfig, TriggerMode


class CrashSettings(BaseModel):
    """Crash detection (behaviour.md §4); defaults are the spec's."""

    model_config = {"extra": "forbid"}

    venue: str = "paper"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")
    interval: str = "1m"
    average_window: int = Field(default=20, ge=2)
    volume_multiplier: Decimal = Decimal(3)
    min_drawdown: Decimal = Decimal("0.03")
    drawdown_lookback: int = Field(default=60, ge=1)
    trigger_mode: Literal["all", "any"] = "all"
    recovery_threshold: int = Field(default=3, ge=1)
    trigger_state: Literal["REDUCING", "HALTED"] = "REDUCING"
    # Return to ACTIVE by itself on recovery (only from a state the detector set). Off: a Resume does.
    auto_recover: bool = False

    def config(self) -> CrashConfig:
        return CrashConfig(
            symbols=self.symbols,
            interval=self.interval,
            average_window=self.average_window,
            volume_multiplier=self.volume_multiplier,
            min_drawdown=self.min_drawdown,
            drawdown_lookback=self.drawdown_lookback,
            trigger_mode=TriggerMode(self.trigger_mode),
            recovery_threshold=self.recovery_threshold,
            trigger_state=TradingStateKind(self.trigger_state),
        )


class RiskSettings(ServiceSettings):
    identity: str = "risk"
    grpc: GrpcSettings = GrpcSettings(port=50054, probe_port=8084)
    crash: CrashSettings = CrashSettings()
    liquidation_threshold: Decimal = Decimal("0.10")
    # Push to executors: per-call deadline, and how fresh a registry heartbeat must be.
    push_deadline_seconds: float = Field(default=2.0, gt=0)
    executor_max_age_ms: int = Field(default=15_000, gt=0)

    def liquidation(self) -> LiquidationConfig:
        return LiquidationConfig(liquidation_threshold=self.liquidation_threshold)
