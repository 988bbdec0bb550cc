"""Typed publish/subscribe of v1 events over NATS, with trace context in the headers.

Publishers hand domain events to :meth:`EventBus.publish`; subscribers get domain events. A
message that cannot be decoded is counted in ``opensqt_nats_malformed_total`` and dropped (for
JetStream, terminated so it is not redelivered); the subscription keeps running. A handler that
raises is counted and, for JetStream, the message is redelivered later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, TracerProvider

from opensqt.config import NatsSettings
from opensqt.errors import BusUnavailable
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.codec import CodecError
from opensqt.transport.subjects import STREAMS, Delivery, EventKind, StreamSpec

__all__ = ["EventBus", "EventContext", "Handler"]

T = TypeVar("T")
log = get_logger(__name__)

#: Header carrying the JetStream de-duplication id.
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class EventContext:
    """What a handler knows about the message besides the event itself."""

    subject: str
    trace_id: str
    headers: dict[str, str] = field(default_factory=dict)
    redelivered: bool = False


Handler = Callable[[T, EventContext], Awaitable[None]]

#: How long the server keeps an ephemeral consumer with nobody listening (its default is 5 s):
#: long enough for a client to reconnect, short enough for a dead one's consumer to go.
EPHEMERAL_INACTIVE_THRESHOLD_S = 300.0


#: How long a retired subscription may keep its handler on one message before it is dropped.
RETIRE_WAIT_S = 30.0
#: Deliver policies of subscriptions that follow a state (the latest of each subject matters, not
#: every change while away): made again from each subject's latest message.
_STATE_POLICIES = (DeliverPolicy.NEW, DeliverPolicy.LAST, DeliverPolicy.LAST_PER_SUBJECT)


@dataclass(eq=False)
class _Ephemeral:
    """A JetStream subscription without a durable name, and what it takes to make it again.

    Each subscription made for it is a generation: a retired one's messages are ignored, and
    one lock keeps handlers one at a time across a retired subscription finishing its message
    and the new one. A message at or below ``last_sequence`` (handled already, or older than the
    subscription) is acknowledged and skipped, so a restart repeats nothing."""

    subject: str
    queue: str | None
    deliver_policy: DeliverPolicy | None
    stream: str | None
    dispatch: Callable[[Msg], Awaitable[str]]
    sub: Any = None  # None: lost, to be made again
    generation: int = 0
    last_sequence: int = 0  # stream sequence of the last message handled, or of the floor
    failed: set[int] = field(default_factory=set)  # handled with an error (NAK'd), not yet again
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def seen(self, sequence: int, outcome: str) -> None:
        if outcome == "failed":
            self.failed.add(sequence)
            return
        self.failed.discard(sequence)
        if outcome == "handled":
            self.last_sequence = max(self.last_sequence, sequence)

    def already_handled(self, sequence: int) -> bool:
        return sequence <= self.last_sequence and sequence not in self.failed

    def callback(self) -> Callable[[Msg], Awaitable[None]]:
        """The message handler of the next subscription (a new generation)."""
        generation = self.generation

        async def on_message(msg: Msg) -> None:
            if generation != self.generation:
                return  # retired: its consumer is gone or going, the new one delivers this
            async with self.lock:
                if generation != self.generation:
                    return
                sequence = msg.metadata.sequence.stream
                if self.already_handled(sequence):
                    with contextlib.suppress(Exception):
                        await msg.ack()
                    return
                self.seen(sequence, await self.dispatch(msg))

        return on_message

    def restart_config(self) -> tuple[ConsumerConfig, str]:
        """Where a new consumer starts, and how to say it: a state subscription at each
        subject's latest message (not every change while away, which could replay a danger
        long past; one handled already is skipped); any other at the first message not handled
        yet."""
        if self.deliver_policy in _STATE_POLICIES:
            return ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT), "latest per subject"
        if self.failed or self.last_sequence:
            start = min(self.failed) if self.failed else self.last_sequence + 1
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
            return config, f"sequence {start}"
        return ConsumerConfig(deliver_policy=self.deliver_policy or DeliverPolicy.ALL), "as first asked"


class EventBus:
    """A service's connection to NATS: typed, traced, counted."""

    def __init__(
        self,
        nc: NatsClient,
        *,
        service: str,
        metrics: ServiceMetrics,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._service = service
        self._metrics = metrics
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("opensqt.transport.bus")
        self._subscriptions: list[Any] = []
        self._durables: dict[str, Any] = {}
        self._ephemerals: list[_Ephemeral] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self._stale_consumers: list[tuple[str, str]] = []  # (stream, consumer) to delete again
        self._restoring = asyncio.Lock()
        self._restore_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        settings: NatsSettings,
        *,
        service: str,
        metrics: ServiceMetrics,
        tracer_provider: TracerProvider | None = None,
    ) -> EventBus:
        """Connect to NATS (reconnecting forever with backoff once connected)."""
        options: dict[str, Any] = {
            "servers": [settings.url],
            "name": f"opensqt-{service}",
            "connect_timeout": settings.connect_timeout_seconds,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "allow_reconnect": True,
        }
        if settings.user:
            options["user"] = settings.user
        if settings.password is not None:
            options["password"] = settings.password.get_secret_value()
        if settings.token is not None:
            options["token"] = settings.token.get_secret_value()

        async def _error(exc: Exception) -> None:
            log.warning("nats_error", error=str(exc))

        async def _disconnected() -> None:
            log.warning("nats_disconnected")

        made: list[EventBus] = []

        async def _reconnected() -> None:
            log.info("nats_reconnected")
            for bus in made:
                bus._after_reconnect()

        nc = await nats.connect(
            **options, error_cb=_error, disconnected_cb=_disconnected, reconnected_cb=_reconnected
        )
        log.info("nats_connected", url=settings.url)
        bus = cls(nc, service=service, metrics=metrics, tracer_provider=tracer_provider)
        made.append(bus)
        return bus

    @property
    def client(self) -> NatsClient:
        return self._nc

    @property
    def is_connected(self) -> bool:
        return bool(self._nc.is_connected)

    async def ensure_streams(self, streams: tuple[StreamSpec, ...] = STREAMS, *, replicas: int = 1) -> None:
        """Create the JetStream streams, or update them to this configuration. Idempotent."""
        for spec in streams:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=float(spec.max_age_seconds),
                duplicate_window=float(spec.duplicate_window_seconds),
                max_msgs_per_subject=spec.max_msgs_per_subject,
                num_replicas=replicas,
            )
            try:
                await self._js.add_stream(config)
            except BadRequestError:
                await self._js.update_stream(config)
            log.debug("stream_ready", stream=spec.name)

    async def publish(self, kind: EventKind[T], subject: str, event: T, *, msg_id: str | None = None) -> None:
        """Publish ``event`` on ``subject`` (a concrete subject of ``kind``).

        For JetStream kinds, ``msg_id`` is the de-duplication key (a repeat within the stream's
        duplicate window is stored once) and the call returns after the server stored it.
        """
        if not kind.matches(subject):
            raise ValueError(f"subject {subject!r} is not a {kind.name} subject ({kind.template})")
        payload = kind.encode(event)
        with self._tracer.start_as_current_span(
            f"publish {kind.name}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject},
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            try:
                if kind.delivery is Delivery.JETSTREAM:
                    if msg_id:
                        headers[MSG_ID_HEADER] = msg_id
                    await self._js.publish(subject, payload, headers=headers)
                else:
                    await self._nc.publish(subject, payload, headers=headers)
            except (nats.errors.Error, TimeoutError) as exc:
                self._metrics.nats_publish_failures.labels(kind.name).inc()
                raise BusUnavailable(
                    f"NATS did not take {kind.name} on {subject}: {type(exc).__name__}: {exc}"
                ) from exc
        self._metrics.nats_published.labels(kind.name).inc()

    async def subscribe(
        self,
        kind: EventKind[T],
        subject: str,
        handler: Handler[T],
        *,
        durable: str | None = None,
        queue: str | None = None,
        deliver_policy: DeliverPolicy | None = None,
    ) -> None:
        """Deliver every event of ``kind`` on ``subject`` (a pattern allowed) to ``handler``.

        Handlers of one subscription run one at a time, in order. For JetStream kinds a
        ``durable`` name makes the consumer survive restarts (no lost events).
        """

        async def _dispatch(msg: Msg) -> str:
            return await self._dispatch(kind, msg, handler)

        async def _on_message(msg: Msg) -> None:
            await _dispatch(msg)

        sub: Any
        if kind.delivery is Delivery.JETSTREAM and not durable:
            # The server deletes an ephemeral consumer nobody listens to: after a long enough
            # outage the subscription would stay silent. It is made again at every reconnect
            # (and whenever its consumer is found gone): see _Ephemeral.restart_config.
            ephemeral = _Ephemeral(subject, queue, deliver_policy, kind.stream, _dispatch)
            if deliver_policy is DeliverPolicy.NEW and kind.stream:
                # what the stream held before this subscription is never delivered, a restart's
                # latest-per-subject included
                ephemeral.last_sequence = (await self._js.stream_info(kind.stream)).state.last_seq
            config = ConsumerConfig(deliver_policy=deliver_policy or DeliverPolicy.ALL)
            sub = ephemeral.sub = await self._subscribe_ephemeral(ephemeral, config)
            self._ephemerals.append(ephemeral)
        elif kind.delivery is Delivery.JETSTREAM:
            sub = await self._js.subscribe(
                subject,
                queue=queue,
                cb=_on_message,
                durable=durable,
                stream=kind.stream,
                manual_ack=True,
                deliver_policy=deliver_policy,
            )
            assert durable is not None
            self._durables[durable] = sub
            self._metrics.nats_consumer_lag.labels(durable).set(0)
        else:
            sub = await self._nc.subscribe(subject, queue=queue or "", cb=_on_message)
            # Core NATS delivers only to subscriptions the server already holds: a round trip
            # makes sure it has this one before the caller relies on it (a publish from another
            # connection right after this returns would otherwise race the SUB).
            await self._nc.flush()
        self._subscriptions.append(sub)

    async def _subscribe_ephemeral(self, ephemeral: _Ephemeral, config: ConsumerConfig) -> Any:
        return await self._js.subscribe(
            ephemeral.subject,
            queue=ephemeral.queue,
            cb=ephemeral.callback(),
            stream=ephemeral.stream,
            config=config,
            manual_ack=True,
            inactive_threshold=EPHEMERAL_INACTIVE_THRESHOLD_S,
        )

    def _after_reconnect(self) -> None:
        if self._ephemerals and (self._restore_task is None or self._restore_task.done()):
            self._restore_task = asyncio.ensure_future(self._restore_all())

    async def _restore_all(self) -> None:
        await self.restore_ephemerals(only_lost=False)

    async def restore_ephemerals(self, *, only_lost: bool = True) -> int:
        """Make the ephemeral subscriptions again (``only_lost``: those whose consumer the server
        no longer has, or whose last restore failed); see :meth:`_Ephemeral.restart_config` for
        where each starts. The old subscription is retired at once (its further messages are
        ignored) but finishes the message its handler is on, then is unsubscribed and its
        consumer deleted. Returns how many were made again; one that fails is tried again at
        the next check (2 s later) or reconnect."""
        restored = 0
        async with self._restoring:
            await self._delete_stale_consumers()
            for ephemeral in self._ephemerals:
                old = ephemeral.sub
                try:
                    if only_lost and old is not None:
                        try:
                            await old.consumer_info()
                            continue
                        except NotFoundError:
                            pass
                    if old is not None:
                        ephemeral.sub = None  # lost until made again, whatever happens below
                        ephemeral.generation += 1
                        self._subscriptions = [s for s in self._subscriptions if s is not old]
                        task = asyncio.ensure_future(self._retire(old, ephemeral))
                        self._retiring.add(task)
                        task.add_done_callback(self._retiring.discard)
                    config, start = ephemeral.restart_config()
                    ephemeral.sub = await self._subscribe_ephemeral(ephemeral, config)
                except Exception as exc:  # NATS away again: the next check or reconnect retries
                    log.warning("nats_consumer_not_restored", subject=ephemeral.subject, error=str(exc))
                    continue
                self._subscriptions.append(ephemeral.sub)
                restored += 1
                self._metrics.nats_consumers_restored.inc()
                log.warning("nats_consumer_restored", subject=ephemeral.subject, start=start, lost=only_lost)
        return restored

    async def _retire(self, sub: Any, ephemeral: _Ephemeral) -> None:
        """Once the retired subscription's handler has finished its message (at most
        RETIRE_WAIT_S), unsubscribe it; its consumer is deleted at the next check."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ephemeral.lock.acquire(), RETIRE_WAIT_S)
            ephemeral.lock.release()
        with contextlib.suppress(Exception):  # closed already, or NATS away
            await sub.unsubscribe()
        name = getattr(sub, "_consumer", None)
        # a queue group's consumer is named after the queue and shared: never deleted here
        if ephemeral.stream and name and not ephemeral.queue:
            self._stale_consumers.append((ephemeral.stream, name))  # deleted by the next check

    async def _delete_stale_consumers(self) -> None:
        left: list[tuple[str, str]] = []
        for stream, name in self._stale_consumers:
            try:
                await self._js.delete_consumer(stream, name)
            except NotFoundError:
                pass  # gone already (the reason for the restore)
            except Exception:  # NATS away: the next check deletes it
                left.append((stream, name))
        self._stale_consumers = left

    async def _dispatch(self, kind: EventKind[T], msg: Msg, handler: Handler[T]) -> str:
        """Decode and handle one message: ``"handled"`` (acknowledged), ``"dropped"`` (malformed:
        counted, never delivered again) or ``"failed"`` (the handler raised: delivered again)."""
        headers = dict(msg.headers or {})
        parent = propagate.extract(headers)
        jetstream = kind.delivery is Delivery.JETSTREAM
        with self._tracer.start_as_current_span(
            f"receive {kind.name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject},
        ) as span:
            try:
                event = kind.decode(msg.data)
            except (DecodeError, CodecError) as exc:
                reason = "codec" if isinstance(exc, CodecError) else "protobuf"
                self._metrics.nats_malformed.labels(kind.name, reason).inc()
                log.warning("nats_message_malformed", kind=kind.name, subject=msg.subject, error=str(exc))
                if jetstream:
                    await msg.term()
                return "dropped"
            self._metrics.nats_received.labels(kind.name).inc()
            context = EventContext(
                subject=msg.subject,
                trace_id=format(span.get_span_context().trace_id, "032x"),
                headers=headers,
                redelivered=bool(jetstream and msg.metadata.num_delivered > 1),
            )
            try:
                await handler(event, context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._metrics.nats_handler_errors.labels(kind.name).inc()
                span.record_exception(exc)
                log.exception("nats_handler_failed", kind=kind.name, subject=msg.subject)
                if jetstream:
                    await msg.nak(delay=1.0)
                return "failed"
            if jetstream:
                await msg.ack()
            return "handled"

    async def record_consumer_lag(self) -> None:
        """Set ``opensqt_nats_consumer_pending`` for every durable consumer of this service."""
        for name, sub in self._durables.items():
            try:
                info = await sub.consumer_info()
            except Exception as exc:  # a lag reading must never disturb the service
                log.debug("consumer_info_failed", consumer=name, error=str(exc))
                continue
            self._metrics.nats_consumer_lag.labels(name).set(info.num_pending + info.num_ack_pending)

    async def watch_consumers(self, interval_seconds: float = 2.0, check_every: int = 5) -> None:
        """Every ``interval_seconds`` until cancelled: record the durable consumers' lag; and
        every ``check_every`` times that (10 s), make again any ephemeral subscription whose
        consumer the server no longer has (one JetStream API request each: a reconnect, the
        common case, restores them at once anyway)."""
        turn = 0
        while True:
            await self.record_consumer_lag()
            lost = any(ephemeral.sub is None for ephemeral in self._ephemerals)
            if self._ephemerals and self._nc.is_connected and (lost or turn % check_every == 0):
                await self.restore_ephemerals()
            turn += 1
            await asyncio.sleep(interval_seconds)

    async def close(self) -> None:
        """Unsubscribe, then drain and close the connection."""
        for task in [self._restore_task, *self._retiring]:
            if task is not None and not task.done():
                task.cancel()
        for sub in self._subscriptions:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # connection already closed
                log.debug("nats_unsubscribe_failed", error=str(exc))
        self._subscriptions.clear()
        if not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout=5)
            except (TimeoutError, Exception) as exc:
                log.warning("nats_drain_failed", error=str(exc))
                await self._nc.close()
