"""The event-loop lag probe (a blocked loop shows up in opensqt_event_loop_lag_seconds) and the
span export batching."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opensqt.telemetry import ServiceMetrics, export_processor, watch_loop_lag

NAME = "opensqt_event_loop_lag_seconds"


async def test_a_blocked_loop_is_recorded_with_how_long_it_was_blocked() -> None:
    metrics = ServiceMetrics("test")
    probe = asyncio.create_task(watch_loop_lag(metrics.loop_lag, 0.01))
    try:
        await asyncio.sleep(0.1)  # samples of an idle loop
        time.sleep(0.08)  # noqa: ASYNC251 - the stall under test: 80 ms, longer than the interval
        await asyncio.sleep(0.05)
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    sample = metrics.registry.get_sample_value
    count = sample(f"{NAME}_count")
    assert count is not None
    assert count >= 8
    # the stall makes one sample late by at least 70 ms (80 ms less the timer's 10 ms)
    assert sample(f"{NAME}_bucket", {"le": "0.05"}) <= count - 1
    assert sample(f"{NAME}_sum") >= 0.07


async def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="every_s must be positive, got 0"):
        await watch_loop_lag(ServiceMetrics("test").loop_lag, 0)


def test_a_span_queue_smaller_than_the_batch_shrinks_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "32")  # the SDK refuses a batch over its queue
    processor = export_processor(InMemorySpanExporter())
    processor.shutdown()
