"""A consistent read of one symbol's open orders and position (ExecutorService/GetAccountSnapshot).

A venue answers open orders and positions from two endpoints, so a fill can land between the
two reads. The open orders are therefore read before and after the position, and the read is
kept only when both lists agree (the same orders, each with the same status and executed
quantity): then no order of the list executed while the position was read. A fill of an order
that is no longer listed happened before the first read and is in the position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from opensqt.errors import ExchangeUnavailable
from opensqt.exchange.port import ExchangePort
from opensqt.model import Instrument, MarketType, Order, Position
from opensqt.model.money import ZERO

__all__ = ["AccountRead", "read_account"]


@dataclass(frozen=True, slots=True)
class AccountRead:
    open_orders: list[Order]
    position: Position | None  # None on a spot or margin venue
    attempts: int


def _fingerprint(orders: list[Order]) -> frozenset[tuple[str, str, str, Decimal]]:
    return frozenset((o.exchange_order_id, o.client_order_id, o.status.value, o.filled_qty) for o in orders)


def net_position(positions: list[Position], instrument: Instrument, account: str) -> Position:
    """The account's net position in ``instrument`` (size 0 when flat; hedge-mode sides summed)."""
    mine = [p for p in positions if p.symbol == instrument.symbol]
    if len(mine) == 1:
        return replace(mine[0], account=mine[0].account or account)
    return Position(
        symbol=instrument.symbol,
        size=sum((p.size for p in mine), ZERO),
        venue=instrument.venue,
        account=account,
        market_type=instrument.market_type,
    )


async def read_account(
    exchange: ExchangePort, instrument: Instrument, *, account: str = "", attempts: int = 3
) -> AccountRead:
    """Open orders of ``instrument``, the position, and open orders again, until they agree.

    Raises:
        ExchangeUnavailable: the orders changed during every one of ``attempts`` reads (retryable).
    """
    symbol = instrument.symbol
    perpetual = instrument.market_type is MarketType.PERPETUAL
    before = [o for o in await exchange.fetch_open_orders(symbol) if o.symbol == symbol]
    for attempt in range(1, attempts + 1):
        position = (
            net_position(await exchange.fetch_positions([symbol]), instrument, account) if perpetual else None
        )
        after = [o for o in await exchange.fetch_open_orders(symbol) if o.symbol == symbol]
        if _fingerprint(before) == _fingerprint(after):
            return AccountRead(open_orders=after, position=position, attempts=attempt)
        before = after
    raise ExchangeUnavailable(
        f"the open orders of {symbol} changed during each of {attempts} reads of the position; try again"
    )
