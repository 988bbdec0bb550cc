"""The plan journal: which steps of the running plan were sent, so a restart can resolve them.

The live agent drives a plan one MARKET order at a time. Before each step's order is sent it
records the step here; when the plan's :class:`~opensqt.arbitrage.plans.Done` is taken the record
is cleared. A record found at start therefore names every order a killed process may have left
behind (sent, maybe filled, answer never received), and the agent resolves each one by its client
order id before it trusts its legs.

Two stores implement :class:`PlanJournal`: :class:`InMemoryPlanJournal` (tests) and
:class:`RedisPlanJournal` (services).

Stored format. The Redis hash ``ARBITRAGE_PLAN`` (``opensqt:v1:strategy:plan:{agent}``) holds
``workflow`` (the plan's workflow id), ``sequence`` (its sequence id, decimal) and one field per
step sent, ``step:<index>`` (index zero-padded to 4 digits), whose value is a UTF-8 JSON object
with the :class:`~opensqt.arbitrage.plans.OrderStep` field names (``quantity`` and
``reference_price`` as decimal strings, enums by value) plus ``index``. A step of another
workflow than the stored one replaces the whole record in the same Lua call, so a record never
mixes two plans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from opensqt.arbitrage.plans import OrderStep, StepKind
from opensqt.model.enums import MarketType, Side
from opensqt.model.money import ZERO, parse_decimal
from opensqt.transport.redis_keys import ARBITRAGE_PLAN
from opensqt.transport.versioned import json_count, json_text

if TYPE_CHECKING:
    from opensqt.transport.redis_store import RedisStore

__all__ = [
    "InMemoryPlanJournal",
    "PlanJournal",
    "PlanRecord",
    "PlanRecordError",
    "RecordedStep",
    "RedisPlanJournal",
    "decode_recorded_step",
    "encode_recorded_step",
]


class PlanRecordError(ValueError):
    """A stored plan record cannot be read back."""


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """One step as recorded before its order was sent.

    ``reference_price`` is the plan's price for the step's leg (used for a fill that reports no
    average price).
    """

    index: int
    step: OrderStep
    reference_price: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """The running plan as recorded: its ids and the steps sent so far, in order."""

    workflow_id: str
    sequence_id: int
    steps: tuple[RecordedStep, ...]


class PlanJournal(Protocol):
    """Where the running plan of one agent is recorded (at most one plan per agent)."""

    agent: str

    async def record_step(self, workflow_id: str, sequence_id: int, recorded: RecordedStep) -> None:
        """Record one step before its order is sent (a step of another plan replaces the record)."""
        ...

    async def load(self) -> PlanRecord | None:
        """The recorded plan, or ``None`` when no plan was running."""
        ...

    async def clear(self) -> None:
        """Forget the recorded plan (its Done was taken, or its steps were resolved)."""
        ...


class InMemoryPlanJournal:
    """A plan record in memory, for tests. Its methods never suspend, so each call is atomic."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._record: PlanRecord | None = None

    async def record_step(self, workflow_id: str, sequence_id: int, recorded: RecordedStep) -> None:
        current = self._record
        kept = current.steps if current is not None and current.workflow_id == workflow_id else ()
        steps = sorted((*(s for s in kept if s.index != recorded.index), recorded), key=lambda s: s.index)
        self._record = PlanRecord(workflow_id, sequence_id, tuple(steps))

    async def load(self) -> PlanRecord | None:
        return self._record

    async def clear(self) -> None:
        self._record = None


# KEYS[1]: the plan hash. ARGV: workflow id, sequence id, step field, step document.
# A step of another workflow first drops the old record: one plan per record, atomically.
RECORD_STEP_LUA = """
if redis.call('HGET', KEYS[1], 'workflow') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'workflow', ARGV[1], 'sequence', ARGV[2], ARGV[3], ARGV[4])
return 1
"""

_STEP_PREFIX = "step:"


class RedisPlanJournal:
    """The plan record in the Redis hash ``ARBITRAGE_PLAN`` (owner: strategy); each write is one
    atomic command (a Lua script to record, ``DEL`` to clear)."""

    def __init__(self, redis: RedisStore, *, agent: str) -> None:
        self.agent = agent
        self._client = redis.client
        self._key = redis.writable(ARBITRAGE_PLAN, agent=agent)
        self._record = redis.client.register_script(RECORD_STEP_LUA)

    async def record_step(self, workflow_id: str, sequence_id: int, recorded: RecordedStep) -> None:
        field = f"{_STEP_PREFIX}{recorded.index:04d}"
        await self._record(
            keys=[self._key],
            args=[workflow_id, str(sequence_id), field, encode_recorded_step(recorded)],
        )

    async def load(self) -> PlanRecord | None:
        raw = await self._client.hgetall(self._key)
        if not raw:
            return None
        fields = {_text(name): _text(value) for name, value in raw.items()}
        try:
            workflow_id = fields["workflow"]
            sequence_id = int(fields["sequence"])
        except (KeyError, ValueError) as exc:
            raise PlanRecordError(f"plan record {self._key} is unreadable: {exc}") from exc
        steps = sorted(
            (decode_recorded_step(value) for name, value in fields.items() if name.startswith(_STEP_PREFIX)),
            key=lambda recorded: recorded.index,
        )
        return PlanRecord(workflow_id, sequence_id, tuple(steps))

    async def clear(self) -> None:
        await self._client.delete(self._key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def encode_recorded_step(recorded: RecordedStep) -> bytes:
    """A recorded step as its stored JSON document."""
    step = recorded.step
    document = {
        "index": recorded.index,
        "kind": step.kind.value,
        "attempt": step.attempt,
        "client_order_id": step.client_order_id,
        "venue": step.venue,
        "symbol": step.symbol,
        "market_type": step.market_type.value,
        "side": step.side.value,
        "quantity": format(step.quantity, "f"),
        "reduce_only": step.reduce_only,
        "reference_price": format(recorded.reference_price, "f"),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_recorded_step(raw: bytes | str) -> RecordedStep:
    """A stored step back as a :class:`RecordedStep`.

    Raises:
        PlanRecordError: the document is not a well-formed step.
    """
    try:
        document: dict[str, Any] = json.loads(raw)
        reduce_only = document["reduce_only"]
        if not isinstance(reduce_only, bool):
            raise TypeError(f"reduce_only must be a boolean, got {reduce_only!r}")
        step = OrderStep(
            kind=StepKind(document["kind"]),
            attempt=json_count(document, "attempt"),
            client_order_id=json_text(document, "client_order_id"),
            venue=json_text(document, "venue"),
            symbol=json_text(document, "symbol"),
            market_type=MarketType(document["market_type"]),
            side=Side(document["side"]),
            quantity=parse_decimal(document["quantity"], field="quantity", positive=True),
            reduce_only=reduce_only,
        )
        price = parse_decimal(document["reference_price"], field="reference_price", non_negative=True)
        return RecordedStep(json_count(document, "index"), step, price)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanRecordError(f"stored plan step {raw!r} is unreadable: {exc}") from exc
