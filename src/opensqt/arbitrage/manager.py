"""The arbitrage leg manager (behaviour.md §3): legs of one agent, updated atomically in a store.

:class:`LegManager` applies the pure leg operations of :mod:`opensqt.arbitrage.legs` (fills,
re-sync from exchange positions) and writes each result by compare-and-set on the leg's
``version``; a failed compare-and-set re-applies the operation to the newer leg. Fills are
de-duplicated by the order update's ``event_id``: the ids of a leg's recent fills are stored with
the leg, so the duplicate check and the update are one atomic write.

Two stores implement :class:`LegStore`: :class:`InMemoryLegStore` (backtests) and
:class:`RedisLegStore` (services).

Stored format. The Redis hash ``LEGS`` (``opensqt:v1:strategy:legs:{agent}``) has one field per
leg, named ``venue:symbol``, whose value is a UTF-8 JSON object with the
:class:`~opensqt.model.Leg` field names (decimals as decimal strings, ``market_type`` by value,
``updated_ms`` and ``version`` as numbers) plus ``recent_events``: the event ids of the last
:data:`RECENT_EVENTS` fills applied, oldest first. JSON so that the compare-and-set Lua script
can read ``version`` with Redis's built-in ``cjson``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from opensqt.arbitrage.legs import Fill, LegBook, apply_fill, leg_key, position_key, resync_leg
from opensqt.model.enums import MarketType
from opensqt.model.events import OrderUpdate
from opensqt.model.money import ZERO, parse_decimal
from opensqt.model.resources import Order, Position
from opensqt.model.state import Leg
from opensqt.transport.redis_keys import LEGS
from opensqt.transport.versioned import CAS_JSON_FIELD_LUA, contention_pause, json_count, json_text

if TYPE_CHECKING:
    from opensqt.transport.redis_store import RedisStore

__all__ = [
    "RECENT_EVENTS",
    "InMemoryLegStore",
    "LegCasResult",
    "LegChange",
    "LegConflictError",
    "LegDecodeError",
    "LegManager",
    "LegRecord",
    "LegStore",
    "RedisLegStore",
    "decode_leg_record",
    "encode_leg_record",
]

RECENT_EVENTS = 256
"""How many fill event ids each leg remembers for de-duplication."""

MAX_CAS_ATTEMPTS = 64


class LegConflictError(RuntimeError):
    """An update lost its compare-and-set more than ``max_attempts`` times in a row."""


class LegDecodeError(ValueError):
    """A stored leg cannot be read back."""


@dataclass(frozen=True, slots=True)
class LegRecord:
    """A leg as stored: the leg and the event ids of its most recent fills (oldest first)."""

    leg: Leg
    recent_events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LegCasResult:
    """The outcome of a compare-and-set: ``current`` is what the store holds afterwards."""

    written: bool
    current: LegRecord | None


@dataclass(frozen=True, slots=True)
class LegChange:
    """One applied (or ignored) update; ``None`` stands for a leg that does not exist."""

    before: Leg | None
    after: Leg | None

    @property
    def changed(self) -> bool:
        return self.after is not self.before


class LegStore(Protocol):
    """Where the legs of one agent are kept. Writes only by compare-and-set on the leg version
    (expected version 0 = no leg stored yet)."""

    agent: str

    async def load(self) -> list[LegRecord]:
        """Every stored leg."""
        ...

    async def get(self, key: str) -> LegRecord | None:
        """The leg ``venue:symbol``, or ``None``."""
        ...

    async def compare_and_set(self, record: LegRecord, expected_version: int) -> LegCasResult:
        """Store ``record`` if the stored leg's version is ``expected_version``, atomically."""
        ...


def _check_write(store: LegStore, record: LegRecord, expected_version: int) -> None:
    if record.leg.agent != store.agent:
        raise ValueError(f"leg of agent {record.leg.agent!r} cannot be stored with agent {store.agent!r}")
    if record.leg.version <= expected_version:
        raise ValueError(
            f"leg version {record.leg.version} must exceed the expected version {expected_version}"
        )


