"""DBOS workflows: every placement and every sequence is a workflow whose id is its idempotency key.

- ``place_order_workflow``: id ``order:<venue>:<account>:<client order id>``; one step that sends
  the order through :class:`~opensqt.execution.order_executor.OrderExecutor` (which looks the
  order up before any resend, so a step re-run after a crash never doubles it).
- ``sequence_workflow``: id ``seq:<venue>:<account>:<sequence id>``; ordered (or parallel) steps;
  a step's quantity may follow an earlier step's executed quantity; when a step fails (or fills
  nothing), completed steps are compensated in reverse with opposite market orders sized to what
  actually filled, each attempt with its own client id, until flat or attempts run out. A step
  that failed without an order but may have reached the venue is looked up first (it may have
  filled); one the venue cannot tell about leaves the sequence FAILED.

Steps never let an exception cross the journal: they return a :class:`StepResult` carrying the
error's class name and message, which the workflow and the gRPC layer turn back into errors.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from dbos import DBOS

from opensqt import errors
from opensqt.execution.order_executor import OrderExecutor
from opensqt.model import Instrument, Order, OrderType, Side, TimeInForce
from opensqt.model.money import ZERO
from opensqt.model.resources import fields_state, restore_fields_state

__all__ = [
    "ExecutionContext",
    "SequenceOutcome",
    "SequenceStatus",
    "StepResult",
    "StepSpec",
    "StepOutcome",
    "error_from_result",
    "order_workflow_id",
    "guarded_place",
    "place_order_workflow",
    "record_order_workflow",
    "register",
    "sequence_workflow",
    "sequence_workflow_id",
    "unregister",
]

COMPENSATION_ATTEMPTS = 8


@dataclass
class ExecutionContext:
    """What the workflows of one executor need (registered before DBOS launches)."""

    executor_id: str
    venue: str
    account: str
    executor: OrderExecutor
    instruments: dict[str, Instrument]
    settle_timeout_s: float = 5.0


_CONTEXTS: dict[str, ExecutionContext] = {}


def register(context: ExecutionContext) -> None:
    _CONTEXTS[context.executor_id] = context


def unregister(executor_id: str) -> None:
    _CONTEXTS.pop(executor_id, None)


def _context(executor_id: str) -> ExecutionContext:
    try:
        return _CONTEXTS[executor_id]
    except KeyError:
        raise RuntimeError(f"no execution context for executor {executor_id!r} in this process") from None


def order_workflow_id(venue: str, account: str, client_order_id: str) -> str:
    return f"order:{venue}:{account}:{client_order_id}"


def sequence_workflow_id(venue: str, account: str, sequence_id: str) -> str:
    return f"seq:{venue}:{account}:{sequence_id}"


@dataclass(frozen=True, slots=True)
class StepResult:
    """An order as the venue has it, or the error that stopped it (class name and message).

    ``replayed``: an earlier request had sent the order (it was found by its client id).
    ``request``: the token of the request whose step produced this result (a placement journaled
    before its send): a repeat of the workflow id returns the first request's result.
    """

    order: Order | None
    error_type: str = ""
    error_message: str = ""
    replayed: bool = False
    request: str = ""

    # results journaled before ``replayed`` and ``request`` were added read back with defaults
    __getstate__ = fields_state
    __setstate__ = restore_fields_state

    @property
    def ok(self) -> bool:
        return self.order is not None and not self.error_type


def error_from_result(result: StepResult) -> errors.OpenSQTError:
    """Rebuild the error a step reported."""
    cls = getattr(errors, result.error_type, None)
    if (
        isinstance(cls, type)
        and issubclass(cls, errors.OpenSQTError)
        and cls
        not in (
            errors.InvalidArgument,
            errors.RateLimited,
        )
    ):
        return cls(result.error_message)
    if cls is errors.RateLimited:
        return errors.RateLimited(result.error_message)
    if cls is errors.InvalidArgument:
        return errors.InvalidOrder(result.error_message)
    return errors.ExchangeError(f"{result.error_type}: {result.error_message}")


async def guarded_place(executor_id: str, order: Order, request: str = "") -> StepResult:
    """Send one order (idempotent on its client id); errors come back as the result."""
    try:
        placement = await _context(executor_id).executor.submit(order)
    except errors.OpenSQTError as exc:
        return StepResult(None, type(exc).__name__, str(exc), request=request)
    return StepResult(placement.order, replayed=placement.replayed, request=request)


@DBOS.step()
async def submit_step(executor_id: str, order: Order, request: str = "") -> StepResult:
    """Send one order (idempotent on its client id)."""
    return await guarded_place(executor_id, order, request)


#: Step errors that say the order is not at the venue: the venue refused it, or (a conflict) its
#: client id names another order there, which must not be unwound. Any other failure (a gate or
#: a budget that refused a repeat of a send that may still land, a timeout) is looked up first.
_NOT_SENT = frozenset(
    {
        "InvalidOrder",
        "InvalidArgument",
        "InsufficientFunds",
        "Rejected",
        "PostOnlyRejected",
        "ClientOrderIdConflict",
        "AuthFailed",
    }
)
#: A failed step whose order the venue could not be asked about: its fills are unknown.
UNRESOLVED = "OrderStateUnknown"


@DBOS.step()
async def resolve_step(executor_id: str, order: Order, failed: StepResult) -> StepResult:
    """A step that failed without an order (a send that timed out, lookups that failed): the
    venue's order by its client id, since it may have filled; ``failed`` when the venue has
    none; :data:`UNRESOLVED` when it cannot tell."""
    try:
        found = await _context(executor_id).executor.resolve(order)
    except errors.OpenSQTError as exc:
        return StepResult(None, UNRESOLVED, f"{failed.error_type}: {failed.error_message}; lookup: {exc}")
    return StepResult(found) if found is not None else failed


@DBOS.step()
async def settle_step(executor_id: str, order: Order) -> StepResult:
    """Wait until the order is final (market / IOC orders), by looking it up."""
    context = _context(executor_id)
    deadline = asyncio.get_running_loop().time() + context.settle_timeout_s
    current = order
    while not current.status.is_final and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        try:
            found = await context.executor.lookup(order.symbol, order.client_order_id)
        except errors.Retryable:
            continue
        if found is not None:
            current = found
    return StepResult(current)


@DBOS.workflow()
async def place_order_workflow(executor_id: str, order: Order, request: str = "") -> StepResult:
    """One order; the workflow id is ``order_workflow_id(...)`` of its client id. ``request``
    names the request that started it (see :class:`StepResult`)."""
    return await submit_step(executor_id, order, request)


@DBOS.workflow()
async def record_order_workflow(executor_id: str, order: Order, result: StepResult) -> StepResult:
    """One order already sent and answered (journal "after"): the workflow records the answer
    under the same id as ``place_order_workflow`` would have (``order_workflow_id``)."""
    return result


class SequenceStatus(StrEnum):
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a sequence. ``size_from_step`` names an earlier step whose executed quantity
    this step's order takes (rounded down to the step size)."""

    step_id: str
    order: Order
    compensate_on_failure: bool = True
    size_from_step: str = ""


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step_id: str
    result: StepResult
    compensation: Order | None = None
    compensation_error: str = ""


