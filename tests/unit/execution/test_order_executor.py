"""OrderExecutor: at most one order at the venue per client id, whatever the network does."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.errors import (
    BudgetExhausted,
    ClientOrderIdConflict,
    InsufficientFunds,
    InvalidOrder,
    RateLimited,
    Retryable,
    TradingHalted,
)
from opensqt.execution.gate import TradingStateGate
from opensqt.execution.order_executor import IN_FLIGHT_POLL_S, Claim, MarkClaim, OrderExecutor, conflict
from opensqt.execution.retry import BackoffPolicy
from opensqt.model import (
    MarketType,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    TradingStateKind,
)
from tests.support.sim_exchange import BTC, Fault, SimExchange


class Budget:
    def __init__(self) -> None:
        self.taken = 0
        self.blocked: list[float] = []

    async def acquire(self, cost: int = 1) -> float:
        self.taken += cost
        return 0.0

    async def block(self, seconds: float) -> None:
        self.blocked.append(seconds)


class Marks:
    """Submit marks in memory; ``in_flight`` answers IN_FLIGHT that many times first (another
    process sending the same id); ``orphaned`` (client id -> seconds since its mark was stamped)
    answers ORPHANED once for each (left by a killed earlier run of this executor id)."""

    def __init__(
        self, in_flight: int = 0, settle_fails: bool = False, orphaned: dict[str, float] | None = None
    ) -> None:
        self.seen: set[str] = set()
        self.settled: list[str] = []
        self.claims = 0
        self.in_flight = in_flight
        self.settle_fails = settle_fails
        self.orphaned = dict(orphaned or {})
        self.script: list[Claim] = []  # answered first, in order, whatever the id

    async def claim(self, client_order_id: str) -> Claim:
        self.claims += 1
        if self.script:
            self.seen.add(client_order_id)
            return self.script.pop(0)
        if self.in_flight > 0:
            self.in_flight -= 1
            self.seen.add(client_order_id)
            return Claim(MarkClaim.IN_FLIGHT)
        if client_order_id in self.orphaned:
            self.seen.add(client_order_id)
            return Claim(MarkClaim.ORPHANED, self.orphaned.pop(client_order_id))
        new = client_order_id not in self.seen
        self.seen.add(client_order_id)
        return Claim(MarkClaim.FIRST if new else MarkClaim.SETTLED)

    async def settle(self, client_order_id: str) -> None:
        if self.settle_fails:
            raise ConnectionError("redis went away")
        self.settled.append(client_order_id)


def ambiguous() -> Retryable:
    error = Retryable("RequestTimeout: read timed out")
    error.ambiguous = True
    return error


def limit(cid: str = "cid-1", price: str = "59000.0", reduce_only: bool = False) -> Order:
    return Order(
        symbol=BTC.symbol,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal(price),
        client_order_id=cid,
        reduce_only=reduce_only,
    )


def make(exchange: SimExchange, **kwargs: object) -> tuple[OrderExecutor, Budget, list[float]]:
    """``on_sleep`` (optional): called with each sleep's seconds (a clock to move, a venue to
    let requests reach)."""
    sleeps: list[float] = []
    on_sleep = kwargs.pop("on_sleep", None)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if callable(on_sleep):
            on_sleep(seconds)

    budget = Budget()
    executor = OrderExecutor(
        exchange,
        budget,
        kwargs.pop("gate", TradingStateGate()),
        kwargs.pop("marks", Marks()),  # type: ignore[arg-type]
        sleep=sleep,
        rng=random.Random(1),
        **kwargs,
    )  # type: ignore[arg-type]
    return executor, budget, sleeps


async def test_a_timeout_after_the_venue_accepted_is_resolved_by_lookup_not_resent() -> None:
    venue = SimExchange()
    venue.faults.append(Fault(ambiguous(), after=True))
    executor, _, sleeps = make(venue)
    placed = await executor.place(limit())
    assert placed.client_order_id == "cid-1"
    assert placed.status is OrderStatus.NEW
    assert venue.accepted == ["cid-1"]
    assert venue.create_calls == 1
    assert sleeps == []


async def test_a_timeout_before_the_venue_saw_it_is_resent_once_the_venue_has_decided() -> None:
    venue = SimExchange()
    venue.faults.append(Fault(ambiguous()))
    clock = Clock()
    executor, _, sleeps = make(venue, monotonic=clock, on_sleep=clock.advance, decided_after_s=15.0)
    await executor.place(limit())
    assert venue.accepted == ["cid-1"]
    assert venue.create_calls == 2
    assert executor.lookups == 2  # not found; again once the venue has decided; then the resend
    assert sleeps[0] == 15.0
    assert 0.45 <= sleeps[1] <= 0.55  # and the retry's backoff
    assert len(sleeps) == 2


class Clock:
    """A monotonic clock that moves only when the executor sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def market(cid: str = "mkt-1") -> Order:
    return Order(
        symbol=BTC.symbol,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.010"),
        client_order_id=cid,
    )


