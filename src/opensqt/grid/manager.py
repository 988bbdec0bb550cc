"""The grid's slot manager (behaviour.md §2): pure slot transitions applied atomically in a store.

:class:`SlotManager` routes order updates to slots in O(1), applies the pure transitions of
:mod:`opensqt.grid.slots` and writes each result with compare-and-set on the slot's ``version``.
A failed compare-and-set re-applies the same pure transition to the slot the store holds now, so
concurrent writers (tasks, or processes sharing Redis) never lose a transition; duplicates and
stale updates are no-ops by the transitions' own rules.

Two stores implement :class:`SlotStore`: :class:`InMemorySlotStore` (backtests, SimpleEngine)
and :class:`RedisSlotStore` (services).

Stored format. The Redis hash ``GRID_SLOTS`` (``opensqt:v1:strategy:slots:{agent}:{symbol}``)
has one field per slot, named by the slot price in plain normalised notation (``2998``,
``2998.5``), whose value is a UTF-8 JSON object with the :class:`~opensqt.model.InventorySlot`
field names: decimals as decimal strings, enums by value (``null`` when unset), ``cycle``,
``post_only_rejects``, ``version`` and ``order_requested_ms`` as numbers (a slot stored before
``order_requested_ms`` existed reads it as 0, and the order flags ``order_reduce_only`` and
``order_post_only``, true, false or null, as null; see :func:`encode_slot` / :func:`decode_slot`).
JSON rather than protobuf so that the compare-and-set Lua script can read ``version`` (with the
``cjson`` library built into Redis) and ``redis-cli`` shows readable state. ``GRID_ANCHOR`` is a
string key holding the anchor as a decimal string, written once (first writer wins).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from opensqt.grid import slots as transitions
from opensqt.grid.client_ids import ClientOrderIdCodec, ClientOrderIdError, ClientOrderIdParts
from opensqt.grid.config import GridConfig
from opensqt.grid.reconcile import ReconcileReport, reconcile
from opensqt.model.enums import LockStatus, OrderStatus, OrderType, PositionStatus, Side
from opensqt.model.events import OrderUpdate
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO, DecimalParseError, parse_decimal
from opensqt.model.resources import Order, Position
from opensqt.model.state import InventorySlot
from opensqt.transport.redis_keys import GRID_ANCHOR, GRID_INTERVAL, GRID_SLOTS
from opensqt.transport.versioned import CAS_JSON_FIELD_LUA, contention_pause, json_count, json_text

if TYPE_CHECKING:
    from opensqt.transport.redis_store import RedisStore

__all__ = [
    "CasResult",
    "InMemorySlotStore",
    "RedisSlotStore",
    "SlotChange",
    "SlotConflictError",
    "SlotDecodeError",
    "SlotManager",
    "SlotStore",
    "decode_slot",
    "encode_slot",
    "slot_field",
]

MAX_CAS_ATTEMPTS = 64


class SlotConflictError(RuntimeError):
    """A transition lost its compare-and-set more than ``max_attempts`` times in a row."""


class SlotDecodeError(ValueError):
    """A stored slot (or anchor) cannot be read back."""


@dataclass(frozen=True, slots=True)
class CasResult:
    """The outcome of a compare-and-set: ``current`` is what the store holds afterwards
    (the written slot on success, ``None`` when no slot is stored)."""

    written: bool
    current: InventorySlot | None


@dataclass(frozen=True, slots=True)
class SlotChange:
    """One applied (or ignored) transition: ``after is before`` when nothing changed.

    ``before`` is the slot the transition was applied to (a fresh version-0 slot when the store
    held none).
    """

    before: InventorySlot
    after: InventorySlot

    @property
    def changed(self) -> bool:
        return self.after is not self.before

    @property
    def executed_qty(self) -> Decimal:
        """The inventory change: positive when bought, negative when sold."""
        return self.after.position_qty - self.before.position_qty


class SlotStore(Protocol):
    """Where the slots and the anchor of one agent on one symbol are kept.

    A store never applies transitions: it reads, and writes only by compare-and-set on the slot
    version (expected version 0 = no slot stored yet).
    """

    agent: str
    symbol: str

    async def load(self) -> list[InventorySlot]:
        """Every stored slot."""
        ...

    async def get(self, slot_price: Decimal) -> InventorySlot | None:
        """The stored slot at ``slot_price``, or ``None``."""
        ...

    async def compare_and_set(self, slot: InventorySlot, expected_version: int) -> CasResult:
        """Store ``slot`` if the stored slot's version is ``expected_version``, atomically."""
        ...

    async def get_anchor(self) -> Decimal | None:
        """The persisted grid anchor, or ``None``."""
        ...

    async def set_anchor_if_absent(self, anchor: Decimal) -> Decimal:
        """Persist ``anchor`` unless one is persisted already; return the persisted anchor."""
        ...

    async def get_interval(self) -> Decimal | None:
        """The price interval the grid was last started with, or ``None``."""
        ...

    async def set_interval(self, interval: Decimal) -> None:
        """Persist the price interval the grid starts with."""
        ...


