"""Every NATS subject and JetStream stream of OpenSQT, with its message type and owner.

This is the only module that spells a subject. Subject tokens (venue, account, symbol) are
validated: NATS uses ``.`` as its separator and ``*``/``>`` as wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from opensqt.model import (
    Candle,
    FundingUpdate,
    OrderUpdate,
    PositionUpdate,
    PriceChange,
    RiskAlert,
    TradingState,
)
from opensqt.transport import codec
from opensqt.v1 import events_pb2, resources_pb2

__all__ = [
    "AGENT_ALERT",
    "CANDLE",
    "EVENT_KINDS",
    "EXECUTION",
    "FUNDING",
    "ORDER",
    "POSITION",
    "PRICE",
    "RISK_ALERT",
    "RISK_STATE",
    "STREAMS",
    "Delivery",
    "EventKind",
    "StreamSpec",
    "SubjectError",
]

T = TypeVar("T")

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREFIX = "opensqt.v1"


class SubjectError(ValueError):
    """A subject token is not usable (empty, too long, or contains ``.``, ``*``, ``>``, spaces)."""


class Delivery(Enum):
    """CORE: at most once, latest wins. JETSTREAM: stored, acknowledged, redelivered."""

    CORE = "core"
    JETSTREAM = "jetstream"


def _token(name: str, value: str) -> str:
    if not _TOKEN_RE.match(value):
        raise SubjectError(f"{name} {value!r} is not a valid subject token ([A-Za-z0-9_-], 1-64 chars)")
    return value


@dataclass(frozen=True, slots=True)
class EventKind(Generic[T]):
    """One kind of event: its subject template, protobuf type, codec, delivery and owner.

    ``template`` names tokens in braces, e.g. ``opensqt.v1.price.{venue}.{symbol}``.
    ``owner`` is the one service that publishes it.
    """

    name: str
    template: str
    proto: type[Message]
    encode_proto: Callable[[T], Message]
    decode_proto: Callable[[Any], T]
    delivery: Delivery
    owner: str
    stream: str | None = None

    def subject(self, **tokens: str) -> str:
        """The concrete subject, e.g. ``PRICE.subject(venue="paper", symbol="BTCUSDT")``."""
        expected = re.findall(r"{(\w+)}", self.template)
        if set(tokens) != set(expected):
            raise SubjectError(f"{self.name} subject needs tokens {expected}, got {sorted(tokens)}")
        return self.template.format(**{k: _token(k, v) for k, v in tokens.items()})

    def pattern(self, **tokens: str) -> str:
        """A subscription pattern; tokens left out become ``*``."""
        expected = re.findall(r"{(\w+)}", self.template)
        unknown = set(tokens) - set(expected)
        if unknown:
            raise SubjectError(f"{self.name} subject has no tokens {sorted(unknown)}")
        return self.template.format(**{k: _token(k, tokens[k]) if k in tokens else "*" for k in expected})

    def matches(self, subject: str) -> bool:
        """True when ``subject`` is a concrete subject of this kind."""
        parts = subject.split(".")
        template = self.template.split(".")
        if len(parts) != len(template):
            return False
        return all(
            _TOKEN_RE.match(p) is not None if t.startswith("{") else p == t
            for p, t in zip(parts, template, strict=True)
        )

    def encode(self, event: T) -> bytes:
        return self.encode_proto(event).SerializeToString()

    def decode(self, data: bytes) -> T:
        """Parse and convert. Raises ``DecodeError`` or :class:`~opensqt.transport.codec.CodecError`."""
        message = self.proto.FromString(data)
        return self.decode_proto(message)


PRICE: EventKind[PriceChange] = EventKind(
    "price",
    PREFIX + ".price.{venue}.{symbol}",
    events_pb2.PriceChange,
    codec.price_change_to_proto,
    codec.price_change_from_proto,
    Delivery.CORE,
    owner="monitor",
)
CANDLE: EventKind[Candle] = EventKind(
    "candle",
    PREFIX + ".candle.{venue}.{symbol}.{interval}",
    resources_pb2.Candle,
    codec.candle_to_proto,
    codec.candle_from_proto,
    Delivery.CORE,
    owner="monitor",
)
FUNDING: EventKind[FundingUpdate] = EventKind(
    "funding",
    PREFIX + ".funding.{venue}.{symbol}",
    events_pb2.FundingUpdate,
    codec.funding_update_to_proto,
    codec.funding_update_from_proto,
    Delivery.JETSTREAM,
    owner="monitor",
    stream="OPENSQT_FUNDING",
)
ORDER: EventKind[OrderUpdate] = EventKind(
    "order",
    PREFIX + ".order.{account}.{symbol}",
    events_pb2.OrderUpdate,
    codec.order_update_to_proto,
    codec.order_update_from_proto,
    Delivery.JETSTREAM,
    owner="monitor",
    stream="OPENSQT_ORDERS",
)
#: What the executor did (accepted / rejected / cancelled). Fills are authoritative on ORDER.
EXECUTION: EventKind[OrderUpdate] = EventKind(
    "execution",
    PREFIX + ".execution.{account}.{symbol}",
    events_pb2.OrderUpdate,
    codec.order_update_to_proto,
    codec.order_update_from_proto,
    Delivery.JETSTREAM,
    owner="executor",
    stream="OPENSQT_ORDERS",
)
POSITION: EventKind[PositionUpdate] = EventKind(
    "position",
    PREFIX + ".position.{account}.{symbol}",
    events_pb2.PositionUpdate,
    codec.position_update_to_proto,
    codec.position_update_from_proto,
    Delivery.JETSTREAM,
    owner="monitor",
    stream="OPENSQT_POSITIONS",
)
RISK_STATE: EventKind[TradingState] = EventKind(
    "risk_state",
    PREFIX + ".risk.state",
    events_pb2.TradingState,
    codec.trading_state_to_proto,
    codec.trading_state_from_proto,
    Delivery.JETSTREAM,
    owner="risk",
    stream="OPENSQT_RISK",
)
RISK_ALERT: EventKind[RiskAlert] = EventKind(
    "risk_alert",
    PREFIX + ".risk.alert",
    events_pb2.RiskAlert,
    codec.risk_alert_to_proto,
    codec.risk_alert_from_proto,
    Delivery.JETSTREAM,
    owner="risk",
    stream="OPENSQT_RISK",
)

AGENT_ALERT: EventKind[RiskAlert] = EventKind(
    "agent_alert",
    PREFIX + ".strategy.alert.{agent}",
    events_pb2.RiskAlert,
    codec.risk_alert_to_proto,
    codec.risk_alert_from_proto,
    Delivery.JETSTREAM,
    owner="strategy",
    stream="OPENSQT_STRATEGY",
)
"""An agent's own alert (it turned reduce-only: a position drift, a liquidation exit, a
reconciliation that failed). Risk keeps it with its own alerts and re-publishes it on RISK_ALERT."""

EVENT_KINDS: tuple[EventKind[Any], ...] = (
    PRICE,
    CANDLE,
    FUNDING,
    ORDER,
    EXECUTION,
    POSITION,
    RISK_STATE,
    RISK_ALERT,
    AGENT_ALERT,
)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream. ``max_msgs_per_subject`` 1 keeps the last value per subject."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: int
    duplicate_window_seconds: int = 120
    max_msgs_per_subject: int = -1


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("OPENSQT_ORDERS", (PREFIX + ".order.>", PREFIX + ".execution.>"), max_age_seconds=7 * 86400),
    StreamSpec("OPENSQT_POSITIONS", (PREFIX + ".position.>",), max_age_seconds=7 * 86400),
    StreamSpec(
        "OPENSQT_FUNDING", (PREFIX + ".funding.>",), max_age_seconds=7 * 86400, max_msgs_per_subject=1
    ),
    StreamSpec(
        "OPENSQT_RISK",
        (PREFIX + ".risk.>",),
        max_age_seconds=30 * 86400,
        max_msgs_per_subject=10_000,
    ),
    StreamSpec("OPENSQT_STRATEGY", (PREFIX + ".strategy.alert.>",), max_age_seconds=30 * 86400),
)