def dropped() -> Retryable:
    error = Retryable("NetworkError: connection reset by peer")
    error.ambiguous = True
    return error


async def test_a_request_still_on_its_way_is_waited_for_not_sent_twice() -> None:
    # The connection drops mid-request; the request reaches the venue a moment later and fills.
    # A resend after an early "not found" would fill a second time: a market order is never
    # open, so the venue cannot refuse the repeated client id.
    venue = SimExchange()
    venue.faults.append(Fault(dropped(), late=True))
    clock = Clock()

    def waited(seconds: float) -> None:
        clock.advance(seconds)
        venue.land()

    waits: list[None] = []
    executor, _, sleeps = make(
        venue,
        monotonic=clock,
        on_sleep=waited,
        decided_after_s=15.0,
        on_undecided_wait=lambda: waits.append(None),
    )
    placed = await executor.place(market())

    venue.land()  # anything still on its way arrives
    assert venue.accepted == ["mkt-1"]
    assert placed.status is OrderStatus.FILLED
    assert venue.create_calls == 1
    assert sleeps == [15.0]  # from the send, not from the lookup
    assert len(waits) == 1  # counted (opensqt_order_undecided_waits_total)


async def test_a_later_call_in_the_same_process_waits_for_the_venue_to_decide_too() -> None:
    venue = SimExchange()
    # the send drops mid-request, and the lookup that follows fails: the call gives up
    venue.faults.extend([Fault(dropped(), late=True), Fault(Retryable("NetworkError: lookup"))])
    clock = Clock()

    def waited(seconds: float) -> None:
        clock.advance(seconds)
        venue.land()

    marks = Marks()
    executor, _, sleeps = make(
        venue,
        marks=marks,
        monotonic=clock,
        on_sleep=waited,
        decided_after_s=15.0,
        policy=BackoffPolicy(max_retries=0),
    )
    with pytest.raises(Retryable):
        await executor.place(market())
    assert marks.settled == []  # the mark stays: others wait too

    clock.advance(1.0)  # the caller tries again at once; the first request is still on its way
    placed = await executor.place(market())

    venue.land()
    assert venue.accepted == ["mkt-1"]
    assert placed.status is OrderStatus.FILLED
    assert venue.create_calls == 1
    assert sleeps == [14.0]


def restarted(
    venue: SimExchange, stamped_ago_s: float, **kwargs: object
) -> tuple[OrderExecutor, list[float], Marks]:
    """A new run of an executor whose predecessor was killed mid-send of ``mkt-1``: its mark,
    stamped ``stamped_ago_s`` ago, says "sending"; the request may still be on its way to
    ``venue`` (``venue.in_flight``). Sleeps move the clock and let what is on the wire land."""
    clock = Clock()

    def waited(seconds: float) -> None:
        clock.advance(seconds)
        venue.land()

    marks = Marks(orphaned={"mkt-1": stamped_ago_s})
    executor, _, sleeps = make(
        venue, marks=marks, monotonic=clock, on_sleep=waited, decided_after_s=15.0, **kwargs
    )
    return executor, sleeps, marks