def _check_write(store: SlotStore, slot: InventorySlot, expected_version: int) -> None:
    if slot.agent != store.agent or slot.symbol != store.symbol:
        raise ValueError(
            f"slot of {slot.agent}/{slot.symbol} cannot be stored with {store.agent}/{store.symbol}"
        )
    if slot.version <= expected_version:
        raise ValueError(f"slot version {slot.version} must exceed the expected version {expected_version}")


class InMemorySlotStore:
    """Slots in a dict, for backtests and the SimpleEngine.

    Its methods never suspend, so each call is atomic with respect to other tasks.
    """

    def __init__(self, agent: str, symbol: str) -> None:
        self.agent = agent
        self.symbol = symbol
        self._slots: dict[Decimal, InventorySlot] = {}
        self._anchor: Decimal | None = None
        self._interval: Decimal | None = None

    async def load(self) -> list[InventorySlot]:
        return list(self._slots.values())

    async def get(self, slot_price: Decimal) -> InventorySlot | None:
        return self._slots.get(slot_price)

    async def compare_and_set(self, slot: InventorySlot, expected_version: int) -> CasResult:
        _check_write(self, slot, expected_version)
        current = self._slots.get(slot.slot_price)
        if (current.version if current is not None else 0) != expected_version:
            return CasResult(False, current)
        self._slots[slot.slot_price] = slot
        return CasResult(True, slot)

    async def get_anchor(self) -> Decimal | None:
        return self._anchor

    async def set_anchor_if_absent(self, anchor: Decimal) -> Decimal:
        if self._anchor is None:
            self._anchor = anchor
        return self._anchor

    async def get_interval(self) -> Decimal | None:
        return self._interval

    async def set_interval(self, interval: Decimal) -> None:
        self._interval = interval


# Compare-and-set of one hash field holding a JSON document with a top-level "version".
# KEYS[1] = hash; ARGV[1] = field; ARGV[2] = expected version (0 = absent); ARGV[3] = document.
# Returns {1} when written, {0, current document or ''} when the stored version differs.


