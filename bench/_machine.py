"""A machine-speed reference printed by the benchmarks (this is a shared, noisy host)."""

from __future__ import annotations

import time

__all__ = ["reference_ms"]


def reference_ms() -> float:
    """This machine's speed right now: the best of five runs of a fixed pure-Python loop (so
    runs on different days, or on a busy shared host, can be compared)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000