async def test_a_restarted_executor_waits_for_its_dead_predecessors_send_to_be_decided() -> None:
    # Killed between sending and hearing back: the request reaches the venue a few seconds into
    # the new run. Looking up once and sending on "not found" would fill the market order twice.
    venue = SimExchange()
    venue.in_flight.append(market())
    executor, sleeps, _ = restarted(venue, stamped_ago_s=2.0)

    placed = await executor.place(market())

    venue.land()
    assert venue.accepted == ["mkt-1"]
    assert placed.status is OrderStatus.FILLED
    assert venue.create_calls == 0  # found once the venue had decided; never sent again
    # until the latest the send could have begun (stamp + RESTAMP_AFTER_S) plus the horizon
    assert sleeps == [15.0 - 2.0 + 1.0]


async def test_a_predecessors_send_that_never_arrives_is_sent_once_the_venue_has_decided() -> None:
    venue = SimExchange()
    executor, sleeps, _ = restarted(venue, stamped_ago_s=10.0)

    placed = await executor.place(market())

    assert placed.status is OrderStatus.FILLED
    assert venue.accepted == ["mkt-1"]
    assert venue.create_calls == 1
    assert executor.lookups == 2  # before the wait, and after it
    assert sleeps == [6.0]


async def test_a_predecessors_send_already_at_the_venue_is_found_without_waiting() -> None:
    venue = SimExchange()
    venue.in_flight.append(market())
    venue.land()
    executor, sleeps, _ = restarted(venue, stamped_ago_s=0.5)

    placed = await executor.place(market())

    assert placed.status is OrderStatus.FILLED
    assert venue.create_calls == 0
    assert sleeps == []


@pytest.mark.parametrize("how", ["budget exhausted", "cancelled"])
async def test_a_call_that_fails_after_taking_an_orphaned_mark_leaves_the_next_one_waiting(how: str) -> None:
    # The claim took the dead run's mark (it is this run's now), and the call ends before a
    # send: no rate token, or cancelled while it waits for one. The mark must stay (others keep
    # waiting) and the next call must still wait for that run's send to be decided.
    venue = SimExchange()
    venue.in_flight.append(market())
    executor, sleeps, marks = restarted(venue, stamped_ago_s=2.0)
    acquire = executor.budget.acquire
    never = asyncio.Event()

    async def no_token(cost: int = 1) -> float:
        if how == "budget exhausted":
            raise BudgetExhausted("rate budget exhausted: would wait 31.0s (max 30.0s)")
        await never.wait()
        return 0.0

    executor.budget.acquire = no_token  # type: ignore[method-assign]
    call = asyncio.ensure_future(executor.place(market()))
    for _ in range(5):
        await asyncio.sleep(0)  # the claim answers; the token does not come
    call.cancel()
    with pytest.raises(BudgetExhausted if how == "budget exhausted" else asyncio.CancelledError):
        await call
    await asyncio.sleep(0)
    assert marks.settled == []

    executor.budget.acquire = acquire  # type: ignore[method-assign]
    placed = await executor.place(market())  # the mark is its own now; the wait is remembered

    venue.land()
    assert placed.status is OrderStatus.FILLED
    assert venue.accepted == ["mkt-1"]
    assert venue.create_calls == 0
    assert sleeps == [14.0]


def slow_tokens(budget: Budget, clock: Clock, seconds: float) -> None:
    """Every rate token comes ``seconds`` late (the clock moves meanwhile)."""

    async def slow(cost: int = 1) -> float:
        clock.advance(seconds)
        budget.taken += cost
        return seconds

    budget.acquire = slow  # type: ignore[method-assign]


async def test_a_send_long_after_the_claim_because_of_a_slow_token_stamps_the_mark_again() -> None:
    # Staleness (and a restarted run's wait) counts from the stamp: a first send 5 s after it,
    # behind a slow rate budget, must renew it, or another process could take a live send for
    # a decided one.
    venue = SimExchange()
    marks = Marks()
    clock = Clock()
    executor, budget, _ = make(venue, marks=marks, monotonic=clock)
    slow_tokens(budget, clock, 5.0)
    await executor.place(limit())
    assert venue.create_calls == 1
    assert marks.claims == 2  # the claim, and again before the send


