"""Deterministic client order ids for grid slots.

Format: ``{prefix}{symbol}-{agent}-{priceInt}-{B|S}-{cycle}``.

* ``priceInt`` is the slot price counted in ticks: ``slot_price / tick_size``, which must be a
  whole number (slot prices are on the tick grid). With tick 0.01, slot 2998.00 is ``299800``;
  parsing multiplies back by the tick. Counting ticks keeps ids free of ``.`` and exponent
  notation, and two distinct slots never share an id.
* ``B``/``S`` is the side of the order, not the kind of slot.
* ``cycle`` is the slot's counter of finished orders, so a new cycle never reuses the id of a
  finished order while a retry within a cycle reuses its id (idempotent).

Ids use only the characters Binance accepts (``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``). The agent may not
contain ``-``; the symbol may (ids are split from the right), and the prefix is stripped by value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.enums import Side
from opensqt.model.instrument import Instrument

__all__ = [
    "BINANCE_CLIENT_ID_RE",
    "ClientOrderIdCodec",
    "ClientOrderIdError",
    "ClientOrderIdParts",
    "format_client_order_id",
    "parse_client_order_id",
    "price_to_ticks",
]

BINANCE_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_SAFE_RE = re.compile(r"[.A-Za-z0-9:/_-]*")
_AGENT_RE = re.compile(r"[.A-Za-z0-9:/_]+")
_CANONICAL_UINT_RE = re.compile(r"0|[1-9][0-9]*")
_SIDE_CODES = {Side.BUY: "B", Side.SELL: "S"}
_SIDES_BY_CODE = {"B": Side.BUY, "S": Side.SELL}
# after the head: "-" after priceInt, the one-letter side code, "-" after the side
_TAIL_FIXED_CHARS = 3


class ClientOrderIdError(ValueError):
    """A client order id cannot be built (too long, bad characters) or parsed (malformed)."""


@dataclass(frozen=True, slots=True)
class ClientOrderIdParts:
    """What a grid client order id says: which slot, which side, which cycle."""

    symbol: str
    agent: str
    slot_price: Decimal
    side: Side
    cycle: int


def price_to_ticks(price: Decimal, tick_size: Decimal) -> int:
    """Return ``price / tick_size`` as an int; refuse prices that are not positive and on tick."""
    if not price.is_finite() or price <= 0:
        raise ClientOrderIdError(f"slot price must be positive, got {price}")
    ticks = price / tick_size
    whole = ticks.to_integral_value()
    if ticks != whole:
        raise ClientOrderIdError(f"slot price {price} is not a multiple of tick size {tick_size}")
    return int(whole)


class ClientOrderIdCodec:
    """Builds and parses the client order ids of one agent on one instrument.

    The constructor checks that an id with ``price_digits`` digits of ticks and ``cycle_digits``
    digits of cycle fits ``max_length``, so a configuration that cannot work fails at start-up.
    :meth:`encode` still checks every id it builds against ``max_length``.
    """

    __slots__ = ("_agent", "_head", "_max_length", "_prefix", "_symbol", "_tick_size")

    def __init__(
        self,
        *,
        symbol: str,
        agent: str,
        tick_size: Decimal,
        prefix: str = "",
        max_length: int = 36,
        price_digits: int = 8,
        cycle_digits: int = 6,
    ) -> None:
        if not symbol or not _SAFE_RE.fullmatch(symbol):
            raise ClientOrderIdError(f"symbol {symbol!r} holds characters not allowed in client order ids")
        if not _AGENT_RE.fullmatch(agent):
            raise ClientOrderIdError(f"agent {agent!r} must be non-empty letters, digits or '._:/' (no '-')")
        if not _SAFE_RE.fullmatch(prefix):
            raise ClientOrderIdError(f"prefix {prefix!r} holds characters not allowed in client order ids")
        if tick_size <= 0:
            raise ClientOrderIdError(f"tick size must be positive, got {tick_size}")
        head = f"{prefix}{symbol}-{agent}-"
        worst = len(head) + price_digits + cycle_digits + _TAIL_FIXED_CHARS
        if worst > max_length:
            raise ClientOrderIdError(
                f"client order ids for {symbol!r} cannot fit {max_length} characters: "
                f"prefix {prefix!r} + symbol + agent {agent!r} + {price_digits} price digits + "
                f"{cycle_digits} cycle digits need {worst}; shorten the prefix or agent name"
            )
        self._head = head
        self._max_length = max_length
        self._prefix = prefix
        self._symbol = symbol
        self._agent = agent
        self._tick_size = tick_size

    @classmethod
    def for_instrument(
        cls,
        instrument: Instrument,
        *,
        agent: str,
        prefix: str = "",
        price_digits: int = 8,
        cycle_digits: int = 6,
    ) -> ClientOrderIdCodec:
        """A codec using the instrument's symbol, tick size and id length limit."""
        return cls(
            symbol=instrument.symbol,
            agent=agent,
            tick_size=instrument.tick_size,
            prefix=prefix,
            max_length=instrument.max_client_order_id_length,
            price_digits=price_digits,
            cycle_digits=cycle_digits,
        )

    def encode(self, slot_price: Decimal, side: Side, cycle: int) -> str:
        """The client order id of the order of ``side`` on ``slot_price`` in ``cycle``."""
        if cycle < 0:
            raise ClientOrderIdError(f"cycle must not be negative, got {cycle}")
        ticks = price_to_ticks(slot_price, self._tick_size)
        client_order_id = f"{self._head}{ticks}-{_SIDE_CODES[side]}-{cycle}"
        if len(client_order_id) > self._max_length:
            raise ClientOrderIdError(
                f"client order id {client_order_id!r} is longer than {self._max_length} characters"
            )
        return client_order_id

    def owns(self, client_order_id: str) -> bool:
        """Whether ``client_order_id`` is of this codec's agent and symbol (and prefix)."""
        return client_order_id.startswith(self._head)

    def decode(self, client_order_id: str) -> ClientOrderIdParts:
        """Parse an id built by this codec's prefix and tick size (see :func:`parse_client_order_id`)."""
        return parse_client_order_id(client_order_id, tick_size=self._tick_size, prefix=self._prefix)