@dataclass(frozen=True, slots=True)
class SequenceOutcome:
    sequence_id: str
    status: SequenceStatus
    steps: tuple[StepOutcome, ...]
    reason: str = ""


def _filled(result: StepResult) -> Decimal:
    return result.order.filled_qty if result.order is not None else ZERO


def _compensation_id(client_order_id: str, attempt: int, max_length: int) -> str:
    suffix = f"-c{attempt}"
    return client_order_id[: max_length - len(suffix)] + suffix


async def _run_step(executor_id: str, order: Order) -> StepResult:
    result = await submit_step(executor_id, order)
    if (
        result.ok
        and result.order is not None
        and not result.order.status.is_final
        and (order.order_type is OrderType.MARKET or order.time_in_force is not TimeInForce.GTC)
    ):
        result = await settle_step(executor_id, result.order)
    return result


async def _compensate(executor_id: str, spec: StepSpec, result: StepResult) -> StepOutcome:
    """Unwind what ``spec`` filled with opposite market orders, retrying with fresh ids."""
    context = _context(executor_id)
    if result.error_type == UNRESOLVED:  # it may have filled: nothing can be sized to it
        return StepOutcome(spec.step_id, result, compensation_error=f"not unwound: {result.error_message}")
    remaining = _filled(result)
    if remaining <= 0 or not spec.compensate_on_failure:
        return StepOutcome(spec.step_id, result)
    instrument = context.instruments[spec.order.symbol]
    last_error = ""
    compensation: Order | None = None
    for attempt in range(COMPENSATION_ATTEMPTS):
        order = Order(
            symbol=spec.order.symbol,
            side=Side.SELL if spec.order.side is Side.BUY else Side.BUY,
            order_type=OrderType.MARKET,
            quantity=remaining,
            client_order_id=_compensation_id(
                spec.order.client_order_id, attempt, instrument.max_client_order_id_length
            ),
            venue=spec.order.venue,
            account=spec.order.account,
            market_type=spec.order.market_type,
            reduce_only=True,  # it only ever shrinks exposure, so REDUCING lets it through
        )
        outcome = await _run_step(executor_id, order)
        if outcome.order is not None:
            compensation = outcome.order
            remaining -= outcome.order.filled_qty
        if remaining <= 0:
            return StepOutcome(spec.step_id, result, compensation)
        last_error = outcome.error_message or f"{remaining} left after {order.client_order_id}"
        await DBOS.sleep_async(min(5.0, 0.5 * 2**attempt))
    return StepOutcome(spec.step_id, result, compensation, compensation_error=last_error)


