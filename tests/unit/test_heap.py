"""The garbage collector's pauses as a metric, and the heap frozen after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from opensqt import heap
from opensqt.eventloop import run_event_loop
from opensqt.heap import PAUSE_BUCKETS, GcPauses, settle_heap


def sample(registry: CollectorRegistry, name: str, generation: str, le: str | None = None) -> float:
    labels = {"generation": generation} if le is None else {"generation": generation, "le": le}
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_a_pause_lands_in_its_bucket_and_every_bucket_above_it() -> None:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    pauses.record(1, 0.003)  # between the 2.5 ms and the 5 ms bounds
    pauses.record(1, 0.4)  # beyond the last bound
    name = "opensqt_gc_pause_seconds"
    assert sample(registry, f"{name}_bucket", "1", "0.0025") == 0
    assert sample(registry, f"{name}_bucket", "1", "0.005") == 1
    assert sample(registry, f"{name}_bucket", "1", repr(PAUSE_BUCKETS[-1])) == 1
    assert sample(registry, f"{name}_bucket", "1", "+Inf") == 2
    assert sample(registry, f"{name}_count", "1") == 2
    assert sample(registry, f"{name}_sum", "1") == pytest.approx(0.403)
    assert sample(registry, f"{name}_count", "0") == 0
    assert pauses.longest(1) == pytest.approx(0.4)


@pytest.fixture
def installed() -> Iterator[tuple[GcPauses, CollectorRegistry]]:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    pauses.install()
    try:
        yield pauses, registry
    finally:
        pauses.remove()


def test_the_hook_measures_real_collections(installed: tuple[GcPauses, CollectorRegistry]) -> None:
    pauses, registry = installed
    gc.collect()
    assert sample(registry, "opensqt_gc_pause_seconds_count", "2") >= 1
    assert pauses.longest(2) > 0
    pauses.remove()
    before = sample(registry, "opensqt_gc_pause_seconds_count", "2")
    gc.collect()
    assert sample(registry, "opensqt_gc_pause_seconds_count", "2") == before


def test_settling_freezes_what_is_alive_and_collects_first_when_asked(
    installed: tuple[GcPauses, CollectorRegistry],
) -> None:
    _, registry = installed
    collections = sample(registry, "opensqt_gc_pause_seconds_count", "2")
    try:
        frozen = settle_heap(collect=True)
        assert frozen == gc.get_freeze_count() > 0
        assert sample(registry, "opensqt_gc_pause_seconds_count", "2") == collections + 1
        survivor = [object() for _ in range(100)]
        assert settle_heap(collect=False) >= frozen + 1  # the list (objects are not tracked)
        assert sample(registry, "opensqt_gc_pause_seconds_count", "2") == collections + 1
        del survivor
    finally:
        gc.unfreeze()


def test_only_a_process_run_by_a_service_main_is_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_claimed", False)
    assert not heap.process_claimed()  # a test process: services started in it freeze nothing

    async def main() -> None:
        assert heap.process_claimed()

    run_event_loop(main(), "asyncio")
