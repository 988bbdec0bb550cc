"""Accounts of the simulated venue: asset balances and perpetual positions.

Balances are wallet balances per asset (``Decimal``). A spot order locks what it may spend
(quote for a BUY, base for a SELL) until it fills or ends; a MARGIN order may borrow instead,
which shows as a negative balance. Perpetuals are linear (USDⓈ-M style): PnL, fees and funding
settle in the quote asset, and a position holds a signed size and a size-weighted entry price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opensqt.model.enums import Side
from opensqt.model.money import ZERO

__all__ = ["Account", "PerpPosition", "apply_perp_fill"]


def apply_perp_fill(
    size: Decimal, entry_price: Decimal, side: Side, qty: Decimal, price: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """A fill on a position: returns ``(new size, new entry price, realized PnL)``.

    Growing: the entry price is the size-weighted average. Shrinking: PnL is realized on the
    closed quantity against the entry price, which stays. Flipping: the rest opens at the fill
    price. Flat: entry price 0.
    """
    signed = qty if side is Side.BUY else -qty
    new_size = size + signed
    if size == 0 or (size > 0) == (signed > 0):
        held = abs(size)
        return new_size, (held * entry_price + qty * price) / (held + qty), ZERO
    closed = min(qty, abs(size))
    realized = closed * (price - entry_price) if size > 0 else closed * (entry_price - price)
    if new_size == 0:
        return new_size, ZERO, realized
    if (new_size > 0) == (size > 0):
        return new_size, entry_price, realized
    return new_size, price, realized


@dataclass(slots=True)
class PerpPosition:
    """A perpetual position of one account on one market (mutable, owned by the core)."""

    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    funding: Decimal = ZERO
    fees: Decimal = ZERO

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        """``size * (mark - entry)``: what closing at ``mark_price`` would realize (before fees)."""
        if self.size == 0:
            return ZERO
        return self.size * (mark_price - self.entry_price)

    def to_state(self) -> dict[str, str]:
        return {
            "size": str(self.size),
            "entry_price": str(self.entry_price),
            "realized_pnl": str(self.realized_pnl),
            "funding": str(self.funding),
            "fees": str(self.fees),
        }

    @classmethod
    def from_state(cls, state: dict[str, str]) -> PerpPosition:
        return cls(**{name: Decimal(value) for name, value in state.items()})


@dataclass(slots=True)
class Account:
    """One trading account: balances per asset, spot locks, perpetual positions and leverage.

    Attributes:
        account_id: the account's id.
        balances: wallet balance per asset (negative: borrowed on margin).
        locked: per asset, the part of the balance reserved by open spot orders.
        positions: perpetual positions keyed by market key (``venue:symbol``).
        leverage: per market key, the leverage used for initial margin (default 1).
        fees_paid: total fees paid, in quote units of each market (summed).
        funding_paid: total funding, signed (> 0 received).
    """

    account_id: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, PerpPosition] = field(default_factory=dict)
    leverage: dict[str, Decimal] = field(default_factory=dict)
    fees_paid: Decimal = ZERO
    funding_paid: Decimal = ZERO

    def balance(self, asset: str) -> Decimal:
        """The wallet balance of ``asset`` (0 when never held)."""
        return self.balances.get(asset, ZERO)

    def free(self, asset: str) -> Decimal:
        """Balance not reserved by open orders."""
        return self.balances.get(asset, ZERO) - self.locked.get(asset, ZERO)

    def credit(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balances.get(asset, ZERO) + amount

    def lock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        left = self.locked.get(asset, ZERO) - amount
        if left:
            self.locked[asset] = left
        else:
            self.locked.pop(asset, None)

    def position(self, market_key: str) -> PerpPosition:
        """The position on ``market_key``, created flat on first use."""
        position = self.positions.get(market_key)
        if position is None:
            position = self.positions[market_key] = PerpPosition()
        return position

    def to_state(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "balances": {asset: str(value) for asset, value in self.balances.items()},
            "locked": {asset: str(value) for asset, value in self.locked.items()},
            "positions": {key: position.to_state() for key, position in self.positions.items()},
            "leverage": {key: str(value) for key, value in self.leverage.items()},
            "fees_paid": str(self.fees_paid),
            "funding_paid": str(self.funding_paid),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Account:
        return cls(
            account_id=state["account_id"],
            balances={asset: Decimal(value) for asset, value in state["balances"].items()},
            locked={asset: Decimal(value) for asset, value in state["locked"].items()},
            positions={key: PerpPosition.from_state(value) for key, value in state["positions"].items()},
            leverage={key: Decimal(value) for key, value in state["leverage"].items()},
            fees_paid=Decimal(state["fees_paid"]),
            funding_paid=Decimal(state["funding_paid"]),
        )
