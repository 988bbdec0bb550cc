"""Trace sampling: decided where a trace starts, followed everywhere else."""

from __future__ import annotations

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opensqt.telemetry import configure_tracing


def recorded(ratio: float, parent: dict[str, str] | None = None) -> list[str]:
    exporter = InMemorySpanExporter()
    provider = configure_tracing(
        "monitor", extra_processors=[SimpleSpanProcessor(exporter)], sample_ratio=ratio
    )
    context = propagate.extract(parent) if parent else None
    with provider.get_tracer("test").start_as_current_span("tick", context=context):
        pass
    provider.shutdown()
    return [span.name for span in exporter.get_finished_spans()]


SAMPLED = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
NOT_SAMPLED = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}


def test_every_trace_is_recorded_by_default_and_none_at_ratio_zero() -> None:
    assert recorded(1.0) == ["tick"]
    assert recorded(0.0) == []


def test_a_service_follows_its_callers_decision_whatever_its_own_ratio() -> None:
    assert recorded(0.0, SAMPLED) == ["tick"]  # the trace started sampled: it stays whole
    assert recorded(1.0, NOT_SAMPLED) == []


def test_a_ratio_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_ratio"):
        configure_tracing("monitor", sample_ratio=1.5)
