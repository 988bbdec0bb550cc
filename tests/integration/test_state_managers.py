"""SlotManager and LegManager: one suite run against both stores (in memory, and a real Redis).

"Two processes" are two managers, each with its own store object (and, for Redis, its own
connection pool) over the same state.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis import exceptions as redis_errors

from opensqt.arbitrage import Fill, OrderStep, StepKind
from opensqt.arbitrage.journal import (
    InMemoryPlanJournal,
    PlanJournal,
    RecordedStep,
    RedisPlanJournal,
    decode_recorded_step,
    encode_recorded_step,
)
from opensqt.arbitrage.manager import (
    InMemoryLegStore,
    LegManager,
    LegRecord,
    LegStore,
    RedisLegStore,
    decode_leg_record,
    encode_leg_record,
)
from opensqt.clock import SystemClock
from opensqt.config import RedisSettings
from opensqt.devstack import RedisServer
from opensqt.engine.views import PositionView
from opensqt.execution.registry import ExecutorEntry, ExecutorRegistry
from opensqt.grid import ClientOrderIdCodec, GridConfig, SlotTransitionError
from opensqt.grid.manager import (
    CasResult,
    InMemorySlotStore,
    RedisSlotStore,
    SlotDecodeError,
    SlotManager,
    SlotStore,
    decode_slot,
    encode_slot,
    slot_field,
)
from opensqt.grid.reconcile import ReconcileReport
from opensqt.model import (
    Instrument,
    InventorySlot,
    Leg,
    LockStatus,
    MarketType,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionStatus,
    Side,
    TradingStateKind,
)
from opensqt.transport.redis_store import RedisStore
from tests.support.waiting import until

D = Decimal
AGENT = "mm"
SYMBOL = "ETHUSDT"
ETH = Instrument(
    venue="binance",
    symbol=SYMBOL,
    market_type=MarketType.PERPETUAL,
    base="ETH",
    quote="USDT",
    tick_size=D("0.01"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    min_notional=D("5"),
)
CONFIG = GridConfig(
    price_interval=D("2"),
    order_notional=D("30"),
    buy_window=3,
    sell_window=3,
    max_open_orders=10,
    min_order_value=D("6"),
    agent=AGENT,
)
CODEC = ClientOrderIdCodec(symbol=SYMBOL, agent=AGENT, tick_size=ETH.tick_size)


def cid(slot_price: str, side: Side = Side.BUY, cycle: int = 0) -> str:
    return CODEC.encode(D(slot_price), side, cycle)


# -- the two backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    """Makes stores over one shared state; ``process`` picks a separate connection (Redis)."""

    name: str
    redis_url: str = ""
    _slot_stores: dict[tuple[str, str], InMemorySlotStore] = field(default_factory=dict)
    _leg_stores: dict[str, InMemoryLegStore] = field(default_factory=dict)
    _journals: dict[str, InMemoryPlanJournal] = field(default_factory=dict)
    _connections: dict[int, RedisStore] = field(default_factory=dict)

    def _redis(self, process: int) -> RedisStore:
        if process not in self._connections:
            client = aioredis.from_url(self.redis_url, decode_responses=False)
            self._connections[process] = RedisStore(client, service="strategy")
        return self._connections[process]

    def slot_store(self, process: int = 0, *, agent: str = AGENT, symbol: str = SYMBOL) -> SlotStore:
        if self.name == "redis":
            return RedisSlotStore(self._redis(process), agent=agent, symbol=symbol)
        return self._slot_stores.setdefault((agent, symbol), InMemorySlotStore(agent, symbol))

    def leg_store(self, process: int = 0, *, agent: str = "arb") -> LegStore:
        if self.name == "redis":
            return RedisLegStore(self._redis(process), agent=agent)
        return self._leg_stores.setdefault(agent, InMemoryLegStore(agent))

    def plan_journal(self, process: int = 0, *, agent: str = "arb") -> PlanJournal:
        if self.name == "redis":
            return RedisPlanJournal(self._redis(process), agent=agent)
        return self._journals.setdefault(agent, InMemoryPlanJournal(agent))

    def slot_manager(self, process: int = 0) -> SlotManager:
        return SlotManager(self.slot_store(process), codec=CODEC, venue="binance")

    async def close(self) -> None:
        for store in self._connections.values():
            await store.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory")
        return
    server = request.getfixturevalue("redis")
    made = Backend("redis", redis_url=server.url)
    try:
        yield made
    finally:
        await made.close()


class CountingStore:
    """Wraps a store and counts reads, to show that routing never scans."""

    def __init__(self, inner: SlotStore) -> None:
        self.inner = inner
        self.agent = inner.agent
        self.symbol = inner.symbol
        self.loads = 0
        self.gets = 0

    async def load(self) -> list[InventorySlot]:
        self.loads += 1
        return await self.inner.load()

    async def get(self, slot_price: Decimal) -> InventorySlot | None:
        self.gets += 1
        return await self.inner.get(slot_price)

    async def compare_and_set(self, slot: InventorySlot, expected_version: int) -> CasResult:
        return await self.inner.compare_and_set(slot, expected_version)

    async def get_anchor(self) -> Decimal | None:
        return await self.inner.get_anchor()

    async def set_anchor_if_absent(self, anchor: Decimal) -> Decimal:
        return await self.inner.set_anchor_if_absent(anchor)

    async def get_interval(self) -> Decimal | None:
        return await self.inner.get_interval()

    async def set_interval(self, interval: Decimal) -> None:
        await self.inner.set_interval(interval)


def exchange_order(
    client_order_id: str,
    status: OrderStatus,
    filled: str,
    *,
    side: Side = Side.BUY,
    price: str = "2998",
    qty: str = "0.010",
    exchange_id: str = "",
) -> Order:
    return Order(
        symbol=SYMBOL,
        side=side,
        order_type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        client_order_id=client_order_id,
        exchange_order_id=exchange_id,
        status=status,
        filled_qty=D(filled),
    )


async def place(
    manager: SlotManager, slot_price: str, *, qty: str = "0.010", exchange_id: str = "", cycle: int = 0
) -> str:
    client_order_id = cid(slot_price, cycle=cycle)
    await manager.request_order(
        D(slot_price), side=Side.BUY, price=D(slot_price), qty=D(qty), client_order_id=client_order_id
    )
    if exchange_id:
        await manager.acknowledge_order(client_order_id, exchange_id)
    return client_order_id


async def warm_up(*managers: SlotManager | LegManager) -> None:
    """Open several connections per Redis client, so concurrent tasks really interleave
    (otherwise connection set-up alone tends to serialise them)."""
    await asyncio.gather(*(manager.load() for manager in managers for _ in range(4)))


def add_qty(qty: Decimal) -> Callable[[InventorySlot], InventorySlot]:
    """A commutative transition: final quantity and version show whether any was lost."""

    def change(slot: InventorySlot) -> InventorySlot:
        total = slot.position_qty + qty
        status = PositionStatus.FILLED if total else PositionStatus.EMPTY
        return replace(slot, position_qty=total, position_status=status, version=slot.version + 1)

    return change


# -- slot lifecycle, idempotence, partial fills ---------------------------------------------------


async def test_order_lifecycle_moves_the_slot_through_pending_locked_and_filled(backend: Backend) -> None:
    manager = backend.slot_manager()
    client_order_id = await place(manager, "2998")
    slot = manager.slot(D("2998"))
    assert slot is not None
    assert slot.lock_status is LockStatus.PENDING
    assert slot.version == 1

    await manager.acknowledge_order(client_order_id, "ex-1")
    change = await manager.apply_order_update(exchange_order(client_order_id, OrderStatus.FILLED, "0.010"))

    assert change is not None
    assert change.changed
    assert change.executed_qty == D("0.010")
    filled = manager.slot(D("2998"))
    assert filled is not None
    assert filled.position_status is PositionStatus.FILLED
    assert filled.position_qty == D("0.010")
    assert filled.lock_status is LockStatus.FREE
    assert not filled.has_order
    assert filled.cycle == 1
    assert filled.version == 3
    assert await backend.slot_store().get(D("2998")) == filled


async def test_requesting_a_second_order_on_a_busy_slot_is_refused(backend: Backend) -> None:
    manager = backend.slot_manager()
    await place(manager, "2998")
    with pytest.raises(SlotTransitionError):
        await manager.request_order(
            D("2998"), side=Side.BUY, price=D("2998"), qty=D("0.020"), client_order_id=cid("2998", cycle=1)
        )


async def test_a_duplicate_update_is_ignored_and_keeps_the_version(backend: Backend) -> None:
    manager = backend.slot_manager()
    client_order_id = await place(manager, "2998", exchange_id="ex-1")
    update = exchange_order(client_order_id, OrderStatus.PARTIALLY_FILLED, "0.004")
    first = await manager.apply_order_update(update)
    second = await manager.apply_order_update(update)
    assert first is not None
    assert first.changed
    assert second is not None
    assert not second.changed
    slot = await backend.slot_store().get(D("2998"))
    assert slot is not None
    assert slot.version == first.after.version
    assert slot.position_qty == D("0.004")


async def test_an_update_of_a_finished_cycle_is_ignored(backend: Backend) -> None:
    manager = backend.slot_manager()
    old = await place(manager, "2998", exchange_id="ex-1")
    await manager.apply_order_update(exchange_order(old, OrderStatus.CANCELED, "0"))
    await place(manager, "2998", exchange_id="ex-2", cycle=1)
    late = await manager.apply_order_update(exchange_order(old, OrderStatus.FILLED, "0.010"))
    assert late is not None
    assert not late.changed
    slot = manager.slot(D("2998"))
    assert slot is not None
    assert slot.position_qty == 0
    assert slot.client_order_id == cid("2998", cycle=1)


async def test_partial_fills_accumulate_and_a_cancel_keeps_the_partial(backend: Backend) -> None:
    manager = backend.slot_manager()
    client_order_id = await place(manager, "2998", exchange_id="ex-1")
    await manager.apply_order_update(exchange_order(client_order_id, OrderStatus.PARTIALLY_FILLED, "0.003"))
    await manager.apply_order_update(exchange_order(client_order_id, OrderStatus.PARTIALLY_FILLED, "0.006"))
    # out of order: an older partial arrives late and changes nothing
    await manager.apply_order_update(exchange_order(client_order_id, OrderStatus.PARTIALLY_FILLED, "0.003"))
    working = manager.slot(D("2998"))
    assert working is not None
    assert working.position_qty == D("0.006")
    assert working.order_filled_qty == D("0.006")
    assert working.order_status is OrderStatus.PARTIALLY_FILLED
    assert working.has_order

    await manager.apply_order_update(exchange_order(client_order_id, OrderStatus.CANCELED, "0.006"))
    slot = manager.slot(D("2998"))
    assert slot is not None
    assert slot.position_status is PositionStatus.FILLED
    assert slot.position_qty == D("0.006")
    assert not slot.has_order
    assert slot.lock_status is LockStatus.FREE


async def test_a_post_only_rejection_ends_the_order_and_counts_on_the_slot(backend: Backend) -> None:
    manager = backend.slot_manager()
    client_order_id = await place(manager, "2998")
    await manager.record_post_only_reject(client_order_id)
    slot = manager.slot(D("2998"))
    assert slot is not None
    assert slot.post_only_rejects == 1
    assert not slot.has_order
    assert slot.cycle == 1


# -- routing --------------------------------------------------------------------------------------


async def test_updates_route_by_exchange_id_and_by_client_id_without_scanning(backend: Backend) -> None:
    counting = CountingStore(backend.slot_store())
    manager = SlotManager(counting, codec=CODEC)
    for level in range(200):
        price = D("2000") + 2 * level
        await place(manager, str(price), exchange_id=f"ex-{level}")
    counting.loads = counting.gets = 0

    by_exchange_id = await manager.apply_order_update(
        exchange_order("", OrderStatus.PARTIALLY_FILLED, "0.002", price="2300", exchange_id="ex-150")
    )
    by_client_id = await manager.apply_order_update(
        exchange_order(cid("2100"), OrderStatus.FILLED, "0.010", price="2100")
    )

    assert by_exchange_id is not None
    assert by_exchange_id.after.slot_price == D("2300")
    assert by_exchange_id.after.position_qty == D("0.002")
    assert by_client_id is not None
    assert by_client_id.after.position_qty == D("0.010")
    assert counting.loads == 0
    assert counting.gets == 0  # each transition starts from the in-process copy: one write each
    assert manager.slot_for_order(exchange_order_id="ex-150") == by_exchange_id.after
    assert manager.slot_for_order(client_order_id=cid("2100")) is None  # finished: index cleared


async def test_an_order_of_another_grid_is_not_routed(backend: Backend) -> None:
    manager = backend.slot_manager()
    stranger = exchange_order("ETHUSDT-other-299800-B-0", OrderStatus.FILLED, "0.010")
    assert await manager.apply_order_update(stranger) is None
    assert (
        await manager.apply_order_update(exchange_order("", OrderStatus.FILLED, "1", exchange_id="x")) is None
    )
    assert dict(manager.slots) == {}


async def test_a_second_process_routes_orders_it_did_not_place(backend: Backend) -> None:
    placer = backend.slot_manager(0)
    other = backend.slot_manager(1)
    client_order_id = await place(placer, "2998", exchange_id="ex-1")
    change = await other.on_order_update(
        OrderUpdate(event_id="e1", order=exchange_order(client_order_id, OrderStatus.FILLED, "0.010"))
    )
    assert change is not None
    assert change.after.position_qty == D("0.010")
    await placer.load()
    slot = placer.slot(D("2998"))
    assert slot is not None
    assert slot.position_status is PositionStatus.FILLED


async def test_a_copy_behind_the_store_never_decides_a_transition(backend: Backend) -> None:
    # A transition starts from the in-process copy (no read first). Here another process moves
    # the slot on after this one's copy was taken; what the store holds must decide.
    behind = backend.slot_manager(0)
    other = backend.slot_manager(1)
    first = await place(behind, "2998", exchange_id="ex-1")
    await other.load()
    await other.apply_order_update(exchange_order(first, OrderStatus.CANCELED, "0"))  # slot FREE again

    # the copy says PENDING with an order: refused there, granted by the store
    second = cid("2998", cycle=1)
    await behind.request_order(
        D("2998"), side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=second
    )
    stored = await backend.slot_store().get(D("2998"))
    assert stored is not None
    assert stored.client_order_id == second
    assert behind.slot(D("2998")) == stored

    # the copy says FREE, but the store has another order on it: refused by the store
    await other.load()
    await other.apply_order_update(exchange_order(second, OrderStatus.CANCELED, "0"))
    third = cid("2998", cycle=2)
    await other.request_order(
        D("2998"), side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=third
    )
    await behind.load()
    await behind.apply_order_update(exchange_order(second, OrderStatus.CANCELED, "0"))  # a repeat: no change
    with pytest.raises(SlotTransitionError):
        await behind.request_order(
            D("2998"), side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=cid("2998", cycle=3)
        )
    stored = await backend.slot_store().get(D("2998"))
    assert stored is not None
    assert stored.client_order_id == third


async def test_the_copy_follows_a_store_that_went_back_to_an_older_save(backend: Backend) -> None:
    manager = backend.slot_manager()
    first = await place(manager, "2998", exchange_id="ex-1")
    locked = manager.slot(D("2998"))
    assert locked is not None
    await manager.apply_order_update(exchange_order(first, OrderStatus.CANCELED, "0"))
    freed = manager.slot(D("2998"))
    assert freed is not None
    assert freed.version > locked.version

    # the store is restored from a save taken while the order was working (below its API,
    # which never writes a lower version)
    store = backend.slot_store()
    if isinstance(store, RedisSlotStore):
        await store._client.hset(store._slots_key, slot_field(D("2998")), encode_slot(locked))
    else:
        assert isinstance(store, InMemorySlotStore)
        store._slots[D("2998")] = locked
    assert await store.get(D("2998")) == locked

    # the copy says FREE; the store refuses, and from now on the copy says what the store does
    with pytest.raises(SlotTransitionError):
        await manager.request_order(
            D("2998"), side=Side.BUY, price=D("2998"), qty=D("0.010"), client_order_id=cid("2998", cycle=1)
        )
    assert manager.slot(D("2998")) == locked
    assert manager.slot_for_order(client_order_id=first) == locked


async def test_a_slot_the_store_lost_never_counts_its_cycles_from_zero_again(backend: Backend) -> None:
    """A slot gone from the store (a flush, a restore without it) while the strategy runs: the
    next order is decided on a new slot, but its cycles continue from the client id's, so no
    later order reuses the id of a finished one (the executor would answer that with the old
    order)."""
    manager = backend.slot_manager()
    for cycle in range(2):  # two finished cycles
        done = await place(manager, "2998", exchange_id=f"ex-{cycle}", cycle=cycle)
        await manager.apply_order_update(exchange_order(done, OrderStatus.CANCELED, "0"))
    freed = manager.slot(D("2998"))
    assert freed is not None
    assert freed.cycle == 2

    store = backend.slot_store()
    if isinstance(store, RedisSlotStore):
        await store._client.hdel(store._slots_key, slot_field(D("2998")))
    else:
        assert isinstance(store, InMemorySlotStore)
        del store._slots[D("2998")]

    third = await place(manager, "2998", exchange_id="ex-2", cycle=freed.cycle)  # decided on the copy
    stored = await store.get(D("2998"))
    assert stored is not None
    assert stored.client_order_id == third
    assert stored.cycle == 2
    await manager.apply_order_update(exchange_order(third, OrderStatus.CANCELED, "0"))
    after = manager.slot(D("2998"))
    assert after is not None
    assert after.cycle == 3  # the next id is cycle 3, never sent; not cycle 1 again
    assert await store.get(D("2998")) == after


async def test_a_restarted_manager_restores_slots_indexes_and_anchor(backend: Backend) -> None:
    first = backend.slot_manager()
    assert await first.ensure_anchor(D("3000.00")) == D("3000.00")
    await place(first, "2998", exchange_id="ex-1")

    restarted = backend.slot_manager(1)
    await restarted.load()
    assert restarted.anchor == D("3000.00")
    assert dict(restarted.slots) == dict(first.slots)
    slot = restarted.slot_for_order(exchange_order_id="ex-1")
    assert slot is not None
    assert slot.client_order_id == cid("2998")


async def test_the_anchor_is_fixed_by_its_first_writer(backend: Backend) -> None:
    one, two = backend.slot_manager(0), backend.slot_manager(1)
    assert await one.ensure_anchor(D("3000")) == D("3000")
    assert await two.ensure_anchor(D("3100")) == D("3000")


# -- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_transitions_from_many_tasks_and_two_processes_are_never_lost(
    backend: Backend,
) -> None:
    managers = [backend.slot_manager(0), backend.slot_manager(1)]
    prices = [D("2994"), D("2996"), D("2998"), D("3000")]
    tasks, per_task = 8, 50
    applied: dict[Decimal, Decimal] = dict.fromkeys(prices, D(0))
    counts: dict[Decimal, int] = dict.fromkeys(prices, 0)
    plan = []
    for task in range(tasks):
        steps = []
        for n in range(per_task):
            price = prices[(task + n) % len(prices)]
            qty = D(task * per_task + n + 1) / 1000
            applied[price] += qty
            counts[price] += 1
            steps.append((price, qty))
        plan.append(steps)

    await warm_up(*managers)

    async def worker(task: int) -> None:
        manager = managers[task % 2]
        for price, qty in plan[task]:
            await manager.transition(price, add_qty(qty))

    await asyncio.gather(*(worker(task) for task in range(tasks)))

    fresh = backend.slot_manager(0)
    await fresh.load()
    for price in prices:
        slot = fresh.slot(price)
        assert slot is not None
        assert slot.position_qty == applied[price]
        assert slot.version == counts[price]
    if backend.name == "redis":
        # The compare-and-set retry path really ran (and lost nothing).
        assert sum(manager.conflicts for manager in managers) > 0


async def test_concurrent_duplicate_fill_updates_count_each_execution_once(backend: Backend) -> None:
    managers = [backend.slot_manager(0), backend.slot_manager(1)]
    client_order_id = await place(managers[0], "2998", qty="0.050", exchange_id="ex-1")
    updates = [
        exchange_order(client_order_id, OrderStatus.PARTIALLY_FILLED, str(D(k) / 1000), qty="0.050")
        for k in range(1, 50)
    ]
    updates.append(exchange_order(client_order_id, OrderStatus.FILLED, "0.050", qty="0.050"))
    executed: list[Decimal] = []
    await warm_up(*managers)

    async def deliver(task: int) -> None:
        # every task receives every update (redelivery), in its own order
        mine = list(updates)
        random.Random(task).shuffle(mine)
        for update in mine:
            change = await managers[task % 2].apply_order_update(update)
            assert change is not None
            executed.append(change.executed_qty)

    await asyncio.gather(*(deliver(task) for task in range(8)))

    slot = await backend.slot_store().get(D("2998"))
    assert slot is not None
    assert slot.position_qty == D("0.050")
    assert sum(executed) == D("0.050")  # no execution counted twice, none lost
    assert slot.lock_status is LockStatus.FREE
    assert slot.cycle == 1


# -- reconciliation -------------------------------------------------------------------------------


async def reconcile(
    manager: SlotManager, orders: list[Order], position: str, anchor: str | None = None
) -> ReconcileReport:
    return await manager.reconcile(
        orders, D(position), config=CONFIG, instrument=ETH, anchor=None if anchor is None else D(anchor)
    )


async def test_reconcile_turns_a_vanished_order_covered_by_the_position_into_a_fill(backend: Backend) -> None:
    manager = backend.slot_manager()
    await place(manager, "2998", exchange_id="ex-1")
    report = await reconcile(manager, [], "0.010")
    assert report.filled == (D("2998"),)
    stored = await backend.slot_store().get(D("2998"))
    assert stored is not None
    assert stored.position_status is PositionStatus.FILLED
    assert stored.position_qty == D("0.010")
    assert not stored.has_order
    assert manager.slot(D("2998")) == stored


async def test_reconcile_empties_the_slot_of_a_vanished_unfilled_order(backend: Backend) -> None:
    manager = backend.slot_manager()
    await place(manager, "2998", exchange_id="ex-1")
    report = await reconcile(manager, [], "0")
    assert report.vanished == (D("2998"),)
    stored = await backend.slot_store().get(D("2998"))
    assert stored is not None
    assert stored.position_status is PositionStatus.EMPTY
    assert not stored.has_order


async def test_reconcile_binds_open_orders_and_reports_unknown_ones(backend: Backend) -> None:
    manager = backend.slot_manager()
    client_order_id = await place(manager, "2998")
    ours = exchange_order(client_order_id, OrderStatus.NEW, "0", exchange_id="ex-5")
    unknown = exchange_order("manual-order", OrderStatus.NEW, "0", price="2900", exchange_id="ex-6")
    report = await reconcile(manager, [ours, unknown], "0")
    assert report.bound == (client_order_id,)
    assert report.orders_to_cancel == (unknown,)
    slot = manager.slot_for_order(exchange_order_id="ex-5")
    assert slot is not None
    assert slot.lock_status is LockStatus.LOCKED


async def test_reconcile_corrects_a_small_drift(backend: Backend) -> None:
    manager = backend.slot_manager()
    for price in ("2994", "2996", "2998"):
        await manager.transition(D(price), add_qty(D("0.010")))
    report = await reconcile(manager, [], "0.029")
    assert report.corrected
    assert not report.drift_alert
    await manager.load()
    assert manager.exposure() == D("0.029")


async def test_reconcile_flags_a_drift_of_five_percent_or_more(backend: Backend) -> None:
    manager = backend.slot_manager()
    await manager.transition(D("2998"), add_qty(D("0.010")))
    report = await reconcile(manager, [], "0.012")
    assert report.drift_alert
    assert report.required_trading_state is TradingStateKind.REDUCING
    stored = await backend.slot_store().get(D("2998"))
    assert stored is not None
    assert stored.position_qty == D("0.010")


async def test_reconcile_rebuilds_slots_for_a_bare_position_and_persists_the_anchor(backend: Backend) -> None:
    manager = backend.slot_manager()
    report = await reconcile(manager, [], "0.025", anchor="3000.00")
    assert report.rebuilt == (D("3000"), D("3002"), D("3004"))
    assert manager.exposure() == D("0.025")
    assert await backend.slot_store().get_anchor() == D("3000.00")
    again = await reconcile(backend.slot_manager(1), [], "0.025", anchor="3100.00")
    assert again.writes == ()  # reconciled state stays as it is


# -- observability ---------------------------------------------------------------------------------


async def test_slot_manager_offers_the_position_view(backend: Backend) -> None:
    manager = backend.slot_manager()
    await manager.transition(D("2996"), add_qty(D("0.010")))
    await manager.transition(D("2998"), add_qty(D("0.030")))
    client_order_id = await place(manager, "2994", exchange_id="ex-1")

    assert isinstance(manager, PositionView)
    assert manager.exposure() == D("0.040")
    [position] = manager.positions()
    assert position.size == D("0.040")
    assert position.entry_price == D("2997.5")
    [order] = manager.working_orders()
    assert order.client_order_id == client_order_id
    assert order.side is Side.BUY
    assert order.price == D("2994")


# -- legs -----------------------------------------------------------------------------------------

SPOT_VENUE, PERP_VENUE, BTC = "binance", "binanceusdm", "BTCUSDT"


def leg_manager(backend: Backend, process: int = 0) -> LegManager:
    return LegManager(backend.leg_store(process), dust=D("0.0001"))


async def legs_of(backend: Backend) -> LegManager:
    manager = leg_manager(backend)
    await manager.ensure_leg(SPOT_VENUE, BTC, MarketType.SPOT)
    await manager.ensure_leg(PERP_VENUE, BTC, MarketType.PERPETUAL)
    return manager


async def test_concurrent_leg_fills_from_many_tasks_and_two_processes_are_never_lost(
    backend: Backend,
) -> None:
    managers = [await legs_of(backend), leg_manager(backend, 1)]
    tasks, per_task = 8, 50
    await warm_up(*managers)

    async def worker(task: int) -> None:
        manager = managers[task % 2]
        for n in range(per_task):
            venue, side = (SPOT_VENUE, Side.BUY) if n % 2 == 0 else (PERP_VENUE, Side.SELL)
            fill = Fill(venue, BTC, side, D("0.001"), D("50000"))
            await manager.apply_fill(fill, event_id=f"t{task}-{n}")

    await asyncio.gather(*(worker(task) for task in range(tasks)))

    fresh = leg_manager(backend)
    await fresh.load()
    spot, perp = fresh.leg(f"{SPOT_VENUE}:{BTC}"), fresh.leg(f"{PERP_VENUE}:{BTC}")
    assert spot is not None
    assert perp is not None
    assert spot.size == D("0.200")
    assert perp.size == D("-0.200")
    assert spot.version == 1 + 200
    assert perp.version == 1 + 200
    assert fresh.is_delta_neutral()
    if backend.name == "redis":
        assert sum(manager.conflicts for manager in managers) > 0


async def test_a_redelivered_leg_fill_counts_once(backend: Backend) -> None:
    managers = [await legs_of(backend), leg_manager(backend, 1)]
    await warm_up(*managers)
    fill = Fill(SPOT_VENUE, BTC, Side.BUY, D("0.010"), D("50000"))
    results = await asyncio.gather(
        *(managers[i % 2].apply_fill(fill, event_id="order-7:trade-1") for i in range(8))
    )
    assert sum(1 for change in results if change.changed) == 1
    stored = await backend.leg_store().get(f"{SPOT_VENUE}:{BTC}")
    assert stored is not None
    assert stored.leg.size == D("0.010")


async def test_legs_resync_from_exchange_positions_and_ignore_older_snapshots(backend: Backend) -> None:
    manager = await legs_of(backend)
    await manager.apply_fill(
        Fill(PERP_VENUE, BTC, Side.SELL, D("0.010"), D("50000"), time_ms=2000), event_id="e1"
    )
    stale = Position(BTC, D("0"), venue=PERP_VENUE, updated_ms=1000)
    fresh = Position(BTC, D("-0.012"), entry_price=D("50010"), venue=PERP_VENUE, updated_ms=3000)
    margin = Position("ETHUSDT", D("-1"), venue=SPOT_VENUE, market_type=MarketType.MARGIN, updated_ms=3000)
    changes = await manager.resync([stale, fresh, margin])
    assert [change.changed for change in changes] == [False, True, True]
    perp = manager.leg(f"{PERP_VENUE}:{BTC}")
    assert perp is not None
    assert perp.size == D("-0.012")
    assert perp.entry_price == D("50010")
    created = manager.leg(f"{SPOT_VENUE}:ETHUSDT")
    assert created is not None
    assert created.market_type is MarketType.MARGIN


async def test_delta_neutral_allows_dust_and_the_position_view_reports_legs(backend: Backend) -> None:
    manager = await legs_of(backend)
    await manager.apply_fill(Fill(SPOT_VENUE, BTC, Side.BUY, D("0.01005"), D("50000")), event_id="s1")
    await manager.on_order_update(
        OrderUpdate(
            event_id="p1",
            order=Order(
                BTC, Side.SELL, OrderType.MARKET, D("0.010"), venue=PERP_VENUE, filled_qty=D("0.010")
            ),
            last_fill_price=D("50050"),
            last_fill_qty=D("0.010"),
        )
    )
    assert manager.is_delta_neutral()  # |0.00005| below the 0.0001 dust
    assert not manager.is_delta_neutral(D("0.00001"))
    assert isinstance(manager, PositionView)
    assert manager.exposure() == D("0.00005")
    assert [(p.venue, p.size) for p in manager.positions()] == [
        (SPOT_VENUE, D("0.01005")),
        (PERP_VENUE, D("-0.010")),
    ]
    assert manager.working_orders() == []


async def test_a_fill_for_an_unknown_leg_without_market_type_is_refused(backend: Backend) -> None:
    manager = leg_manager(backend)
    with pytest.raises(KeyError):
        await manager.apply_fill(Fill(SPOT_VENUE, BTC, Side.BUY, D("1"), D("1")), event_id="e1")


# -- plan journal ----------------------------------------------------------------------------------


def plan_step(kind: StepKind, venue: str, side: Side, qty: str, *, sequence: str = "loyw3v28") -> OrderStep:
    market_type = MarketType.PERPETUAL if venue == PERP_VENUE else MarketType.SPOT
    return OrderStep(
        kind, 0, f"arb-{sequence}-{kind.value}0", venue, BTC, market_type, side, D(qty),
        reduce_only=kind in (StepKind.EXIT_PERP, StepKind.EXIT_SPOT),
    )  # fmt: skip


async def test_the_plan_journal_keeps_the_running_plans_steps_until_cleared(backend: Backend) -> None:
    journal = backend.plan_journal()
    assert await journal.load() is None
    spot = RecordedStep(0, plan_step(StepKind.ENTRY_SPOT, SPOT_VENUE, Side.BUY, "0.010"), D("50000.5"))
    perp = RecordedStep(1, plan_step(StepKind.ENTRY_PERP, PERP_VENUE, Side.SELL, "0.010"), D("50010"))
    await journal.record_step("arb-loyw3v28", 1_700_000_000_000, spot)
    await journal.record_step("arb-loyw3v28", 1_700_000_000_000, perp)

    restarted = backend.plan_journal(1)  # another process reads what the first one wrote
    record = await restarted.load()
    assert record is not None
    assert (record.workflow_id, record.sequence_id, record.steps) == (
        "arb-loyw3v28",
        1_700_000_000_000,
        (spot, perp),
    )
    await restarted.clear()
    assert await journal.load() is None


async def test_a_step_of_another_plan_replaces_the_record(backend: Backend) -> None:
    journal = backend.plan_journal()
    old = RecordedStep(0, plan_step(StepKind.ENTRY_SPOT, SPOT_VENUE, Side.BUY, "0.010"))
    new = RecordedStep(0, plan_step(StepKind.EXIT_PERP, PERP_VENUE, Side.BUY, "0.010", sequence="loyw3v29"))
    await journal.record_step("arb-loyw3v28", 1, old)
    await journal.record_step("arb-loyw3v29", 2, new)
    record = await journal.load()
    assert record is not None
    assert (record.workflow_id, record.sequence_id, record.steps) == ("arb-loyw3v29", 2, (new,))


# -- stored format ---------------------------------------------------------------------------------


def test_stored_slot_and_leg_documents_round_trip() -> None:
    slot = InventorySlot(
        agent=AGENT,
        symbol=SYMBOL,
        slot_price=D("2998.00"),
        position_status=PositionStatus.FILLED,
        position_qty=D("-0.010"),
        order_side=Side.BUY,
        order_price=D("2996.00"),
        order_qty=D("0.010"),
        client_order_id=cid("2998", Side.BUY, 4),
        exchange_order_id="ex-1",
        order_filled_qty=D("0.004"),
        order_status=OrderStatus.PARTIALLY_FILLED,
        lock_status=LockStatus.LOCKED,
        cycle=4,
        post_only_rejects=2,
        version=17,
        order_requested_ms=1_732_000_000_123,
        order_reduce_only=True,
        order_post_only=False,
    )
    assert decode_slot(encode_slot(slot)) == slot
    assert str(decode_slot(encode_slot(slot)).slot_price) == "2998.00"
    # a slot stored before order_requested_ms and the order flags existed reads them as "unknown"
    legacy = json.loads(encode_slot(slot))
    for name in ("order_requested_ms", "order_reduce_only", "order_post_only"):
        del legacy[name]
    assert decode_slot(json.dumps(legacy)) == replace(
        slot, order_requested_ms=0, order_reduce_only=None, order_post_only=None
    )
    with pytest.raises(SlotDecodeError, match="order_reduce_only must be true, false or null, got 'yes'"):
        decode_slot(json.dumps({**legacy, "order_reduce_only": "yes"}))
    leg = Leg("arb", PERP_VENUE, BTC, MarketType.PERPETUAL, D("-0.5"), D("50000.1"), 9, 3)
    record = LegRecord(leg, ("a", "b"))
    assert decode_leg_record(encode_leg_record(record)) == record
    recorded = RecordedStep(3, plan_step(StepKind.EXIT_PERP, PERP_VENUE, Side.BUY, "0.0100"), D("50010.10"))
    assert decode_recorded_step(encode_recorded_step(recorded)) == recorded
    assert str(decode_recorded_step(encode_recorded_step(recorded)).step.quantity) == "0.0100"


async def test_an_executors_heartbeat_outlives_a_redis_restart(redis: RedisServer) -> None:
    # Before, one failed heartbeat ended the task: the entry went stale and risk's halt pushes
    # skipped the executor (NATS alone was left to reach it).
    store = await RedisStore.connect(RedisSettings(url=SecretStr(redis.url)), service="executor")
    registry = ExecutorRegistry(store, SystemClock())
    entry = ExecutorEntry("exec-1", "127.0.0.1:1", "paper", "main", 0)
    beating = asyncio.create_task(registry.run(entry, 0.05))
    try:
        await until(lambda: _live(registry), "the first heartbeat", within=5)
        redis.stop()  # the entry goes with it (no persistence)
        await asyncio.sleep(0.5)  # beats fail meanwhile
        assert not beating.done()
        redis.start()
        await until(lambda: _live(registry), "a heartbeat after Redis came back", within=10)
        assert not beating.done()
    finally:
        beating.cancel()
        stopped, _ = await asyncio.wait({beating}, timeout=5)
        await store.close()
    assert stopped, "the heartbeat did not stop when cancelled"


async def _live(registry: ExecutorRegistry) -> bool:
    try:
        return [e.executor_id for e in await registry.live(max_age_ms=1_000)] == ["exec-1"]
    except redis_errors.ConnectionError:
        return False