async def test_a_mark_another_run_of_this_id_took_before_a_late_send_is_waited_for() -> None:
    # Two runs of one executor id at once (a rolling update): ours took the mark, the send
    # comes late (a slow token), and the re-stamp finds the other run's: its send may be on
    # the wire, so look it up and trust "not found" only once that send is decided.
    venue = SimExchange()
    marks = Marks()
    marks.script = [Claim(MarkClaim.FIRST), Claim(MarkClaim.ORPHANED, 0.5)]
    clock = Clock()
    executor, budget, sleeps = make(
        venue, marks=marks, monotonic=clock, on_sleep=clock.advance, decided_after_s=15.0
    )
    slow_tokens(budget, clock, 1.5)
    await executor.place(market())
    assert venue.create_calls == 1  # only after the wait
    assert executor.lookups == 2  # not found; not found once the other run's send was decided
    assert sleeps == [15.0 - 0.5 + 1.0]


async def test_a_mark_gone_by_the_time_the_other_sender_is_done_still_means_look_it_up() -> None:
    venue = SimExchange()
    venue.in_flight.append(market())
    venue.land()  # the other process's market order filled (final: its id could be sent again)
    marks = Marks()
    marks.script = [Claim(MarkClaim.IN_FLIGHT), Claim(MarkClaim.FIRST)]  # then its mark expired
    executor, _, _ = make(venue, marks=marks)
    found = await executor.place(market())
    assert found.status is OrderStatus.FILLED
    assert venue.create_calls == 0
    assert venue.accepted == ["mkt-1"]


def gave_up(venue: SimExchange, **kwargs: object) -> tuple[OrderExecutor, Budget, list[float], Clock]:
    """An executor whose first call of ``mkt-1`` gives up after an ambiguous send (its lookup
    fails, no retry left); the request is still on its way to ``venue``. Its sleeps move the
    clock."""
    venue.faults.extend([Fault(dropped(), late=True), Fault(Retryable("NetworkError: lookup"))])
    clock = Clock()
    executor, budget, sleeps = make(
        venue,
        monotonic=clock,
        decided_after_s=15.0,
        policy=BackoffPolicy(max_retries=0),
        on_sleep=clock.advance,
        **kwargs,
    )
    return executor, budget, sleeps, clock


