"""The simulated venue: a pure, deterministic matching core with accounts, fees and positions.

:class:`MatchingCore` is what the backtester drives and what a paper exchange wraps behind an
API. Nothing here performs I/O or reads a clock.
"""

from opensqt.exchange.accounts import Account, PerpPosition, apply_perp_fill
from opensqt.exchange.fees import FeeSchedule
from opensqt.exchange.matching import MarketRules, MatchingCore, market_key
from opensqt.exchange.orders import (
    FillRule,
    FundingPayment,
    OrderEvent,
    OrderRejected,
    OrderRequest,
    RejectReason,
    UnknownOrder,
)

__all__ = [
    "Account",
    "FeeSchedule",
    "FillRule",
    "FundingPayment",
    "MarketRules",
    "MatchingCore",
    "OrderEvent",
    "OrderRejected",
    "OrderRequest",
    "PerpPosition",
    "RejectReason",
    "UnknownOrder",
    "apply_perp_fill",
    "market_key",
]
