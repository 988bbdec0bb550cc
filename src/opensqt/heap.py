"""The garbage collector on the order path: its pauses measured, start-up objects set aside.

CPython's cyclic collector stops the whole process while it runs. A full collection walks every
tracked object, and a service holds hundreds of thousands of them after start-up (the venue's
markets, protobuf descriptors, DBOS and SQLAlchemy): measured on the development machine, 40 to
170 ms per full collection, paid by whichever price tick or halt happens to trigger it.
:func:`settle_heap` moves everything alive after start-up into the permanent generation
(``gc.freeze``), so later collections walk only what the service allocated since. Objects freed
by reference counting are still freed; only a reference cycle among frozen objects would stay.

:class:`GcPauses` reports every collection's pause as a Prometheus histogram by generation. Its
``gc.callbacks`` hook only adds to integers (no lock, no allocation that could itself collect);
the histogram is built when ``/metrics`` is scraped.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PAUSE_BUCKETS", "GcPauses", "claim_process", "process_claimed", "settle_heap"]

#: Upper bounds of the pause histogram, in seconds.
PAUSE_BUCKETS: tuple[float, ...] = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

_GENERATIONS = 3

_claimed = False


def claim_process() -> None:
    """Say that a service owns this whole process (its ``main`` runs it): freezing the heap is
    its call. A service started inside another program (a test, an embedding) leaves the
    host's heap alone."""
    global _claimed
    _claimed = True


def process_claimed() -> bool:
    return _claimed


def settle_heap(*, collect: bool) -> int:
    """Freeze what is alive now (after a full collection when ``collect``: it takes tens of ms,
    so only while the service is not yet trading). Returns how many objects are frozen in all."""
    if collect:
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses(Collector):
    """Collector pauses of this process: ``opensqt_gc_pause_seconds{generation}``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        n = len(PAUSE_BUCKETS)
        self._bucket_counts = [[0] * (n + 1) for _ in range(_GENERATIONS)]  # last one: +Inf
        self._sums = [0.0] * _GENERATIONS
        self._longest = [0.0] * _GENERATIONS
        self._started = 0.0
        self._installed = False
        if registry is not None:
            registry.register(self)

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def remove(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        paused = time.perf_counter() - self._started
        generation = info["generation"]
        self.record(generation, paused)

    def record(self, generation: int, seconds: float) -> None:
        """Count one pause (the gc hook calls this; exposed so it can be checked directly)."""
        counts = self._bucket_counts[generation]
        for i, bound in enumerate(PAUSE_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self._sums[generation] += seconds
        if seconds > self._longest[generation]:
            self._longest[generation] = seconds

    def longest(self, generation: int) -> float:
        """The longest pause of ``generation`` so far, in seconds."""
        return self._longest[generation]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "opensqt_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation (the process stops meanwhile)",
            labels=["generation"],
        )
        for generation in range(_GENERATIONS):
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(PAUSE_BUCKETS, self._bucket_counts[generation], strict=False):
                running += count
                buckets.append((repr(bound), running))
            running += self._bucket_counts[generation][-1]
            buckets.append(("+Inf", running))
            family.add_metric([str(generation)], buckets, self._sums[generation])
        yield family
