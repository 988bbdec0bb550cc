"""OrderExecutor: one order to the venue, at most once, whatever the network does.

The rules (behaviour.md §5):
- the trading-state gate is checked before the first send and before every retry;
- every send takes a token from the account's shared rate budget;
- only retryable errors are retried (exponential backoff, Retry-After honoured and shared);
- an ambiguous failure (a timeout after the venue may have accepted) is resolved by fetching
  the order by client id before any retry; so is a duplicate-id refusal. "Not found" settles it
  only once the venue has decided (``decided_after_s`` after that send began, in this call or
  an earlier one of this process): until then the request may still reach the venue (a
  connection dropped mid-request), and a resend could fill twice (venues refuse a repeated
  client id only while the first order is open);
- a send that may be a repeat (the submit mark already exists: a crash, a recovery, a second
  caller) looks the order up first, after waiting for another process still sending it; a mark
  left "sending" by an earlier run of this executor (killed mid-send) is an undecided send like
  an ambiguous one of its own, dated from the mark;
- an order found by its client id rather than sent is a replay of an earlier request
  (:attr:`Placement.replayed`); one that differs from the request (symbol, market, side, type,
  quantity, limit price) is not this request's order: :class:`ClientOrderIdConflict`, and
  nothing is sent;
- a cancel of an unknown or already final order is final, not an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Tracer

from opensqt.errors import (
    BudgetExhausted,
    ClientOrderIdConflict,
    DuplicateOrder,
    ExchangeError,
    OpenSQTError,
    OrderNotFound,
    PostOnlyRejected,
    RateLimited,
    Retryable,
)
from opensqt.exchange.port import ExchangePort
from opensqt.execution.gate import TradingStateGate
from opensqt.execution.rate_budget import RateBudget
from opensqt.execution.retry import BackoffPolicy
from opensqt.model import MarketType, Order, OrderStatus, OrderType, Side
from opensqt.telemetry import get_logger

__all__ = [
    "CancelResult",
    "Claim",
    "MarkClaim",
    "OrderExecutor",
    "Placement",
    "SubmitMarks",
    "conflict",
    "reduces",
]

log = get_logger(__name__)


#: How often a caller that found another process sending the same client id checks again.
IN_FLIGHT_POLL_S = 0.05
#: A send this long after the mark was stamped (a wait for the rate budget, a retry) stamps it
#: again first, so other processes measure staleness from the latest send.
RESTAMP_AFTER_S = 1.0
#: Default for how long after a send began the venue has decided it: a request that has not
#: reached it by then never will (for Binance the signed recvWindow ends first; see the adapter).
DECIDED_AFTER_S = 15.0


class MarkClaim(StrEnum):
    """What the submit mark says when a send of a client order id begins."""

    FIRST = "first"  # no mark: this caller set it, nobody sent this id before
    SETTLED = "settled"  # an earlier send was answered (or is long gone): look the order up
    IN_FLIGHT = "in_flight"  # another process is sending it now: wait, then look it up
    # an earlier run of this executor id was sending it when it died (the mark is ours now):
    # its request may still reach the venue, so look it up, and trust "not found" only once
    # the venue has decided that send
    ORPHANED = "orphaned"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim's answer: what the mark said, and for IN_FLIGHT and ORPHANED how long ago the
    other send stamped it (seconds, on the marks' clock)."""

    state: MarkClaim
    stamped_ago_s: float = 0.0


class SubmitMarks(Protocol):
    """Remembers that an order was (possibly) sent, by whom, and whether it was answered."""

    async def claim(self, client_order_id: str) -> Claim: ...

    async def settle(self, client_order_id: str) -> None: ...


@dataclass(slots=True)
class _Attempts:
    """What the sends of one place call leave behind."""

    ambiguous: bool = False  # a send whose request may have reached the venue
    undecided_since: float | None = None  # start of the latest such send, until a lookup after
    # the venue has decided it
    waited: bool = False  # a lookup waited for the venue's decision (long: check the gate again)


