"""Pure leg bookkeeping for the funding-rate arbitrage.

A leg is one side of the hedge (the spot holding or the perpetual position), keyed
``venue:symbol`` with a signed base-asset size (positive long, negative short). Two operations
change a leg:

- :func:`apply_fill` adds one execution (a delta). The caller de-duplicates fills (the
  Redis-backed ``LegManager`` does it by ``OrderUpdate.event_id``); applying the same fill twice
  counts it twice.
- :func:`resync_leg` replaces the size with the exchange's position (a snapshot, authoritative).
  A snapshot older than the leg's last change is ignored, so a position published before a fill
  but delivered after it cannot undo the fill.

:class:`LegBook` is an immutable set of legs with the checks the strategy needs: net exposure,
delta-neutral and flat, each against a dust threshold. Sizes are in base units, so the net of a
spot leg and a linear (USDⓈ-M) perpetual leg is the unhedged base exposure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from opensqt.model.enums import Side
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO
from opensqt.model.resources import Position
from opensqt.model.state import Leg

__all__ = [
    "Fill",
    "LegBook",
    "apply_fill",
    "leg_key",
    "position_key",
    "resync_leg",
]


def leg_key(venue: str, symbol: str) -> str:
    """The key of a leg: ``venue:symbol`` (the same as :attr:`Leg.key`)."""
    return f"{venue}:{symbol}"


def position_key(position: Position) -> str:
    """The leg key a position belongs to."""
    return leg_key(position.venue, position.symbol)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution on one leg: ``quantity`` base units bought or sold at ``price``.

    ``time_ms`` is when it happened (exchange time when known); 0 means unknown.
    """

    venue: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    time_ms: int = 0

    def __post_init__(self) -> None:
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise ValueError(f"fill quantity must be greater than zero, got {self.quantity}")
        if not self.price.is_finite() or self.price < 0:
            raise ValueError(f"fill price must not be negative, got {self.price}")

    @property
    def key(self) -> str:
        return leg_key(self.venue, self.symbol)

    @property
    def signed_quantity(self) -> Decimal:
        """``+quantity`` for a buy, ``-quantity`` for a sell."""
        return self.quantity if self.side is Side.BUY else -self.quantity


def apply_fill(leg: Leg, fill: Fill) -> Leg:
    """Return ``leg`` after ``fill``: new signed size, entry price and a bumped version.

    The entry price is the size-weighted average while the leg grows, unchanged while it shrinks,
    the fill price when the fill flips the leg's sign, and 0 when the leg ends flat.
    """
    if fill.key != leg.key:
        raise ValueError(f"fill for {fill.key} cannot be applied to leg {leg.key}")
    signed = fill.signed_quantity
    new_size = leg.size + signed
    if new_size == 0:
        entry_price = ZERO
    elif leg.size == 0 or (leg.size > 0) == (signed > 0):
        held = abs(leg.size)
        entry_price = (held * leg.entry_price + fill.quantity * fill.price) / (held + fill.quantity)
    elif (leg.size > 0) == (new_size > 0):
        entry_price = leg.entry_price
    else:
        entry_price = fill.price
    return replace(
        leg,
        size=new_size,
        entry_price=entry_price,
        updated_ms=max(leg.updated_ms, fill.time_ms),
        version=leg.version + 1,
    )


def resync_leg(leg: Leg, position: Position) -> Leg:
    """Return ``leg`` re-synced to the exchange's ``position`` (authoritative size and entry).

    The leg is returned unchanged when the position is for another key, when the snapshot is
    older than the leg's last change (both timestamps known), or when nothing differs; only a
    real change bumps the version.
    """
    if position_key(position) != leg.key:
        raise ValueError(f"position for {position_key(position)} cannot re-sync leg {leg.key}")
    if position.updated_ms and leg.updated_ms and position.updated_ms < leg.updated_ms:
        return leg
    if position.size == leg.size and position.entry_price == leg.entry_price:
        return leg
    return replace(
        leg,
        size=position.size,
        entry_price=position.entry_price if position.size != 0 else ZERO,
        updated_ms=max(leg.updated_ms, position.updated_ms),
        version=leg.version + 1,
    )


@dataclass(frozen=True, slots=True)
class LegBook:
    """An immutable set of legs of one agent, one per ``venue:symbol``.

    Every change returns a new book; the strategy keeps the latest one in its state and the
    Redis-backed ``LegManager`` can store the legs one hash field per key.
    """

    agent: str
    legs: tuple[Leg, ...] = ()

    def __post_init__(self) -> None:
        keys = [leg.key for leg in self.legs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate leg keys in book: {keys}")

    @classmethod
    def for_instruments(cls, agent: str, instruments: Iterable[Instrument]) -> LegBook:
        """A book with one flat leg per instrument."""
        return cls(
            agent=agent,
            legs=tuple(
                Leg(agent=agent, venue=item.venue, symbol=item.symbol, market_type=item.market_type)
                for item in instruments
            ),
        )

    def get(self, key: str) -> Leg | None:
        """The leg with ``key``, or ``None``."""
        for leg in self.legs:
            if leg.key == key:
                return leg
        return None

    def size(self, key: str) -> Decimal:
        """The signed size of the leg with ``key`` (0 when there is no such leg)."""
        leg = self.get(key)
        return leg.size if leg is not None else ZERO

    def with_leg(self, leg: Leg) -> LegBook:
        """A book with ``leg`` added or replacing the leg with the same key."""
        if leg.agent != self.agent:
            raise ValueError(f"leg of agent {leg.agent!r} cannot join the book of {self.agent!r}")
        others = tuple(existing for existing in self.legs if existing.key != leg.key)
        if len(others) == len(self.legs):
            return replace(self, legs=(*self.legs, leg))
        return replace(
            self, legs=tuple(leg if existing.key == leg.key else existing for existing in self.legs)
        )

    def apply_fill(self, fill: Fill) -> LegBook:
        """A book with ``fill`` applied to its leg (which must exist)."""
        leg = self._require(fill.key)
        return self.with_leg(apply_fill(leg, fill))

    def resync(self, position: Position) -> LegBook:
        """A book with the position's leg (which must exist) re-synced to it."""
        leg = self._require(position_key(position))
        updated = resync_leg(leg, position)
        return self if updated is leg else self.with_leg(updated)

    def net_size(self) -> Decimal:
        """Σ signed sizes: the unhedged base exposure."""
        return sum((leg.size for leg in self.legs), ZERO)

    def is_delta_neutral(self, dust: Decimal) -> bool:
        """True when ``|Σ signed sizes| < dust``."""
        return abs(self.net_size()) < dust

    def is_flat(self, dust: Decimal) -> bool:
        """True when every leg's ``|size| < dust``."""
        return all(abs(leg.size) < dust for leg in self.legs)

    def _require(self, key: str) -> Leg:
        leg = self.get(key)
        if leg is None:
            raise KeyError(f"no leg {key!r} in the book of {self.agent!r}")
        return leg