async def test_a_halt_while_waiting_for_the_venue_to_decide_stops_the_resend() -> None:
    venue = SimExchange()
    gate = TradingStateGate()
    executor, budget, sleeps, clock = gave_up(venue, gate=gate)
    with pytest.raises(Retryable):
        await executor.place(market())
    venue.in_flight.clear()  # it never arrives

    async def halted_meanwhile(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        gate.apply(TradingState(TradingStateKind.HALTED, "risk", version=1))

    executor._sleep = halted_meanwhile
    taken = budget.taken
    with pytest.raises(TradingHalted):
        await executor.place(market())
    assert venue.accepted == []
    assert venue.create_calls == 1
    assert sleeps == [15.0]
    assert budget.taken == taken + 1  # the call's own token; none for a resend


async def test_a_resend_after_the_wait_takes_a_fresh_token() -> None:
    venue = SimExchange()
    executor, budget, sleeps, _ = gave_up(venue)
    with pytest.raises(Retryable):
        await executor.place(market())
    venue.in_flight.clear()
    taken = budget.taken

    placed = await executor.place(market())

    assert placed.status is OrderStatus.FILLED
    assert sleeps == [15.0]
    assert budget.taken == taken + 2  # the call's token, spent on the lookups, and the resend's


async def test_an_exhausted_budget_keeps_the_mark_of_an_undecided_send() -> None:
    venue = SimExchange()
    marks = Marks()
    executor, budget, _, _ = gave_up(venue, marks=marks)
    with pytest.raises(Retryable):
        await executor.place(market())

    async def exhausted(cost: int = 1) -> float:
        raise BudgetExhausted("rate budget exhausted: would wait 31.0s (max 30.0s)")

    budget.acquire = exhausted  # type: ignore[method-assign]
    with pytest.raises(BudgetExhausted):
        await executor.place(market())
    assert marks.settled == []  # others must keep waiting: the first request may still land


async def test_a_cancelled_call_still_leaves_the_next_one_waiting() -> None:
    venue = SimExchange()
    executor, _, sleeps, clock = gave_up(venue)
    with pytest.raises(Retryable):
        await executor.place(market())

    async def cancelled(seconds: float) -> None:
        raise asyncio.CancelledError

    executor._sleep = cancelled
    with pytest.raises(asyncio.CancelledError):
        await executor.place(market())  # the caller went away during the wait

    async def landed(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        venue.land()

    executor._sleep = landed
    placed = await executor.place(market())
    venue.land()
    assert venue.accepted == ["mkt-1"]
    assert placed.status is OrderStatus.FILLED
    assert sleeps == [15.0]


async def test_a_lookup_after_the_venue_has_decided_does_not_wait() -> None:
    venue = SimExchange()
    venue.faults.extend([Fault(dropped(), late=True), Fault(Retryable("NetworkError: lookup"))])
    clock = Clock()
    executor, _, sleeps = make(
        venue,
        monotonic=clock,
        on_sleep=clock.advance,
        decided_after_s=15.0,
        policy=BackoffPolicy(max_retries=0),
    )
    with pytest.raises(Retryable):
        await executor.place(market())
    venue.in_flight.clear()  # it never arrived

    clock.advance(20.0)
    placed = await executor.place(market())

    assert placed.status is OrderStatus.FILLED
    assert venue.accepted == ["mkt-1"]
    assert sleeps == []


async def test_a_failed_lookup_is_retried_as_a_lookup_never_as_a_blind_resend() -> None:
    venue = SimExchange()
    # accepted but the answer was lost; then the first lookup times out too
    venue.faults.extend([Fault(ambiguous(), after=True), Fault(Retryable("NetworkError"))])
    executor, _, sleeps = make(venue)
    placed = await executor.place(limit())
    assert placed.client_order_id == "cid-1"
    assert venue.accepted == ["cid-1"]
    assert venue.create_calls == 1
    assert executor.lookups == 2
    assert len(sleeps) == 1  # no wait before the first lookup; one backoff after it failed


async def test_retries_stop_after_five() -> None:
    venue = SimExchange()
    venue.faults.extend(Fault(Retryable("NetworkError")) for _ in range(6))
    executor, _, sleeps = make(venue)
    with pytest.raises(Retryable):
        await executor.place(limit())
    assert venue.create_calls == 6
    assert len(sleeps) == 5
    assert venue.accepted == []


@pytest.mark.parametrize("error", [InsufficientFunds("-2019"), InvalidOrder("-1111 precision")])
async def test_non_retryable_errors_are_never_retried(error: Exception) -> None:
    venue = SimExchange()
    venue.faults.append(Fault(error))  # type: ignore[arg-type]
    executor, _, sleeps = make(venue)
    with pytest.raises(type(error)):
        await executor.place(limit())
    assert venue.create_calls == 1
    assert sleeps == []


async def test_rate_limit_blocks_the_shared_budget_for_retry_after() -> None:
    venue = SimExchange()
    venue.faults.append(Fault(RateLimited("429", retry_after_s=3.0)))
    executor, budget, sleeps = make(venue)
    await executor.place(limit())
    assert budget.blocked
    assert budget.blocked[0] >= 3.0
    assert sleeps[0] >= 3.0
    assert budget.taken == 2
    assert venue.accepted == ["cid-1"]


async def test_the_same_client_id_twice_gives_one_order() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue)
    first = await executor.place(limit())
    second = await executor.place(limit())
    assert first.exchange_order_id == second.exchange_order_id
    assert venue.accepted == ["cid-1"]
    assert venue.create_calls == 1  # the repeat looked it up instead of sending


async def test_a_duplicate_refusal_returns_the_existing_order() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue)
    other, _, _ = make(venue)  # another process: its own submit marks
    await executor.place(limit())
    again = await other.place(limit())
    assert again.client_order_id == "cid-1"
    assert venue.accepted == ["cid-1"]


