"""Structured logs (structlog), Prometheus metrics and OpenTelemetry traces.

Logging is configured once per process by :func:`configure_logging`. Metrics and tracing are
objects owned by each service (:class:`ServiceMetrics`, a ``TracerProvider``), so several
services can run in one process (as the integration tests do) without sharing state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from opensqt import __version__
from opensqt.heap import GcPauses

__all__ = [
    "EXPORT_BATCH",
    "ServiceMetrics",
    "configure_logging",
    "configure_tracing",
    "export_processor",
    "get_logger",
    "watch_loop_lag",
]


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def configure_logging(log_format: str = "console", level: str = "INFO") -> None:
    """Configure structlog and bridge stdlib logging into it. Idempotent."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("opensqt")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "opensqt"]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("nats", "asyncio", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


#: Spans leave in batches of at most 64. The SDK's 512 are encoded in one go in the exporter's
#: thread while it holds the GIL: at 100 spans/s (a service on every tick of a busy market) that
#: stalled the service's event loop for 5-17 ms, several times per export; 128 still did, 64 did
#: not (one stall over 5 ms in 30 s, as with no export). A batch leaves once it is full, or after
#: the SDK's schedule delay (5 s). OTEL_BSP_MAX_EXPORT_BATCH_SIZE, when set, wins.
EXPORT_BATCH = 64


def export_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """A batch processor for ``exporter`` with this project's batch size (EXPORT_BATCH)."""
    batch = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else EXPORT_BATCH
    queue = os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE", "").strip()
    if batch is not None and queue.isdigit() and 0 < int(queue) < batch:
        batch = int(queue)  # the SDK refuses a batch larger than its queue
    return BatchSpanProcessor(exporter, max_export_batch_size=batch)