@DBOS.workflow()
async def sequence_workflow(
    executor_id: str, sequence_id: str, steps: list[StepSpec], parallel: bool
) -> SequenceOutcome:
    """Run ``steps``; on failure compensate completed steps in reverse (see the module doc)."""
    context = _context(executor_id)
    done: list[tuple[StepSpec, StepResult]] = []
    failure = ""
    if parallel:
        results = await asyncio.gather(*(_run_step(executor_id, s.order) for s in steps))
        done = list(zip(steps, results, strict=True))
        failed = [
            (s, r)
            for s, r in done
            if not r.ok or (_filled(r) <= 0 and r.order is not None and r.order.status.is_final)
        ]
        if failed:
            failure = f"step {failed[0][0].step_id} failed: {failed[0][1].error_message or 'filled nothing'}"
    else:
        filled_by_step: dict[str, Decimal] = {}
        for index, spec in enumerate(steps):
            order = spec.order
            if spec.size_from_step:
                instrument = context.instruments[order.symbol]
                qty = instrument.round_qty(filled_by_step.get(spec.size_from_step, ZERO))
                order = replace(order, quantity=qty)
                if qty <= 0:
                    failure = f"step {spec.step_id}: step {spec.size_from_step} left nothing to follow"
                    break
            result = await _run_step(executor_id, order)
            done.append((spec, result))
            if not result.ok:
                failure = f"step {spec.step_id} failed: {result.error_type}: {result.error_message}"
                break
            filled_by_step[spec.step_id] = _filled(result)
            if _filled(result) <= 0 and result.order is not None and result.order.status.is_final:
                if index == 0:
                    aborted = tuple(StepOutcome(s.step_id, r) for s, r in done)
                    return SequenceOutcome(
                        sequence_id, SequenceStatus.ABORTED, aborted, "first step filled nothing"
                    )
                failure = f"step {spec.step_id} filled nothing"
                break
    if not failure:
        return SequenceOutcome(
            sequence_id, SequenceStatus.COMPLETED, tuple(StepOutcome(s.step_id, r) for s, r in done)
        )
    outcomes: list[StepOutcome] = []
    for spec, result in reversed(done):
        if result.order is None and result.error_type not in _NOT_SENT:
            # the send may have reached the venue and filled: unwind what the venue says
            result = await resolve_step(executor_id, spec.order, result)
        if result.order is not None and not result.order.status.is_final and result.ok:
            # a resting limit order of a failed sequence: cancel it before unwinding fills
            cancel = await submit_cancel_step(executor_id, result.order)
            result = cancel if cancel.order is not None else result
        outcomes.append(await _compensate(executor_id, spec, result))
    outcomes.reverse()
    status = (
        SequenceStatus.FAILED if any(o.compensation_error for o in outcomes) else SequenceStatus.COMPENSATED
    )
    return SequenceOutcome(sequence_id, status, tuple(outcomes), failure)


@DBOS.step()
async def submit_cancel_step(executor_id: str, order: Order) -> StepResult:
    """Cancel one order; returns its final state (unknown or already final is fine)."""
    context = _context(executor_id)
    try:
        cancelled = await context.executor.cancel(order.symbol, client_order_id=order.client_order_id)
    except errors.OpenSQTError as exc:
        return StepResult(None, type(exc).__name__, str(exc))
    return StepResult(cancelled.order or order)