async def test_another_process_still_sending_the_id_is_waited_for_then_looked_up() -> None:
    """A replica (or a restarted executor) is sending this client id right now: a lookup at
    once could miss its order and send a second one; the caller waits for the mark instead."""
    venue = SimExchange()
    sender, _, _ = make(venue)
    await sender.place(limit())  # the other process's order reaches the venue
    marks = Marks(in_flight=3)  # the first claim and two more checks find it in flight
    waiting, _, sleeps = make(venue, marks=marks)
    found = await waiting.place(limit())
    assert found.client_order_id == "cid-1"
    assert venue.create_calls == 1  # nothing sent by the waiting caller
    assert waiting.lookups == 1
    assert sleeps == [IN_FLIGHT_POLL_S, IN_FLIGHT_POLL_S]


async def test_the_mark_is_settled_once_the_venue_has_answered_and_not_after_an_ambiguous_send() -> None:
    venue = SimExchange()
    marks = Marks()
    executor, _, _ = make(venue, marks=marks)
    await executor.place(limit("answered"))
    assert marks.settled == []  # the answer does not wait for the settle's round trip
    await executor.settled()
    assert marks.settled == ["answered"]
    venue.faults.extend([Fault(ambiguous())] + [Fault(Retryable("NetworkError"))] * 10)
    with pytest.raises(Retryable):
        await executor.place(limit("unknown"))
    await executor.settled()
    assert marks.settled == ["answered"]  # may still reach the venue: others wait, then look


async def test_an_exhausted_budget_settles_the_mark_it_took_so_nobody_waits_for_a_send_that_never_was() -> (
    None
):
    class Exhausted(Budget):
        async def acquire(self, cost: int = 1) -> float:
            raise BudgetExhausted("rate budget exhausted: would wait 31.0s (max 30.0s)")

    venue = SimExchange()
    marks = Marks()
    executor = OrderExecutor(venue, Exhausted(), TradingStateGate(), marks)  # type: ignore[arg-type]
    with pytest.raises(BudgetExhausted):
        await executor.place(limit())
    assert marks.settled == ["cid-1"]
    assert venue.create_calls == 0


async def test_a_mark_that_cannot_be_settled_does_not_turn_a_placed_order_into_an_error() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue, marks=Marks(settle_fails=True))
    placed = await executor.place(limit())
    await executor.settled()  # the settle fails in the background, logged, nothing raised
    assert placed.status is OrderStatus.NEW
    assert venue.accepted == ["cid-1"]


async def test_a_send_long_after_the_mark_was_stamped_stamps_it_again_first() -> None:
    """A retry seconds later: the mark's time is renewed, so other processes count staleness
    from this send, not from the first."""
    venue = SimExchange()
    venue.faults.append(Fault(Retryable("NetworkError: connection refused")))  # before the venue
    marks = Marks()
    clock = iter(float(t) for t in range(0, 100, 2))  # every reading 2 s after the last
    executor, _, _ = make(venue, marks=marks, monotonic=lambda: next(clock))
    await executor.place(limit())
    assert venue.create_calls == 2
    assert marks.claims >= 2  # the first claim, and again before the late send


async def test_halted_refuses_before_anything_reaches_the_venue() -> None:
    venue = SimExchange()
    gate = TradingStateGate(TradingState(TradingStateKind.HALTED, "crash", version=1))
    executor, budget, _ = make(venue, gate=gate)
    with pytest.raises(TradingHalted):
        await executor.place(limit())
    assert venue.create_calls == 0
    assert budget.taken == 0


