"""Exponential backoff for retryable exchange errors. Pure: the random source is injected."""

from __future__ import annotations

import random
from dataclasses import dataclass

from opensqt.errors import ExchangeError, RateLimited, Retryable

__all__ = ["BackoffPolicy"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """0.5 s doubling, capped at 10 s, ±10% jitter, at most 5 retries (behaviour.md §5)."""

    initial_seconds: float = 0.5
    multiplier: float = 2.0
    cap_seconds: float = 10.0
    jitter: float = 0.10
    max_retries: int = 5

    def should_retry(self, error: ExchangeError, retries_done: int) -> bool:
        """Only retryable errors, and only while retries remain."""
        return isinstance(error, Retryable) and retries_done < self.max_retries

    def delay(
        self, retries_done: int, error: ExchangeError | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retries_done + 1``.

        A venue's ``Retry-After`` wins when it asks for longer than the backoff.
        """
        base = min(self.cap_seconds, self.initial_seconds * self.multiplier**retries_done)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        wait = base * (1 + spread)
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            wait = max(wait, error.retry_after_s)
        return wait
