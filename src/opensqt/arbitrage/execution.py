"""The pure rules of running an arbitrage plan against executors (no I/O).

The live agent (:mod:`opensqt.engine.arbitrage_live`) sends each :class:`OrderStep` of a plan as
one MARKET order and feeds what the venue reports back to the plan. What that takes, kept here so
it is testable without servers:

- :func:`order_for_step`: the order to send. Exit and compensation orders only ever shrink
  exposure, so they are sent reduce-only: the executor's REDUCING gate lets them through (the
  spot adapter sends no reduce-only flag to a spot venue; a margin leg repays its loan).
- :func:`step_result`: a venue order as the plan's :class:`StepResult`.
- :func:`fill_of_own_order`: the fill a final order update of this agent carries, for the leg
  manager, de-duplicated by client order id (the plan's result and the order stream report the
  same order; whichever arrives first counts).
- :func:`agent_of` and :func:`retry_delay_s`.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_UP, Decimal

from opensqt.arbitrage.legs import Fill
from opensqt.arbitrage.plans import OrderStep, StepKind, StepResult
from opensqt.model.enums import Side
from opensqt.model.money import ZERO
from opensqt.model.resources import Order

__all__ = [
    "REDUCING_STEPS",
    "agent_of",
    "fill_of_own_order",
    "order_for_step",
    "retry_delay_s",
    "step_result",
]

REDUCING_STEPS = frozenset({StepKind.EXIT_PERP, StepKind.EXIT_SPOT, StepKind.COMPENSATE_SPOT})
"""Steps that only shrink exposure (sent reduce-only)."""


def order_for_step(step: OrderStep, account: str = "") -> Order:
    """The MARKET order that carries ``step`` (its client order id, side and quantity)."""
    return replace(
        step.to_order(), account=account, reduce_only=step.reduce_only or step.kind in REDUCING_STEPS
    )


def step_result(
    step: OrderStep, order: Order | None, error: str = "", *, buy_fee: Decimal = ZERO
) -> StepResult:
    """What ``step`` achieved, from the venue's order (``None``: nothing was placed).

    The executed quantity is the venue's, capped at the step's quantity (a venue never fills
    more than ordered; the cap keeps a malformed report from breaking the plan's replay), less
    the commission a buy paid in the base asset: what the leg holds (see :func:`received_qty`).
    """
    if order is None:
        return StepResult(step.client_order_id, ZERO, error=error or "not placed")
    filled = min(max(order.filled_qty, ZERO), step.quantity)
    price = order.average_price if order.average_price > 0 else ZERO
    note = error
    if not note and filled < step.quantity and order.status.is_final:
        note = f"{order.status.value} with {filled} of {step.quantity} filled"
    received = received_qty(replace(order, filled_qty=filled), buy_fee)
    return StepResult(step.client_order_id, received, price, note, order.updated_ms or order.created_ms)


COMMISSION_QUANTUM = Decimal("0.00000001")
"""Binance keeps spot commissions (and balances) to 8 decimals."""


def received_qty(order: Order, buy_fee: Decimal = ZERO) -> Decimal:
    """The base asset ``order`` brought: its executed quantity, less the commission a buy paid in
    the base asset. ``buy_fee``: the rate a buy pays in the base asset (0: it pays elsewhere);
    when the venue did not report the order's commission (a REST resync, a failed read of its
    trades, a fill in several trades seen on the stream) it is taken at that rate, rounded up to
    8 decimals, so the leg never counts more than the account holds."""
    if order.side is not Side.BUY:
        return order.filled_qty
    commission = order.base_commission
    if commission is None:
        commission = (order.filled_qty * buy_fee).quantize(COMMISSION_QUANTUM, rounding=ROUND_UP)
    return max(ZERO, order.filled_qty - commission)


def agent_of(client_order_id: str) -> str:
    """The agent part of an arbitrage client order id ``<agent>-<sequence>-<step><attempt>``
    (``""`` when the id does not have that shape). Neither the sequence nor the step contains a
    dash, so splitting from the right is exact even for agents with dashes in their name."""
    parts = client_order_id.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return ""
    step = parts[2]
    if len(step) < 3 or step[:2] not in {kind.value for kind in StepKind}:
        return ""
    return parts[0]


def fill_of_own_order(
    order: Order, agent: str, leg_keys: frozenset[str], *, buy_fee: Decimal = ZERO
) -> Fill | None:
    """The fill a *final* order of ``agent`` on one of its legs made, else ``None``.

    A working order is skipped: its final report carries the whole executed quantity, and the
    leg manager counts each order once (by client order id).
    """
    if agent_of(order.client_order_id) != agent or f"{order.venue}:{order.symbol}" not in leg_keys:
        return None
    if not order.status.is_final or order.filled_qty <= 0:
        return None
    received = received_qty(order, buy_fee)
    if received <= 0:
        return None
    price = order.average_price if order.average_price > 0 else order.price
    return Fill(
        venue=order.venue,
        symbol=order.symbol,
        side=order.side,
        quantity=received,
        price=price if price > 0 else ZERO,
        time_ms=order.updated_ms,
    )


def retry_delay_s(attempt: int, *, base: float = 0.5, cap: float = 10.0) -> float:
    """Seconds to wait before attempt ``attempt`` of a retried step (0 for the first)."""
    if attempt <= 0:
        return 0.0
    return min(cap, base * float(2 ** (attempt - 1)))
