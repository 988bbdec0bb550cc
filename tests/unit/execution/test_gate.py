"""The executor's trading-state gate."""

from __future__ import annotations

import pytest

from opensqt.errors import TradingHalted
from opensqt.execution.gate import TradingStateGate
from opensqt.model import TradingState, TradingStateKind

ACTIVE, REDUCING, HALTED = TradingStateKind.ACTIVE, TradingStateKind.REDUCING, TradingStateKind.HALTED


def test_halted_refuses_every_order() -> None:
    gate = TradingStateGate(TradingState(HALTED, "crash", "risk", version=3))
    for reduce_only in (False, True):
        with pytest.raises(TradingHalted, match="HALTED"):
            gate.check(reduce_only=reduce_only)


def test_reducing_accepts_only_reduce_only_orders() -> None:
    gate = TradingStateGate(TradingState(REDUCING, "crash", "risk", version=3))
    gate.check(reduce_only=True)
    with pytest.raises(TradingHalted, match="only reduce-only"):
        gate.check(reduce_only=False)


def test_active_accepts_everything() -> None:
    gate = TradingStateGate()
    gate.check(reduce_only=False)
    gate.check(reduce_only=True)


def test_an_older_or_repeated_state_cannot_undo_a_newer_one() -> None:
    gate = TradingStateGate()
    assert gate.apply(TradingState(HALTED, version=2))
    assert not gate.apply(TradingState(ACTIVE, version=1))
    assert not gate.apply(TradingState(ACTIVE, version=2))
    assert gate.state.state is HALTED
    assert gate.apply(TradingState(ACTIVE, version=3))
    assert gate.state.state is ACTIVE


def test_a_direct_rpc_is_forced_and_lasts_until_risk_publishes_a_newer_state() -> None:
    gate = TradingStateGate(TradingState(ACTIVE, version=4))
    assert gate.apply(TradingState(HALTED, set_by="operator", version=4), force=True)
    assert not gate.apply(TradingState(ACTIVE, version=4))  # a redelivery of the old state
    assert gate.state.state is HALTED
    assert gate.apply(TradingState(ACTIVE, version=5))