async def test_reducing_allows_reduce_only_orders_only() -> None:
    venue = SimExchange()
    gate = TradingStateGate(TradingState(TradingStateKind.REDUCING, "crash", version=1))
    executor, _, _ = make(venue, gate=gate)
    with pytest.raises(TradingHalted):
        await executor.place(limit("open-1"))
    assert venue.create_calls == 0


async def test_reducing_refuses_a_spot_buy_whatever_its_flag_says() -> None:
    venue = SimExchange()
    gate = TradingStateGate(TradingState(TradingStateKind.REDUCING, "crash", version=1))
    executor, _, _ = make(venue, gate=gate)
    spot_buy = replace(limit("spot-1", reduce_only=True), market_type=MarketType.SPOT)
    with pytest.raises(TradingHalted):  # the spot venue never sees the flag: it would add
        await executor.place(spot_buy)
    assert venue.create_calls == 0
    margin_buy = replace(spot_buy, client_order_id="margin-1", market_type=MarketType.MARGIN)
    with pytest.raises(InvalidOrder):  # the gate lets a margin buy-back through (the sim refuses it)
        await executor.place(margin_buy)
    assert venue.create_calls == 1


async def test_a_halt_during_backoff_stops_the_retry() -> None:
    venue = SimExchange()
    venue.faults.append(Fault(Retryable("NetworkError")))
    gate = TradingStateGate()
    executor, _, _ = make(venue, gate=gate)

    async def halt_while_sleeping(seconds: float) -> None:
        gate.apply(TradingState(TradingStateKind.HALTED, "risk", version=1))

    executor._sleep = halt_while_sleeping
    with pytest.raises(TradingHalted):
        await executor.place(limit())
    assert venue.accepted == []


class HaltingBudget(Budget):
    """A token that comes only after risk's halt has reached the executor (the wait for a
    token can last seconds after a 429 blocked the account's budget)."""

    def __init__(self, gate: TradingStateGate, state: TradingStateKind) -> None:
        super().__init__()
        self.gate = gate
        self.state = state

    async def acquire(self, cost: int = 1) -> float:
        self.gate.apply(TradingState(self.state, "risk", version=self.taken + 1))
        return await super().acquire(cost)


@pytest.mark.parametrize("state", [TradingStateKind.HALTED, TradingStateKind.REDUCING])
async def test_a_halt_while_waiting_for_a_token_stops_the_send(state: TradingStateKind) -> None:
    venue = SimExchange()
    gate = TradingStateGate()
    executor, _, _ = make(venue, gate=gate)
    executor.budget = HaltingBudget(gate, state)
    marks = executor.marks
    assert isinstance(marks, Marks)
    with pytest.raises(TradingHalted):
        await executor.place(limit())
    assert venue.create_calls == 0
    assert marks.settled == ["cid-1"]  # nothing was sent: nobody waits for this id


async def test_a_reduce_only_order_still_goes_out_when_the_state_turns_reducing_meanwhile() -> None:
    venue = SimExchange()
    gate = TradingStateGate()
    executor, _, _ = make(venue, gate=gate)
    executor.budget = HaltingBudget(gate, TradingStateKind.REDUCING)
    with pytest.raises(InvalidOrder):  # the venue's word: there is no position to reduce
        await executor.place(limit(reduce_only=True))
    assert venue.create_calls == 1  # the gate let it out


async def test_cancel_of_unknown_or_final_order_is_final_not_an_error() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue)
    unknown = await executor.cancel(BTC.symbol, client_order_id="never-sent")
    assert unknown.already_final
    assert unknown.order is None
    await executor.place(limit())
    first = await executor.cancel(BTC.symbol, client_order_id="cid-1")
    assert not first.already_final
    assert first.order is not None
    assert first.order.status is OrderStatus.CANCELED
    again = await executor.cancel(BTC.symbol, client_order_id="cid-1")
    assert again.already_final
    assert again.order is not None
    assert again.order.status is OrderStatus.CANCELED