class InMemoryLegStore:
    """Legs in a dict, for backtests. Its methods never suspend, so each call is atomic."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._legs: dict[str, LegRecord] = {}

    async def load(self) -> list[LegRecord]:
        return list(self._legs.values())

    async def get(self, key: str) -> LegRecord | None:
        return self._legs.get(key)

    async def compare_and_set(self, record: LegRecord, expected_version: int) -> LegCasResult:
        _check_write(self, record, expected_version)
        current = self._legs.get(record.leg.key)
        if (current.leg.version if current is not None else 0) != expected_version:
            return LegCasResult(False, current)
        self._legs[record.leg.key] = record
        return LegCasResult(True, record)


class RedisLegStore:
    """Legs in the Redis hash ``LEGS`` (owner: strategy); every write is one Lua compare-and-set."""

    def __init__(self, redis: RedisStore, *, agent: str) -> None:
        self.agent = agent
        self._client = redis.client
        self._key = redis.writable(LEGS, agent=agent)
        self._cas = redis.client.register_script(CAS_JSON_FIELD_LUA)

    async def load(self) -> list[LegRecord]:
        raw = await self._client.hgetall(self._key)
        return [decode_leg_record(value) for value in raw.values()]

    async def get(self, key: str) -> LegRecord | None:
        raw = await self._client.hget(self._key, key)
        return None if raw is None else decode_leg_record(raw)

    async def compare_and_set(self, record: LegRecord, expected_version: int) -> LegCasResult:
        _check_write(self, record, expected_version)
        reply = await self._cas(
            keys=[self._key], args=[record.leg.key, str(expected_version), encode_leg_record(record)]
        )
        if int(reply[0]) == 1:
            return LegCasResult(True, record)
        current = reply[1] if len(reply) > 1 else b""
        return LegCasResult(False, decode_leg_record(current) if current else None)


LegUpdate = Callable[[LegRecord | None], LegRecord | None]


class LegManager:
    """The legs of one arbitrage agent, keyed ``venue:symbol`` with signed size (behaviour.md §3).

    Fills and re-syncs are the pure functions of :mod:`opensqt.arbitrage.legs`, written by
    compare-and-set on the leg version and re-applied on conflict, so concurrent tasks and
    processes sharing the store never lose an update. The in-process copy (:attr:`legs`) changes
    only between awaits and only forward in version; no lock is needed and none is held across
    I/O. Implements :class:`opensqt.engine.views.PositionView`.

    Args:
        store: where the legs live; gives the agent.
        dust: the delta-neutral and flat threshold (|net| below it counts as zero).
        max_attempts: compare-and-set attempts per update before :class:`LegConflictError`.
    """

    def __init__(self, store: LegStore, *, dust: Decimal, max_attempts: int = MAX_CAS_ATTEMPTS) -> None:
        if not dust.is_finite() or dust < 0:
            raise ValueError(f"dust must be a non-negative decimal, got {dust}")
        self._store = store
        self.agent = store.agent
        self.dust = dust
        self._max_attempts = max_attempts
        self._legs: dict[str, Leg] = {}
        self._revision = 0
        self.conflicts = 0
        """Compare-and-set conflicts seen so far (each one re-applied an update)."""

    # -- reading --------------------------------------------------------------------------------

    @property
    def legs(self) -> Mapping[str, Leg]:
        """A live read-only view of the legs by ``venue:symbol``."""
        return MappingProxyType(self._legs)

    @property
    def revision(self) -> int:
        """Changes whenever a leg in :attr:`legs` changes."""
        return self._revision

    def leg(self, key: str) -> Leg | None:
        return self._legs.get(key)

    def book(self) -> LegBook:
        """The legs as an immutable :class:`LegBook` (ordered by key)."""
        return LegBook(self.agent, tuple(self._legs[key] for key in sorted(self._legs)))

    def net_size(self) -> Decimal:
        """Σ signed leg sizes: the unhedged base exposure."""
        return self.book().net_size()

    def is_delta_neutral(self, dust: Decimal | None = None) -> bool:
        """True when ``|Σ signed sizes|`` is below ``dust`` (default: the manager's)."""
        return self.book().is_delta_neutral(self.dust if dust is None else dust)

    def is_flat(self, dust: Decimal | None = None) -> bool:
        """True when every leg's ``|size|`` is below ``dust`` (default: the manager's)."""
        return self.book().is_flat(self.dust if dust is None else dust)

    async def load(self) -> None:
        """Read every leg from the store (on start, or to catch up with other processes)."""
        for record in await self._store.load():
            self._remember(record.leg)

    # -- updates --------------------------------------------------------------------------------

    async def ensure_leg(self, venue: str, symbol: str, market_type: MarketType) -> Leg:
        """The leg ``venue:symbol``, created flat when it does not exist."""

        def create(record: LegRecord | None) -> LegRecord | None:
            if record is not None:
                return record
            leg = Leg(agent=self.agent, venue=venue, symbol=symbol, market_type=market_type, version=1)
            return LegRecord(leg)

        leg = (await self._update(leg_key(venue, symbol), create)).after
        if leg is None:  # pragma: no cover - create() always returns a leg
            raise LegConflictError(f"leg {leg_key(venue, symbol)} could not be created")
        return leg

    async def apply_fill(
        self, fill: Fill, *, event_id: str, market_type: MarketType | None = None
    ) -> LegChange:
        """Apply one execution to its leg, once per ``event_id``.

        A repeated ``event_id`` (one of the leg's last :data:`RECENT_EVENTS`) changes nothing.
        With ``market_type``, a missing leg starts flat; without it a missing leg is an error.

        Raises:
            ValueError: ``event_id`` is empty.
            KeyError: the leg does not exist and ``market_type`` is not given.
        """
        if not event_id:
            raise ValueError("a fill needs the event id that de-duplicates it")

        def change(record: LegRecord | None) -> LegRecord | None:
            if record is None:
                if market_type is None:
                    raise KeyError(f"no leg {fill.key!r} for agent {self.agent!r}")
                record = LegRecord(
                    Leg(agent=self.agent, venue=fill.venue, symbol=fill.symbol, market_type=market_type)
                )
            elif event_id in record.recent_events:
                return record
            events = (*record.recent_events, event_id)[-RECENT_EVENTS:]
            return LegRecord(apply_fill(record.leg, fill), events)

        return await self._update(fill.key, change)

    async def on_order_update(self, update: OrderUpdate) -> LegChange | None:
        """Apply the fill an order update reports (``last_fill_qty``); ``None`` when it has none."""
        if update.last_fill_qty <= 0:
            return None
        order = update.order
        fill = Fill(
            venue=order.venue,
            symbol=order.symbol,
            side=order.side,
            quantity=update.last_fill_qty,
            price=update.last_fill_price,
            time_ms=order.updated_ms,
        )
        return await self.apply_fill(fill, event_id=update.event_id, market_type=order.market_type)

    async def resync(self, positions: Iterable[Position]) -> list[LegChange]:
        """Re-sync legs to the exchange's positions (authoritative; older snapshots are ignored).

        A position for a leg that does not exist yet creates it (when its size is not zero).
        """
        return [await self._resync_one(position) for position in positions]

    async def _resync_one(self, position: Position) -> LegChange:
        def change(record: LegRecord | None) -> LegRecord | None:
            if record is None:
                if position.size == 0:
                    return None
                leg = Leg(
                    agent=self.agent,
                    venue=position.venue,
                    symbol=position.symbol,
                    market_type=position.market_type,
                )
                return LegRecord(resync_leg(leg, position))
            updated = resync_leg(record.leg, position)
            return record if updated is record.leg else LegRecord(updated, record.recent_events)

        return await self._update(position_key(position), change)

    async def _update(self, key: str, change: LegUpdate) -> LegChange:
        """Apply the pure ``change`` to the stored leg ``key`` by compare-and-set, retrying."""
        current = await self._store.get(key)
        for attempt in range(self._max_attempts):
            if attempt:
                await contention_pause(attempt)
            updated = change(current)
            if updated is current or updated is None:
                if current is None:
                    return LegChange(None, None)
                self._remember(current.leg)
                return LegChange(current.leg, current.leg)
            if updated.leg.key != key:
                raise ValueError(f"an update of leg {key} returned leg {updated.leg.key}")
            expected = current.leg.version if current is not None else 0
            result = await self._store.compare_and_set(updated, expected)
            if result.written:
                self._remember(updated.leg)
                return LegChange(current.leg if current is not None else None, updated.leg)
            self.conflicts += 1
            current = result.current
        raise LegConflictError(f"leg {key}: {self._max_attempts} compare-and-set conflicts in a row")

    def _remember(self, leg: Leg) -> None:
        known = self._legs.get(leg.key)
        if known is not None and known.version >= leg.version:
            return
        self._legs[leg.key] = leg
        self._revision += 1

    # -- PositionView ---------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        """One position per non-flat leg, by key."""
        return [
            Position(
                symbol=leg.symbol,
                size=leg.size,
                entry_price=leg.entry_price,
                venue=leg.venue,
                market_type=leg.market_type,
                updated_ms=leg.updated_ms,
            )
            for key, leg in sorted(self._legs.items())
            if leg.size != 0
        ]

    def working_orders(self) -> list[Order]:
        """Legs trade by market orders that the executor owns: no working orders here."""
        return []

    def exposure(self) -> Decimal:
        """Σ signed leg sizes (base units): zero when the legs hedge each other exactly."""
        return sum((leg.size for leg in self._legs.values()), ZERO)


# -- stored format ------------------------------------------------------------------------------


def encode_leg_record(record: LegRecord) -> bytes:
    """A leg as stored: compact UTF-8 JSON (see the module docstring)."""
    leg = record.leg
    document = {
        "agent": leg.agent,
        "venue": leg.venue,
        "symbol": leg.symbol,
        "market_type": leg.market_type.value,
        "size": format(leg.size, "f"),
        "entry_price": format(leg.entry_price, "f"),
        "updated_ms": leg.updated_ms,
        "version": leg.version,
        "recent_events": list(record.recent_events),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_leg_record(raw: bytes | str) -> LegRecord:
    """A stored leg back as a :class:`LegRecord`.

    Raises:
        LegDecodeError: the document is not a well-formed leg.
    """
    try:
        document: dict[str, Any] = json.loads(raw)
        events = document["recent_events"]
        if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
            raise TypeError(f"recent_events must be a list of strings, got {events!r}")
        leg = Leg(
            agent=json_text(document, "agent"),
            venue=json_text(document, "venue"),
            symbol=json_text(document, "symbol"),
            market_type=MarketType(document["market_type"]),
            size=parse_decimal(document["size"], field="size"),
            entry_price=parse_decimal(document["entry_price"], field="entry_price", non_negative=True),
            updated_ms=json_count(document, "updated_ms"),
            version=json_count(document, "version"),
        )
        return LegRecord(leg, tuple(events))
    except (KeyError, TypeError, ValueError) as exc:
        raise LegDecodeError(f"stored leg {raw!r} is unreadable: {exc}") from exc