class RedisSlotStore:
    """Slots in the Redis hash ``GRID_SLOTS``, the anchor in ``GRID_ANCHOR`` and the interval in
    ``GRID_INTERVAL`` (owner: strategy).

    Every write is the :data:`CAS_JSON_FIELD_LUA` script: one atomic compare-and-set on the
    slot's version, never a read-modify-write from Python.
    """

    def __init__(self, redis: RedisStore, *, agent: str, symbol: str) -> None:
        self.agent = agent
        self.symbol = symbol
        self._client = redis.client
        self._slots_key = redis.writable(GRID_SLOTS, agent=agent, symbol=symbol)
        self._anchor_key = redis.writable(GRID_ANCHOR, agent=agent, symbol=symbol)
        self._interval_key = redis.writable(GRID_INTERVAL, agent=agent, symbol=symbol)
        self._cas = redis.client.register_script(CAS_JSON_FIELD_LUA)

    async def load(self) -> list[InventorySlot]:
        raw = await self._client.hgetall(self._slots_key)
        return [decode_slot(value) for value in raw.values()]

    async def get(self, slot_price: Decimal) -> InventorySlot | None:
        raw = await self._client.hget(self._slots_key, slot_field(slot_price))
        return None if raw is None else decode_slot(raw)

    async def compare_and_set(self, slot: InventorySlot, expected_version: int) -> CasResult:
        _check_write(self, slot, expected_version)
        reply = await self._cas(
            keys=[self._slots_key],
            args=[slot_field(slot.slot_price), str(expected_version), encode_slot(slot)],
        )
        if int(reply[0]) == 1:
            return CasResult(True, slot)
        current = reply[1] if len(reply) > 1 else b""
        return CasResult(False, decode_slot(current) if current else None)

    async def get_anchor(self) -> Decimal | None:
        return await self._get_price(self._anchor_key, "anchor")

    async def set_anchor_if_absent(self, anchor: Decimal) -> Decimal:
        # SET NX cannot race: the anchor is never overwritten, so reading it back is exact.
        await self._client.set(self._anchor_key, format(anchor, "f"), nx=True)
        stored = await self.get_anchor()
        if stored is None:  # pragma: no cover - only if someone deletes the key in between
            raise SlotDecodeError("the anchor vanished right after it was written")
        return stored

    async def get_interval(self) -> Decimal | None:
        return await self._get_price(self._interval_key, "interval")

    async def _get_price(self, key: str, field: str) -> Decimal | None:
        raw = await self._client.get(key)
        if raw is None:
            return None
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            return parse_decimal(text, field=field, positive=True)
        except (DecimalParseError, UnicodeDecodeError) as exc:
            raise SlotDecodeError(f"stored {field} {raw!r} is unreadable: {exc}") from exc

    async def set_interval(self, interval: Decimal) -> None:
        await self._client.set(self._interval_key, format(interval, "f"))