def reduces(order: Order) -> bool:
    """Whether the gate may count ``order`` as reduce-only. A spot venue cannot enforce the flag
    (it is not sent there) and a spot BUY only ever adds: it opens, whatever it says. A margin
    BUY with the flag repays a short (``AUTO_REPAY``); a perpetual's flag the venue enforces."""
    return order.reduce_only and not (order.market_type is MarketType.SPOT and order.side is Side.BUY)


def conflict(request: Order, existing: Order) -> ClientOrderIdConflict | None:
    """The refusal when the venue's order under ``request``'s client id is a different order.

    Compared: symbol, market, side, type, quantity and (for a limit order) price: what decides
    the fills. Not compared: the time in force and the post-only and reduce-only flags, which a
    re-send may change (post-only falls back, a liquidation exit is re-sent as GTC) and venues
    do not all report."""
    wanted: list[str] = []
    held: list[str] = []
    pairs: list[tuple[str, object, object]] = [
        ("symbol", request.symbol, existing.symbol),
        ("market", request.market_type.value, existing.market_type.value),
        ("side", request.side.value, existing.side.value),
        ("type", request.order_type.value, existing.order_type.value),
    ]
    # a quantity or price the venue did not report (0) proves nothing either way
    if existing.quantity:
        pairs.append(("quantity", request.quantity, existing.quantity))
    if request.order_type is OrderType.LIMIT and existing.price:
        pairs.append(("price", request.price, existing.price))
    for name, asked, found in pairs:
        if asked != found:
            wanted.append(f"{name} {asked}")
            held.append(f"{name} {found}")
    if not wanted:
        return None
    return ClientOrderIdConflict(
        f"client_order_id {request.client_order_id!r} is already at the venue for a different order "
        f"({', '.join(held)}; this request: {', '.join(wanted)}); nothing was sent: use a new id"
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """A place call's answer: the venue's order, and whether an earlier request sent it (this
    call found it by its client id and sent nothing)."""

    order: Order
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CancelResult:
    order: Order | None
    already_final: bool


class OrderExecutor:
    """Places, cancels and looks up orders on one venue account."""

    def __init__(
        self,
        exchange: ExchangePort,
        budget: RateBudget,
        gate: TradingStateGate,
        marks: SubmitMarks,
        *,
        policy: BackoffPolicy | None = None,
        post_only_fallback: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        tracer: Tracer | None = None,
        decided_after_s: float = DECIDED_AFTER_S,
        on_undecided_wait: Callable[[], object] | None = None,
    ) -> None:
        self.exchange = exchange
        self.decided_after_s = decided_after_s
        self._on_undecided_wait = on_undecided_wait  # a metric: each wait for the venue to decide
        self._tracer = tracer or trace.get_tracer("opensqt.execution")
        self.budget = budget
        self.gate = gate
        self.marks = marks
        self.policy = policy or BackoffPolicy()
        self.post_only_fallback = post_only_fallback
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.lookups = 0
        self.sends = 0
        self._settling: set[asyncio.Future[None]] = set()
        # client id -> start of an ambiguous send that a place call gave up on (monotonic)
        self._undecided: dict[str, float] = {}

    async def lookup(self, symbol: str, client_order_id: str) -> Order | None:
        """The venue's order with this client id, or None if it has none."""
        self.lookups += 1
        try:
            return await self.exchange.fetch_order(symbol, client_order_id=client_order_id)
        except OrderNotFound:
            return None

    async def resolve(self, order: Order) -> Order | None:
        """What became of ``order`` after a place call gave up: the venue's order by its client
        id, or None once the venue has decided that it has none (a send of it still undecided,
        an ambiguous one of this process, is waited for first). Never sends. Raises the
        exchange taxonomy when the venue cannot be asked."""
        since = self._undecided.get(order.client_order_id)
        return await self._look_up(order, _Attempts(undecided_since=since))

    async def place(self, order: Order) -> Order:
        """Send ``order`` once; return the venue's view of it (:meth:`submit`)."""
        return (await self.submit(order)).order

    async def submit(self, order: Order) -> Placement:
        """Send ``order`` once; return the venue's view of it. Raises the exchange taxonomy.

        While it is unknown whether an earlier send reached the venue (a repeat, an ambiguous
        timeout, a duplicate refusal), the next step is a lookup by client id, never a send; a
        lookup that itself fails is retried like a send. An order found that way was sent by
        an earlier request (``replayed``), unless this call's own send may have placed it; if it
        differs from ``order``, :class:`ClientOrderIdConflict` is raised.
        """
        self.gate.check(reduce_only=reduces(order))
        cid = order.client_order_id
        # The mark and the first token are independent Redis round trips: take them together.
        # (A token taken for a send that turns into a lookup is spent; lookups weigh on the
        # venue's limits too.)
        claiming = asyncio.ensure_future(self._claim(cid))
        try:
            claimed, token = await asyncio.gather(
                asyncio.shield(claiming), self.budget.acquire(), return_exceptions=True
            )
        except BaseException:  # cancelled: a dead run's mark the claim took must still be waited for
            claiming.add_done_callback(lambda done: self._keep_orphan(cid, done))
            raise
        if isinstance(claimed, BaseException):
            raise claimed
        claim, stamped = claimed  # stamped: when the mark was, not when the token came
        if isinstance(token, BaseException):
            if claim.state is MarkClaim.ORPHANED:  # the dead predecessor's send may still land
                self._remember_undecided(cid, self._orphan_began(claim, stamped))
            elif isinstance(token, OpenSQTError) and cid not in self._undecided:
                await self._settle(cid)  # nothing was sent (an exhausted budget): do not hold others
            raise token
        if claim.state is MarkClaim.IN_FLIGHT:
            claim = await self._wait_for_other_sender(order)  # now ours: look it up first
            stamped = self._monotonic()
        attempts = _Attempts(undecided_since=self._undecided.pop(cid, None))
        if claim.state is MarkClaim.ORPHANED:
            self._adopt_orphan(attempts, claim, stamped)
        try:
            placed = await self._send(
                order,
                must_look_up=claim.state is not MarkClaim.FIRST or attempts.undecided_since is not None,
                attempts=attempts,
                stamped=stamped,
            )
        except BaseException as exc:  # a cancellation too: the next call must still wait
            if attempts.undecided_since is not None:
                self._remember_undecided(cid, attempts.undecided_since)
            elif isinstance(exc, OpenSQTError) and not attempts.ambiguous:
                await self._settle(cid)
            raise  # after an ambiguous send the mark stays "sending" until it is stale
        # The venue has answered: the caller need not wait for the mark's round trip. Until it
        # is settled, another process sending this id waits (it polls), and this process's own
        # next send of it looks the order up first (an own mark), as after a settle.
        self._settle_soon(cid)
        return placed

    async def _claim(self, client_order_id: str) -> tuple[Claim, float]:
        """The mark's claim, and when it was answered (monotonic): a send long after that, such
        as after a slow wait for the rate budget, stamps the mark again first."""
        claim = await self.marks.claim(client_order_id)
        return claim, self._monotonic()

    def _keep_orphan(self, client_order_id: str, claiming: asyncio.Future[tuple[Claim, float]]) -> None:
        """A claim whose call was cancelled: if it took a dead run's mark, the next call of that
        client id in this process waits for that run's send to be decided, as this one would."""
        if claiming.cancelled() or claiming.exception() is not None:
            return
        claim, at = claiming.result()
        if claim.state is MarkClaim.ORPHANED:
            self._remember_undecided(client_order_id, self._orphan_began(claim, at))

    @staticmethod
    def _orphan_began(claim: Claim, now: float) -> float:
        """When a dead predecessor's send (an ORPHANED mark) began, as late as it can have: by
        RESTAMP_AFTER_S after its mark was stamped (a later send stamps it again first). From
        then on it is undecided as if it were one of ours."""
        return now - claim.stamped_ago_s + RESTAMP_AFTER_S

    def _adopt_orphan(self, attempts: _Attempts, claim: Claim, now: float) -> None:
        began, since = self._orphan_began(claim, now), attempts.undecided_since
        attempts.undecided_since = began if since is None else max(since, began)

    def _remember_undecided(self, client_order_id: str, since: float) -> None:
        """The next place call of this id in this process waits for the venue's decision too."""
        now = self._monotonic()
        self._undecided = {
            cid: began for cid, began in self._undecided.items() if now - began < self.decided_after_s
        }
        self._undecided[client_order_id] = max(since, self._undecided.get(client_order_id, since))

    async def _look_up(self, order: Order, attempts: _Attempts) -> Order | None:
        """The order by its client id. While a send of it may still reach the venue, "not
        found" is no answer yet: wait until the venue has decided that send, then look again."""
        existing = await self.lookup(order.symbol, order.client_order_id)
        since = attempts.undecided_since
        if existing is None and since is not None:
            wait = since + self.decided_after_s - self._monotonic()
            if wait > 0:
                log.warning(
                    "order_undecided_wait", client_order_id=order.client_order_id, wait_s=round(wait, 3)
                )
                if self._on_undecided_wait is not None:
                    self._on_undecided_wait()
                await self._sleep(wait)
                attempts.waited = True
                existing = await self.lookup(order.symbol, order.client_order_id)
        attempts.undecided_since = None
        return existing

    def _settle_soon(self, client_order_id: str) -> None:
        task = asyncio.ensure_future(self._settle(client_order_id))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def settled(self) -> None:
        """Wait until every mark this executor settles in the background is settled."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    async def _wait_for_other_sender(self, order: Order) -> Claim:
        """Another process is sending this client id: wait until its mark is settled or stale
        (the claim then makes the mark this caller's, and is returned)."""
        while (claim := await self.marks.claim(order.client_order_id)).state is MarkClaim.IN_FLIGHT:
            await self._sleep(IN_FLIGHT_POLL_S)
            self.gate.check(reduce_only=reduces(order))
        # the other process did send it: look it up, even if its mark has gone meanwhile
        return Claim(MarkClaim.SETTLED) if claim.state is MarkClaim.FIRST else claim

    async def _settle(self, client_order_id: str) -> None:
        """Best effort: a mark left "sending" only makes others wait until it is stale."""
        try:
            await self.marks.settle(client_order_id)
        except Exception as exc:
            log.warning("submit_mark_not_settled", client_order_id=client_order_id, error=str(exc))

    async def _send(
        self, order: Order, *, must_look_up: bool, attempts: _Attempts, stamped: float
    ) -> Placement:
        paid = True
        backoff_after_lookup: Retryable | None = None  # an ambiguous send: look first, back off after
        retries = 0
        while True:
            sent_at: float | None = None
            try:
                if must_look_up:
                    existing = await self._look_up(order, attempts)
                    if existing is not None:
                        log.info("order_found_before_resend", client_order_id=order.client_order_id)
                        refusal = conflict(order, existing)
                        if refusal is not None:
                            raise refusal
                        # not a replay when this call's own send may have placed it
                        return Placement(existing, replayed=not attempts.ambiguous)
                    must_look_up = False
                    if attempts.waited:  # seconds for the venue to decide: as after a backoff
                        attempts.waited, paid = False, False
                        self.gate.check(reduce_only=reduces(order))
                    if backoff_after_lookup is not None:
                        error, backoff_after_lookup = backoff_after_lookup, None
                        retries = await self._backoff(error, retries, order)
                        paid = False  # the wait may have been long: take a fresh token
                if paid:
                    paid = False
                else:
                    await self.budget.acquire()
                if self._monotonic() - stamped > RESTAMP_AFTER_S:
                    restamp = await self.marks.claim(order.client_order_id)
                    if restamp.state is MarkClaim.IN_FLIGHT:
                        # ours went stale and another process took it over: wait, then look
                        restamp = await self._wait_for_other_sender(order)
                        must_look_up, paid = True, True
                    stamped = self._monotonic()
                    if restamp.state is MarkClaim.ORPHANED:  # a second run of our id took it
                        self._adopt_orphan(attempts, restamp, stamped)
                        must_look_up, paid = True, True
                    if must_look_up:
                        continue
                # The last word before anything leaves: a halt may have come while this call
                # waited for a token, for another sender or for a mark (the gate is in memory)
                self.gate.check(reduce_only=reduces(order))
                self.sends += 1
                sent_at = self._monotonic()
                with self._tracer.start_as_current_span(
                    "venue create_order",
                    attributes={"client_order_id": order.client_order_id, "symbol": order.symbol},
                ):
                    placed = await self.exchange.create_order(order)
            except DuplicateOrder:
                if must_look_up:
                    raise
                must_look_up = True
                continue
            except PostOnlyRejected:
                if not (self.post_only_fallback and order.post_only):
                    raise
                log.info("post_only_fallback", client_order_id=order.client_order_id)
                order = replace(order, post_only=False)
                continue
            except BudgetExhausted:
                raise  # our own queue was too long: nothing was sent, nothing to block
            except Retryable as error:
                if isinstance(error, RateLimited):
                    await self.budget.block(self.policy.delay(retries, error, self._rng))
                if error.ambiguous and sent_at is not None:
                    attempts.ambiguous, attempts.undecided_since = True, sent_at
                if error.ambiguous and not must_look_up:
                    must_look_up, backoff_after_lookup = True, error
                    continue
                retries = await self._backoff(error, retries, order)
                continue
            if placed.post_only and placed.status is OrderStatus.EXPIRED and placed.filled_qty == 0:
                # Some venues answer a post-only order that would take with an EXPIRED order.
                if not self.post_only_fallback:
                    raise PostOnlyRejected(
                        f"post-only order {order.client_order_id} would have taken liquidity"
                    )
                order = replace(order, post_only=False)
                continue
            return Placement(placed)

    async def _backoff(self, error: Retryable, retries: int, order: Order) -> int:
        """Sleep before the next attempt, or re-raise ``error`` when no retry remains."""
        if not self.policy.should_retry(error, retries):
            raise error
        await self._sleep(self.policy.delay(retries, error, self._rng))
        self.gate.check(reduce_only=reduces(order))
        return retries + 1

    async def cancel(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> CancelResult:
        """Cancel one order. Unknown or already final is final, not an error."""
        retries = 0
        while True:
            await self.budget.acquire()
            try:
                order = await self.exchange.cancel_order(
                    symbol, client_order_id=client_order_id, exchange_order_id=exchange_order_id
                )
                return CancelResult(order, already_final=False)
            except OrderNotFound:
                try:
                    order = await self.exchange.fetch_order(
                        symbol, client_order_id=client_order_id, exchange_order_id=exchange_order_id
                    )
                except OrderNotFound:
                    return CancelResult(None, already_final=True)
                if order.status.is_final:
                    return CancelResult(order, already_final=True)
                raise
            except Retryable as error:
                if isinstance(error, RateLimited):
                    await self.budget.block(self.policy.delay(retries, error, self._rng))
                if not self.policy.should_retry(error, retries):
                    raise
                await self._sleep(self.policy.delay(retries, error, self._rng))
                retries += 1

    async def cancel_all(self, symbol: str = "", *, buys_only: bool = False) -> list[Order]:
        """Cancel every working order (of ``symbol``; only BUYs when ``buys_only``)."""
        cancelled: list[Order] = []
        for order in await self.exchange.fetch_open_orders(symbol):
            if buys_only and order.side.value != "BUY":
                continue
            try:
                result = await self.cancel(
                    order.symbol,
                    client_order_id=order.client_order_id,
                    exchange_order_id=order.exchange_order_id,
                )
            except ExchangeError as exc:
                log.warning("cancel_failed", client_order_id=order.client_order_id, error=str(exc))
                continue
            if result.order is not None and not result.already_final:
                cancelled.append(result.order)
        return cancelled