def configure_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    extra_processors: Sequence[SpanProcessor] = (),
    sample_ratio: float = 1.0,
) -> TracerProvider:
    """A tracer provider for one service: OTLP/gRPC export when an endpoint is set.

    ``sample_ratio``: the share of traces recorded where they start (a price tick at the
    monitor, an RPC from outside); every other service follows the caller's decision, so a
    trace is whole or absent. ``extra_processors`` lets tests attach an in-memory exporter.
    """
    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within [0, 1], got {sample_ratio}")
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"opensqt-{service_name}", "service.version": __version__}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(export_processor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    return provider


_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The Prometheus metrics of one service, in its own registry.

    Label values are bounded: methods and subject kinds, never symbols of unbounded sets or ids.
    """

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Gauge("opensqt_build_info", "Build information", ["service", "version"], registry=r)
        self.build_info.labels(service, __version__).set(1)
        self.grpc_requests = Counter(
            "opensqt_grpc_requests_total", "gRPC requests served", ["method", "code"], registry=r
        )
        self.grpc_latency = Histogram(
            "opensqt_grpc_request_seconds",
            "gRPC request latency",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.grpc_denied = Counter(
            "opensqt_grpc_permission_denied_total",
            "gRPC calls refused by the authorization table",
            ["method", "identity"],
            registry=r,
        )
        self.nats_published = Counter(
            "opensqt_nats_published_total", "Events published on NATS", ["kind"], registry=r
        )
        self.nats_publish_failures = Counter(
            "opensqt_nats_publish_failures_total",
            "Events NATS did not take (disconnected, no JetStream acknowledgement in time)",
            ["kind"],
            registry=r,
        )
        self.nats_consumers_restored = Counter(
            "opensqt_nats_consumers_restored_total",
            "Ephemeral JetStream subscriptions made again (after a reconnect, or their consumer gone)",
            registry=r,
        )
        self.nats_received = Counter(
            "opensqt_nats_received_total", "Events received and decoded from NATS", ["kind"], registry=r
        )
        self.nats_malformed = Counter(
            "opensqt_nats_malformed_total",
            "NATS messages dropped because they could not be decoded",
            ["kind", "reason"],
            registry=r,
        )
        self.nats_handler_errors = Counter(
            "opensqt_nats_handler_errors_total", "Event handlers that raised", ["kind"], registry=r
        )
        self.orders = Counter(
            "opensqt_orders_total",
            "Orders by action (place, cancel) and result (accepted, rejected, error)",
            ["action", "result"],
            registry=r,
        )
        self.order_rejects = Counter(
            "opensqt_order_rejects_total", "Orders refused, by reason (error class)", ["reason"], registry=r
        )
        self.order_latency = Histogram(
            "opensqt_order_latency_seconds",
            "Time from an order request to the venue's answer",
            ["action"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pauses = GcPauses(r)
        self.loop_lag = Histogram(
            "opensqt_event_loop_lag_seconds",
            "How late the event loop ran a timer, sampled at a fixed interval: time this process's "
            "loop could not run anything (CPU-bound code, the GIL held by a thread, no free core)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.journal_failures = Counter(
            "opensqt_order_journal_failures_total",
            "Orders sent and answered that the executor could not record in its DBOS journal",
            registry=r,
        )
        self.undecided_waits = Counter(
            "opensqt_order_undecided_waits_total",
            "Lookups that found no order after an ambiguous send and waited for the venue to "
            "decide it before any resend",
            registry=r,
        )
        self.rate_limit_wait = Histogram(
            "opensqt_rate_limit_wait_seconds",
            "Time an order waited for the shared rate budget",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fills = Counter("opensqt_fills_total", "Fills seen, by side", ["side"], registry=r)
        self.nats_consumer_lag = Gauge(
            "opensqt_nats_consumer_pending",
            "Messages a JetStream consumer has yet to process",
            ["consumer"],
            registry=r,
        )
        self.trading_state = Gauge(
            "opensqt_trading_state",
            "Trading state this service follows (1 for the current one)",
            ["state"],
            registry=r,
        )
        self.agent_evaluations = Counter(
            "opensqt_agent_evaluations_total",
            "Strategy decisions an agent ran (conflated prices: fewer than the ticks received)",
            ["agent"],
            registry=r,
        )
        self.position_drift = Gauge(
            "opensqt_position_drift",
            "A grid's drift at its latest position check: the venue's position minus the slots', "
            "in base units",
            ["agent"],
            registry=r,
        )
        self.position_checks = Counter(
            "opensqt_position_checks_total",
            "A grid's position checks while it trades, by outcome (match, unsettled, unconfirmed, "
            "drift, acknowledged, alert, unreadable, error)",
            ["agent", "outcome"],
            registry=r,
        )
        self.liquidation_exits = Counter(
            "opensqt_liquidation_exits_total",
            "Emergency exits a market maker ran because its position came closer to the "
            "liquidation price than its liquidation_threshold",
            ["agent"],
            registry=r,
        )
        self.arbitrage_plans = Counter(
            "opensqt_arbitrage_plans_total",
            "Plans an arbitrage bot ran, by outcome (ENTERED, ABORTED, COMPENSATED, EXITED, PARTIAL, FAILED)",
            ["agent", "outcome"],
            registry=r,
        )
        self.arbitrage_leg_size = Gauge(
            "opensqt_arbitrage_leg_size",
            "An arbitrage bot's recorded leg size in base units, signed (leg: spot or perp); "
            "spot + perp is its unhedged exposure",
            ["agent", "leg"],
            registry=r,
        )
        self.state_propagation = Histogram(
            "opensqt_trading_state_propagation_seconds",
            "Time from a trading-state decision to every live executor's acknowledgement",
            ["state"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.crash_candles = Gauge(
            "opensqt_risk_crash_candles",
            "Candles the crash detector has seen, by outcome (evaluated, panics, triggers, "
            "recoveries, stale_ignored, unmonitored_ignored, open_ignored)",
            ["outcome"],
            registry=r,
        )
        self._http: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: pick a free port). Returns the bound port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http, self._http_thread = server, thread
        return int(server.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


async def watch_loop_lag(lag: Histogram, every_s: float) -> None:
    """Sample the running loop's lateness every ``every_s``: a timer set for ``every_s`` from
    now that fires later than that records the difference. A stall shorter than the interval is
    seen with the probability of a sample falling inside it, so the counts are a sample, the
    size of long stalls is exact."""
    if every_s <= 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    while True:  # perf_counter, not loop.time(): uvloop's clock and timers tick in whole ms
        asked = time.perf_counter()
        await asyncio.sleep(every_s)
        lag.observe(max(0.0, time.perf_counter() - asked - every_s))