class SlotManager:
    """The slots of one grid agent on one symbol (behaviour.md §2), over a :class:`SlotStore`.

    * Transitions: every change is a pure function of :mod:`opensqt.grid.slots` applied to the
      slot the store holds and written by compare-and-set on its version; on conflict the same
      function is re-applied to the newer slot. Nothing is lost and nothing applies twice.
    * Routing: order updates find their slot in O(1) through indexes by client order id and by
      exchange order id, falling back to the slot price that the client id itself carries (so
      orders placed by another process sharing the store route too).
    * Task safety: the in-process copy of the slots (:attr:`slots`) and the indexes change only
      in synchronous code between awaits, so they need no lock and no I/O ever runs under one;
      copies only move forward in version. The manager belongs to one event loop (as redis.asyncio
      clients do); other threads call it through ``asyncio.run_coroutine_threadsafe``.
    * Observability: implements :class:`opensqt.engine.views.PositionView`.

    Args:
        store: where the slots live; gives the agent and symbol.
        codec: the agent's client order id codec (``Strategy.codec``), for routing by the slot
            price inside client ids; without it only the indexes route.
        venue: reported on positions and working orders.
        max_attempts: compare-and-set attempts per transition before :class:`SlotConflictError`.
    """

    def __init__(
        self,
        store: SlotStore,
        *,
        codec: ClientOrderIdCodec | None = None,
        venue: str = "",
        max_attempts: int = MAX_CAS_ATTEMPTS,
    ) -> None:
        self._store = store
        self.agent = store.agent
        self.symbol = store.symbol
        self._codec = codec
        self._venue = venue
        self._max_attempts = max_attempts
        self._slots: dict[Decimal, InventorySlot] = {}
        self._by_client_id: dict[str, Decimal] = {}
        self._by_exchange_id: dict[str, Decimal] = {}
        self._anchor: Decimal | None = None
        self._revision = 0
        self.conflicts = 0
        """Compare-and-set conflicts seen so far (each one re-applied a transition)."""

    # -- reading --------------------------------------------------------------------------------

    @property
    def slots(self) -> Mapping[Decimal, InventorySlot]:
        """A live read-only view of the slots, keyed by slot price (copy it to keep a snapshot)."""
        return MappingProxyType(self._slots)

    @property
    def revision(self) -> int:
        """Changes whenever a slot in :attr:`slots` changes (``Strategy.on_price(slots_version=)``)."""
        return self._revision

    @property
    def anchor(self) -> Decimal | None:
        """The persisted grid anchor, once loaded or set."""
        return self._anchor

    def slot(self, slot_price: Decimal) -> InventorySlot | None:
        return self._slots.get(slot_price)

    def pending(self) -> list[InventorySlot]:
        """The slots whose order is PENDING (requested, not yet acknowledged), from the client-id
        index: as many as there are working orders, not as many as there are slots."""
        found = (self._slots.get(price) for price in self._by_client_id.values())
        return [slot for slot in found if slot is not None and slot.lock_status is LockStatus.PENDING]

    def route(self, client_order_id: str = "", exchange_order_id: str = "") -> Decimal | None:
        """The slot price an order belongs to, in O(1); ``None`` when it is not this grid's."""
        if client_order_id:
            price = self._by_client_id.get(client_order_id)
            if price is not None:
                return price
        if exchange_order_id:
            price = self._by_exchange_id.get(exchange_order_id)
            if price is not None:
                return price
        parts = self._parts(client_order_id)
        return None if parts is None else parts.slot_price

    def slot_for_order(self, client_order_id: str = "", exchange_order_id: str = "") -> InventorySlot | None:
        """The slot currently tracking the order (by client id, else exchange id), or ``None``."""
        price = self.route(client_order_id, exchange_order_id)
        slot = None if price is None else self._slots.get(price)
        if slot is None or not slot.has_order:
            return None
        if client_order_id and slot.client_order_id == client_order_id:
            return slot
        if exchange_order_id and slot.exchange_order_id == exchange_order_id:
            return slot
        return None

    # -- loading and the anchor -----------------------------------------------------------------

    async def load(self) -> None:
        """Read every slot and the anchor from the store (on start, or to catch up with others)."""
        stored = await self._store.load()
        anchor = await self._store.get_anchor()
        for slot in stored:
            self._remember(slot)
        if anchor is not None:
            self._anchor = anchor

    async def ensure_anchor(self, price: Decimal) -> Decimal:
        """Persist ``price`` as the anchor unless one exists; returns the persisted anchor."""
        self._anchor = await self._store.set_anchor_if_absent(price)
        return self._anchor

    # -- transitions ----------------------------------------------------------------------------

    async def transition(
        self, slot_price: Decimal, change: Callable[[InventorySlot], InventorySlot]
    ) -> SlotChange:
        """Apply the pure ``change`` to the stored slot at ``slot_price``, atomically.

        ``change`` returns its argument when nothing changes, else a copy with a higher version
        (the functions of :mod:`opensqt.grid.slots` do). It may run more than once, each time on
        a newer slot, so it must not have side effects; its exceptions propagate.

        The compare-and-set starts from the in-process copy, with no read first: one Redis round
        trip, on an order's path. A copy behind the store (another writer) loses the
        compare-and-set, which returns the stored slot to apply ``change`` to. A ``change`` that
        refuses the copy, or leaves it as it is, is decided again on the stored slot (a read):
        only what the store holds can refuse or skip a transition.

        Raises:
            SlotConflictError: the compare-and-set kept failing.
        """
        current = self._slots.get(slot_price)
        stored = False  # whether current is what the store holds (read, or returned by a CAS)
        lost = 0
        while lost < self._max_attempts:
            before = (
                current if current is not None else transitions.new_slot(self.agent, self.symbol, slot_price)
            )
            try:
                after = change(before)
            except Exception:
                if stored:
                    raise
                after = None  # refused on the copy: ask the store
            if after is None or (after is before and not stored):
                # the copy may be behind the store: decide on the stored slot
                current, stored = await self._store.get(slot_price), True
                self._take(slot_price, current)
                continue
            if after is before:  # decided on the stored slot, which the copy now holds
                return SlotChange(before, after)
            if after.slot_price != slot_price:
                raise ValueError(f"a transition of slot {slot_price} returned slot {after.slot_price}")
            result = await self._store.compare_and_set(after, before.version)
            if result.written:
                self._take(slot_price, after)
                return SlotChange(before, after)
            self.conflicts += 1
            lost += 1
            current, stored = result.current, True
            self._take(slot_price, current)
            await contention_pause(lost)
        raise SlotConflictError(f"slot {slot_price}: {self._max_attempts} compare-and-set conflicts in a row")

    async def request_order(
        self,
        slot_price: Decimal,
        *,
        side: Side,
        price: Decimal,
        qty: Decimal,
        client_order_id: str,
        requested_ms: int = 0,
        reduce_only: bool | None = None,
        post_only: bool | None = None,
    ) -> SlotChange:
        """FREE → PENDING before an order is sent (see :func:`opensqt.grid.slots.request_order`).

        Raises:
            SlotTransitionError: the slot has another order or is not FREE.
        """
        parts = self._parts(client_order_id)
        cycle = None if parts is None else parts.cycle
        return await self.transition(
            slot_price,
            lambda slot: transitions.request_order(
                slot,
                side=side,
                price=price,
                qty=qty,
                client_order_id=client_order_id,
                cycle=cycle,
                requested_ms=requested_ms,
                reduce_only=reduce_only,
                post_only=post_only,
            ),
        )

    def _parts(self, client_order_id: str) -> ClientOrderIdParts | None:
        """What a client id of this grid says (``None``: no codec, or not one of this grid's)."""
        if not client_order_id or self._codec is None:
            return None
        try:
            parts = self._codec.decode(client_order_id)
        except ClientOrderIdError:
            return None
        return parts if parts.agent == self.agent and parts.symbol == self.symbol else None

    async def acknowledge_order(self, client_order_id: str, exchange_order_id: str) -> SlotChange | None:
        """PENDING → LOCKED when the exchange accepted the order; ``None`` for an unknown order."""
        price = self.route(client_order_id)
        if price is None:
            return None
        return await self.transition(
            price, lambda slot: transitions.acknowledge_order(slot, client_order_id, exchange_order_id)
        )

    async def apply_order_update(
        self, order: Order, *, post_only_rejected: bool = False
    ) -> SlotChange | None:
        """Apply the exchange's view of one order (status, cumulative executed quantity).

        Duplicates, stale updates (another cycle's client id) and non-increasing executed
        quantities change nothing. Returns ``None`` for an order that is not this grid's.
        """
        price = self.route(order.client_order_id, order.exchange_order_id)
        if price is None:
            return None
        exchange_order_id = order.exchange_order_id

        def change(slot: InventorySlot) -> InventorySlot:
            client_order_id = order.client_order_id
            if not client_order_id and exchange_order_id and slot.exchange_order_id == exchange_order_id:
                client_order_id = slot.client_order_id
            return transitions.apply_order_update(
                slot,
                client_order_id,
                order.status,
                order.filled_qty,
                exchange_order_id=exchange_order_id,
                post_only_rejected=post_only_rejected,
            )

        return await self.transition(price, change)

    async def on_order_update(
        self, update: OrderUpdate, *, post_only_rejected: bool = False
    ) -> SlotChange | None:
        """Handler for an :class:`~opensqt.model.OrderUpdate` event (see :meth:`apply_order_update`)."""
        return await self.apply_order_update(update.order, post_only_rejected=post_only_rejected)

    async def record_post_only_reject(self, client_order_id: str) -> SlotChange | None:
        """The slot's post-only order was rejected: it ends, and the slot counts the rejection."""
        price = self.route(client_order_id)
        if price is None:
            return None
        return await self.transition(
            price, lambda slot: transitions.record_post_only_reject(slot, client_order_id)
        )

    async def reconcile(
        self,
        open_orders: Iterable[Order],
        exchange_position: Decimal | None,
        *,
        config: GridConfig,
        instrument: Instrument,
        anchor: Decimal | None = None,
    ) -> ReconcileReport:
        """Reconcile the stored slots with the exchange and store the result.

        See :mod:`opensqt.grid.reconcile` for the rules. ``anchor`` is persisted (and used) when
        no anchor is persisted yet, typically the current price. Each reconciled slot is written
        by compare-and-set on the version it was computed from; on a conflict the whole
        reconciliation runs again on fresh slots. Run it when no order is being sent for this
        grid (start, reconnect), so a PENDING order in flight is not taken for a vanished one.

        Raises:
            ValueError: ``config`` or ``instrument`` belong to another agent or symbol.
            SlotConflictError: the slots kept changing under the reconciliation.
        """
        if config.agent != self.agent or instrument.symbol != self.symbol:
            raise ValueError(
                f"reconcile of {self.agent}/{self.symbol} got {config.agent}/{instrument.symbol}"
            )
        orders = tuple(open_orders)
        grid_anchor = await self._store.get_anchor()
        if grid_anchor is None and anchor is not None:
            grid_anchor = await self._store.set_anchor_if_absent(anchor)
        self._anchor = grid_anchor
        for _ in range(self._max_attempts):
            snapshot = {slot.slot_price: slot for slot in await self._store.load()}
            report = reconcile(
                snapshot,
                orders,
                exchange_position,
                config=config,
                instrument=instrument,
                anchor=grid_anchor,
            )
            clean = True
            for write in report.writes:
                result = await self._store.compare_and_set(write.slot, write.expected_version)
                if not result.written:
                    self.conflicts += 1
                    clean = False
                    break
                self._remember(write.slot)
            for slot in snapshot.values():
                self._remember(slot)
            if clean:
                return report
        raise SlotConflictError(f"reconcile of {self.agent}/{self.symbol}: slots kept changing")

    # -- PositionView ---------------------------------------------------------------------------

    def exposure(self) -> Decimal:
        """Net signed inventory over all slots, in base units."""
        return sum((slot.position_qty for slot in self._slots.values()), ZERO)

    def positions(self) -> list[Position]:
        """The grid's net position (entry = quantity-weighted slot price on the net side)."""
        net = self.exposure()
        if net == 0:
            return []
        held = [s for s in self._slots.values() if s.position_qty != 0 and (s.position_qty > 0) == (net > 0)]
        total = sum((abs(s.position_qty) for s in held), ZERO)
        entry = sum((abs(s.position_qty) * s.slot_price for s in held), ZERO) / total
        return [Position(symbol=self.symbol, size=net, entry_price=entry, venue=self._venue)]

    def working_orders(self) -> list[Order]:
        """The slots' working orders, by slot price."""
        return [
            Order(
                symbol=self.symbol,
                side=slot.order_side,
                order_type=OrderType.LIMIT,
                quantity=slot.order_qty,
                price=slot.order_price,
                client_order_id=slot.client_order_id,
                exchange_order_id=slot.exchange_order_id,
                venue=self._venue,
                status=slot.order_status or OrderStatus.NEW,
                filled_qty=slot.order_filled_qty,
            )
            for price, slot in sorted(self._slots.items())
            if slot.order_side is not None
        ]

    # -- the in-process copy --------------------------------------------------------------------

    def _remember(self, slot: InventorySlot) -> None:
        """Take ``slot`` into the copy and the indexes unless the copy already has it or newer."""
        known = self._slots.get(slot.slot_price)
        if known is not None and known.version >= slot.version:
            return
        self._take(slot.slot_price, slot)

    def _take(self, price: Decimal, slot: InventorySlot | None) -> None:
        """Make the copy hold ``slot`` (``None``: no slot) at ``price``, whatever its version: what
        the store has just said. (Its versions can go back: a store restored from an older save.)"""
        known = self._slots.get(price)
        if known is not None:
            if known.client_order_id and self._by_client_id.get(known.client_order_id) == price:
                del self._by_client_id[known.client_order_id]
            if known.exchange_order_id and self._by_exchange_id.get(known.exchange_order_id) == price:
                del self._by_exchange_id[known.exchange_order_id]
        if slot is None:
            if known is not None:
                del self._slots[price]
                self._revision += 1
            return
        if slot.client_order_id:
            self._by_client_id[slot.client_order_id] = price
        if slot.exchange_order_id:
            self._by_exchange_id[slot.exchange_order_id] = price
        self._slots[price] = slot
        self._revision += 1


