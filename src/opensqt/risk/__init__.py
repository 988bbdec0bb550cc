"""Pure risk rules: crash detection and the liquidation guard.

Both rules take domain events in and return decisions out; they perform no I/O, read no clock and
import no transport library. The risk service applies their decisions (trading state, alerts,
emergency exits).
"""

from opensqt.risk.config import (
    DEFAULT_CRASH_ASSETS,
    DEFAULT_CRASH_SYMBOLS,
    CrashConfig,
    LiquidationConfig,
    RiskConfigError,
    TriggerMode,
    interval_to_ms,
)
from opensqt.risk.crash import CrashDecision, CrashDetector, CrashDetectorStats, SymbolReading
from opensqt.risk.liquidation import (
    LiquidationDecision,
    LiquidationGuard,
    PositionKey,
    liquidation_distance,
)

__all__ = [
    "DEFAULT_CRASH_ASSETS",
    "DEFAULT_CRASH_SYMBOLS",
    "CrashConfig",
    "CrashDecision",
    "CrashDetector",
    "CrashDetectorStats",
    "LiquidationConfig",
    "LiquidationDecision",
    "LiquidationGuard",
    "PositionKey",
    "RiskConfigError",
    "SymbolReading",
    "TriggerMode",
    "interval_to_ms",
    "liquidation_distance",
]