def format_client_order_id(
    *,
    symbol: str,
    agent: str,
    slot_price: Decimal,
    side: Side,
    cycle: int,
    tick_size: Decimal,
    prefix: str = "",
    max_length: int = 36,
) -> str:
    """Build one client order id (for hot paths, keep a :class:`ClientOrderIdCodec` instead)."""
    codec = ClientOrderIdCodec(
        symbol=symbol,
        agent=agent,
        tick_size=tick_size,
        prefix=prefix,
        max_length=max_length,
        price_digits=1,
        cycle_digits=1,
    )
    return codec.encode(slot_price, side, cycle)


def parse_client_order_id(
    client_order_id: str, *, tick_size: Decimal, prefix: str = ""
) -> ClientOrderIdParts:
    """Parse ``{prefix}{symbol}-{agent}-{priceInt}-{B|S}-{cycle}`` back to its parts.

    Raises:
        ClientOrderIdError: the id is not a grid client order id with this prefix.
    """
    if not isinstance(client_order_id, str) or not client_order_id:
        raise ClientOrderIdError(f"client order id must be a non-empty string, got {client_order_id!r}")
    if not _SAFE_RE.fullmatch(client_order_id):
        raise ClientOrderIdError(
            f"client order id {client_order_id!r} holds characters outside [.A-Za-z0-9:/_-]"
        )
    if not client_order_id.startswith(prefix):
        raise ClientOrderIdError(f"client order id {client_order_id!r} does not start with prefix {prefix!r}")
    parts = client_order_id[len(prefix) :].rsplit("-", 4)
    if len(parts) != 5:
        raise ClientOrderIdError(
            f"client order id {client_order_id!r} is not symbol-agent-priceInt-side-cycle"
        )
    symbol, agent, price_text, side_code, cycle_text = parts
    if not symbol:
        raise ClientOrderIdError(f"client order id {client_order_id!r} has an empty symbol")
    if not agent:
        raise ClientOrderIdError(f"client order id {client_order_id!r} has an empty agent")
    if not _CANONICAL_UINT_RE.fullmatch(price_text) or price_text == "0":
        raise ClientOrderIdError(
            f"client order id {client_order_id!r}: price {price_text!r} is not a positive tick count"
        )
    side = _SIDES_BY_CODE.get(side_code)
    if side is None:
        raise ClientOrderIdError(f"client order id {client_order_id!r}: side {side_code!r} is not B or S")
    if not _CANONICAL_UINT_RE.fullmatch(cycle_text):
        raise ClientOrderIdError(f"client order id {client_order_id!r}: cycle {cycle_text!r} is not a number")
    slot_price = (Decimal(int(price_text)) * tick_size).quantize(tick_size)
    return ClientOrderIdParts(
        symbol=symbol, agent=agent, slot_price=slot_price, side=side, cycle=int(cycle_text)
    )
