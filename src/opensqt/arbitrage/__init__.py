"""Funding-rate arbitrage: a spot leg hedged by a perpetual, earning the funding rate.

- :mod:`opensqt.arbitrage.config`: :class:`ArbitrageConfig` and the fee-APR formula.
- :mod:`opensqt.arbitrage.strategy`: the pure :class:`Strategy` (``on_funding``, ``on_price``,
  ``on_position``, ``on_execution_result``) returning :class:`Decision` s.
- :mod:`opensqt.arbitrage.plans`: entry and exit plans as replayable state machines for the
  executor, with deterministic client order ids.
- :mod:`opensqt.arbitrage.legs`: pure leg bookkeeping (fills, re-sync, delta-neutral check).
- :mod:`opensqt.arbitrage.execution`: pure rules of running a plan (orders for steps, results,
  trading-state refusals, the agent's own fills).

Nothing here performs I/O or imports a transport library.
"""

from opensqt.arbitrage.config import ArbitrageConfig, round_trip_fee_apr
from opensqt.arbitrage.legs import Fill, LegBook, apply_fill, leg_key, position_key, resync_leg
from opensqt.arbitrage.plans import (
    ClientIdError,
    Direction,
    Done,
    EntryPlan,
    ExitPlan,
    OrderStep,
    Outcome,
    PlanError,
    StepKind,
    StepResult,
    build_entry_plan,
    client_order_id,
)
from opensqt.arbitrage.strategy import (
    Action,
    Decision,
    Strategy,
    StrategyState,
    basis,
    funding_apr,
    liquidation_distance,
)

__all__ = [
    "Action",
    "ArbitrageConfig",
    "ClientIdError",
    "Decision",
    "Direction",
    "Done",
    "EntryPlan",
    "ExitPlan",
    "Fill",
    "LegBook",
    "OrderStep",
    "Outcome",
    "PlanError",
    "StepKind",
    "StepResult",
    "Strategy",
    "StrategyState",
    "apply_fill",
    "basis",
    "build_entry_plan",
    "client_order_id",
    "funding_apr",
    "leg_key",
    "liquidation_distance",
    "position_key",
    "resync_leg",
    "round_trip_fee_apr",
]
