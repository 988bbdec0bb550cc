"""The liquidation guard of behaviour.md section 4, as a pure rule.

On every position update the guard measures how far the mark price is from the liquidation price,
as a fraction of the mark price: ``(mark - liq) / mark`` for a long, ``(liq - mark) / mark`` for a
short (so a position already past its liquidation price has a negative distance). Strictly below
``liquidation_threshold`` (default 0.10), it decides an emergency exit of that position and, when
the position is one leg of an arbitrage, of its hedge leg too. A position with no liquidation
price (0), no size (0) or no mark price (0) is left alone.

The guard decides; it sends nothing. It keeps no memory of past updates, so every update that is
still too close repeats the decision: the executor makes the exit idempotent (its workflow id is
the decision's ``decision_id``, which is the same for the same position update).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from opensqt.model import (
    AlertKind,
    AlertSeverity,
    Leg,
    MarketType,
    Position,
    RiskAlert,
)
from opensqt.risk.config import LiquidationConfig, RiskConfigError

__all__ = [
    "LiquidationDecision",
    "LiquidationGuard",
    "PositionKey",
    "liquidation_distance",
]


@dataclass(frozen=True, slots=True)
class PositionKey:
    """Names one position: venue, symbol and market type (a spot and a perp leg may share a symbol)."""

    venue: str
    symbol: str
    market_type: MarketType

    @classmethod
    def of_position(cls, position: Position) -> PositionKey:
        """The key of ``position``."""
        return cls(position.venue, position.symbol, position.market_type)

    @classmethod
    def of_leg(cls, leg: Leg) -> PositionKey:
        """The key of an arbitrage ``leg``."""
        return cls(leg.venue, leg.symbol, leg.market_type)

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.market_type.value}"


def liquidation_distance(position: Position) -> Decimal | None:
    """Distance from mark to liquidation as a fraction of the mark price.

    Positive while the position is safe side of its liquidation price, negative once past it.
    ``None`` when there is nothing to measure: no size, no liquidation price or no mark price.
    """
    mark = position.mark_price
    liquidation = position.liquidation_price
    if position.size == 0 or liquidation == 0 or mark <= 0:
        return None
    gap = mark - liquidation if position.size > 0 else liquidation - mark
    return gap / mark


@dataclass(frozen=True, slots=True)
class LiquidationDecision:
    """An emergency exit the risk service must carry out.

    Attributes:
        decision_id: deterministic id for this position update (idempotency key of the exit).
        position: the position update that was too close to liquidation.
        distance: its distance to liquidation (see :func:`liquidation_distance`).
        exits: the positions to close, the endangered one first, then its hedge leg if any.
            Each is closed at its actual size, read from positions when the exit runs.
        alert: the alert to publish (kind ``LIQUIDATION``). It sets no trading state.
    """

    decision_id: str
    position: Position
    distance: Decimal
    exits: tuple[PositionKey, ...]
    alert: RiskAlert


class LiquidationGuard:
    """Decides emergency exits of positions that are too close to liquidation.

    Args:
        config: the threshold; default 0.10.
        hedges: pairs of positions that hedge each other (an arbitrage's spot and perp legs).
            Pairs are symmetric: whichever leg is endangered, both are exited. A position may
            belong to one pair at most.
    """

    def __init__(
        self,
        config: LiquidationConfig | None = None,
        hedges: Iterable[tuple[PositionKey, PositionKey]] = (),
    ) -> None:
        self._config = config if config is not None else LiquidationConfig()
        self._hedges = _hedge_map(hedges)

    @property
    def config(self) -> LiquidationConfig:
        """The configuration this guard applies."""
        return self._config

    @property
    def hedges(self) -> Mapping[PositionKey, PositionKey]:
        """Each hedged position's hedge leg (both directions of every pair)."""
        return dict(self._hedges)

    def with_hedge(self, leg: PositionKey, hedge: PositionKey) -> LiquidationGuard:
        """A new guard that also knows ``leg`` and ``hedge`` hedge each other."""
        return LiquidationGuard(self._config, [*self._pairs(), (leg, hedge)])

    def without_hedge(self, leg: PositionKey) -> LiquidationGuard:
        """A new guard that forgets the pair ``leg`` belongs to (e.g. after the arbitrage closed)."""
        return LiquidationGuard(self._config, [pair for pair in self._pairs() if leg not in pair])

    def on_position_update(self, position: Position) -> LiquidationDecision | None:
        """Return an emergency exit when ``position`` is closer to liquidation than the threshold."""
        distance = liquidation_distance(position)
        if distance is None or distance >= self._config.liquidation_threshold:
            return None
        key = PositionKey.of_position(position)
        hedge = self._hedges.get(key)
        exits = (key,) if hedge is None else (key, hedge)
        decision_id = f"liquidation-{key}-{position.updated_ms}"
        side = "long" if position.size > 0 else "short"
        hedge_note = f"; exiting hedge leg {hedge} too" if hedge is not None else ""
        alert = RiskAlert(
            alert_id=decision_id,
            kind=AlertKind.LIQUIDATION,
            severity=AlertSeverity.CRITICAL,
            message=(
                f"{side} {key} size {position.size} mark {position.mark_price} is "
                f"{distance * 100:.2f}% from liquidation {position.liquidation_price} "
                f"(threshold {self._config.liquidation_threshold * 100:.2f}%): emergency exit{hedge_note}"
            ),
            symbols=tuple(dict.fromkeys(exit_key.symbol for exit_key in exits)),
            created_ms=position.updated_ms,
            resulting_state=None,
        )
        return LiquidationDecision(decision_id, position, distance, exits, alert)

    def _pairs(self) -> list[tuple[PositionKey, PositionKey]]:
        seen: set[PositionKey] = set()
        pairs: list[tuple[PositionKey, PositionKey]] = []
        for leg, hedge in self._hedges.items():
            if leg not in seen:
                seen.update((leg, hedge))
                pairs.append((leg, hedge))
        return pairs


def _hedge_map(pairs: Iterable[tuple[PositionKey, PositionKey]]) -> dict[PositionKey, PositionKey]:
    hedges: dict[PositionKey, PositionKey] = {}
    for leg, hedge in pairs:
        if leg == hedge:
            raise RiskConfigError("hedges", f"{leg} cannot hedge itself")
        for key in (leg, hedge):
            if key in hedges:
                raise RiskConfigError("hedges", f"{key} already belongs to a hedge pair")
        hedges[leg] = hedge
        hedges[hedge] = leg
    return hedges