async def test_cancel_all_buys_only_leaves_sells() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue)
    await executor.place(limit("b1", "59000.0"))
    await executor.place(limit("b2", "58000.0"))
    cancelled = await executor.cancel_all(BTC.symbol, buys_only=True)
    assert sorted(o.client_order_id for o in cancelled) == ["b1", "b2"]
    assert await venue.fetch_open_orders(BTC.symbol) == []


def test_backoff_policy_doubles_caps_and_jitters() -> None:
    policy = BackoffPolicy()
    rng = random.Random(7)
    delays = [policy.delay(n, rng=rng) for n in range(7)]
    for n, delay in enumerate(delays):
        base = min(10.0, 0.5 * 2**n)
        assert base * 0.9 <= delay <= base * 1.1
    assert policy.should_retry(Retryable("x"), 4)
    assert not policy.should_retry(Retryable("x"), 5)
    assert not policy.should_retry(InsufficientFunds("x"), 0)  # type: ignore[arg-type]


async def test_our_own_budget_timing_out_is_reported_without_blocking_the_account() -> None:

    class Exhausted(Budget):
        async def acquire(self, cost: int = 1) -> float:
            raise BudgetExhausted("rate budget exhausted: would wait 31.0s (max 30.0s)")

    venue = SimExchange()
    budget = Exhausted()
    executor = OrderExecutor(venue, budget, TradingStateGate(), Marks())
    with pytest.raises(BudgetExhausted):
        await executor.place(limit())
    assert budget.blocked == []
    assert venue.create_calls == 0


async def test_a_repeat_of_a_placed_order_is_a_replay_and_sends_nothing() -> None:
    venue = SimExchange()
    executor, _, _ = make(venue)
    first = await executor.submit(limit())
    again = await executor.submit(limit())
    assert (first.replayed, again.replayed) == (False, True)
    assert again.order.exchange_order_id == first.order.exchange_order_id
    assert venue.create_calls == 1


async def test_an_order_found_after_this_calls_own_ambiguous_send_is_not_a_replay() -> None:
    venue = SimExchange()
    venue.faults.append(Fault(ambiguous(), after=True))  # accepted, answer lost: found by lookup
    executor, _, _ = make(venue)
    placed = await executor.submit(limit())
    assert placed.replayed is False
    assert venue.accepted == ["cid-1"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"quantity": Decimal("0.020")}, "quantity 0.020"),
        ({"price": Decimal("58000.0")}, "price 58000.0"),
        ({"side": Side.SELL}, "side SELL"),
        ({"order_type": OrderType.MARKET, "price": Decimal(0)}, "type MARKET"),
    ],
    ids=["quantity", "price", "side", "type"],
)
async def test_an_id_the_venue_holds_for_a_different_order_is_refused_and_nothing_is_sent(
    change: dict[str, object], named: str
) -> None:
    venue = SimExchange()
    marks = Marks()
    executor, _, _ = make(venue, marks=marks)
    await executor.place(limit())
    with pytest.raises(ClientOrderIdConflict) as refused:
        await executor.place(replace(limit(), **change))  # type: ignore[arg-type]
    assert named in str(refused.value)  # the request's value
    assert "'cid-1'" in str(refused.value)
    assert venue.create_calls == 1
    assert marks.settled == ["cid-1", "cid-1"]  # the venue has decided this id: nothing to wait for


async def test_a_repeat_differing_only_in_flags_and_time_in_force_is_still_the_same_order() -> None:
    # a liquidation exit re-sent as GTC after an IOC; post-only falls back; venues do not all
    # report reduce-only
    venue = SimExchange()
    executor, _, _ = make(venue)
    first = await executor.submit(replace(limit(), time_in_force=TimeInForce.IOC))
    again = await executor.submit(replace(limit(), post_only=True, reduce_only=True))
    assert again.replayed is True
    assert again.order.exchange_order_id == first.order.exchange_order_id


def test_a_quantity_or_price_the_venue_did_not_report_is_not_a_conflict() -> None:
    request = limit()
    unreported = replace(request, quantity=Decimal(0), price=Decimal(0))
    assert conflict(request, unreported) is None
    assert conflict(request, replace(request, price=Decimal("58000.0"))) is not None
