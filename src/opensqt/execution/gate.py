"""The trading-state gate every order passes through. Pure: no I/O, no clock."""

from __future__ import annotations

from opensqt.errors import TradingHalted
from opensqt.model import TradingState, TradingStateKind

__all__ = ["TradingStateGate"]

_STRICTNESS = {TradingStateKind.ACTIVE: 0, TradingStateKind.REDUCING: 1, TradingStateKind.HALTED: 2}


class TradingStateGate:
    """Holds the trading state this executor obeys.

    States from risk carry a version; an older one than the state held is ignored, so a late
    message cannot undo a newer decision. An operator's direct Halt/Resume RPC (no version) is
    applied regardless of version (``force``) and lasts until risk publishes a newer state. The
    state read from Redis again (the executor's state check) is also applied when it is stricter
    than the one held (:meth:`stricter`), whatever its version.
    """

    def __init__(self, initial: TradingState | None = None) -> None:
        self._state = initial or TradingState(state=TradingStateKind.ACTIVE, reason="initial", version=0)

    @property
    def state(self) -> TradingState:
        return self._state

    def apply(self, state: TradingState, *, force: bool = False) -> bool:
        """Adopt ``state`` if it is newer (or forced). Returns True when the gate changed."""
        if not force and state.version <= self._state.version:
            return False
        changed = state != self._state
        self._state = state
        return changed

    def stricter(self, state: TradingState) -> bool:
        """Whether ``state`` allows less than the state held."""
        return _STRICTNESS[state.state] > _STRICTNESS[self._state.state]

    def check(self, *, reduce_only: bool) -> None:
        """Raise :class:`TradingHalted` when an order may not be sent now."""
        kind = self._state.state
        if kind is TradingStateKind.HALTED:
            raise TradingHalted(f"trading is HALTED ({self._state.reason or 'no reason given'}); no orders")
        if kind is TradingStateKind.REDUCING and not reduce_only:
            raise TradingHalted(
                f"trading is REDUCING ({self._state.reason or 'no reason given'}); only reduce-only orders"
            )