# -- stored format ------------------------------------------------------------------------------


def slot_field(slot_price: Decimal) -> str:
    """The hash field of a slot: its price in plain normalised notation (``2998.00`` → ``2998``)."""
    return format(slot_price.normalize(), "f")


def _decimaljson_text(value: Decimal) -> str:
    return format(value, "f")


def encode_slot(slot: InventorySlot) -> bytes:
    """A slot as stored: compact UTF-8 JSON (see the module docstring)."""
    document = {
        "agent": slot.agent,
        "symbol": slot.symbol,
        "slot_price": _decimaljson_text(slot.slot_price),
        "position_status": slot.position_status.value,
        "position_qty": _decimaljson_text(slot.position_qty),
        "order_side": slot.order_side.value if slot.order_side is not None else None,
        "order_price": _decimaljson_text(slot.order_price),
        "order_qty": _decimaljson_text(slot.order_qty),
        "client_order_id": slot.client_order_id,
        "exchange_order_id": slot.exchange_order_id,
        "order_filled_qty": _decimaljson_text(slot.order_filled_qty),
        "order_status": slot.order_status.value if slot.order_status is not None else None,
        "lock_status": slot.lock_status.value,
        "cycle": slot.cycle,
        "post_only_rejects": slot.post_only_rejects,
        "version": slot.version,
        "order_requested_ms": slot.order_requested_ms,
        "order_reduce_only": slot.order_reduce_only,
        "order_post_only": slot.order_post_only,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _json_flag(document: dict[str, Any], key: str) -> bool | None:
    """An optional true/false field (absent or null in slots stored before it existed)."""
    value = document.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{key} must be true, false or null, got {value!r}")
    return value


def decode_slot(raw: bytes | str) -> InventorySlot:
    """A stored slot back as an :class:`InventorySlot`.

    Raises:
        SlotDecodeError: the document is not a well-formed slot.
    """
    try:
        document: dict[str, Any] = json.loads(raw)
        side = document["order_side"]
        status = document["order_status"]
        return InventorySlot(
            agent=json_text(document, "agent"),
            symbol=json_text(document, "symbol"),
            slot_price=parse_decimal(document["slot_price"], field="slot_price", positive=True),
            position_status=PositionStatus(document["position_status"]),
            position_qty=parse_decimal(document["position_qty"], field="position_qty"),
            order_side=None if side is None else Side(side),
            order_price=parse_decimal(document["order_price"], field="order_price", non_negative=True),
            order_qty=parse_decimal(document["order_qty"], field="order_qty", non_negative=True),
            client_order_id=json_text(document, "client_order_id"),
            exchange_order_id=json_text(document, "exchange_order_id"),
            order_filled_qty=parse_decimal(
                document["order_filled_qty"], field="order_filled_qty", non_negative=True
            ),
            order_status=None if status is None else OrderStatus(status),
            lock_status=LockStatus(document["lock_status"]),
            cycle=json_count(document, "cycle"),
            post_only_rejects=json_count(document, "post_only_rejects"),
            version=json_count(document, "version"),
            # absent in slots stored before it existed
            order_requested_ms=json_count(document, "order_requested_ms")
            if "order_requested_ms" in document
            else 0,
            order_reduce_only=_json_flag(document, "order_reduce_only"),
            order_post_only=_json_flag(document, "order_post_only"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SlotDecodeError(f"stored slot {raw!r} is unreadable: {exc}") from exc
