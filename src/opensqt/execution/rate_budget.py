"""The order rate budget: a token bucket shared by every executor replica on one account.

The bucket lives in one Redis hash (``opensqt:v1:executor:rate:<venue>:<account>``) and is
updated by one Lua script using the Redis server's clock, so replicas on different machines
agree without trusting their own clocks. After a 429/418 the venue's Retry-After blocks the
whole account (:meth:`RateBudget.block`), not just the replica that was told.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Histogram

from opensqt.errors import BudgetExhausted
from opensqt.transport.redis_keys import RATE_BUDGET
from opensqt.transport.redis_store import RedisStore

__all__ = ["MeteredBudget", "RateBudget", "RateBudgetSettings", "RedisRateBudget"]

# KEYS[1] bucket hash. ARGV: rate per second, burst, cost. Returns {granted 0|1, wait microseconds}.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked_until')
local tokens = tonumber(h[1])
local ts = tonumber(h[2])
local blocked = tonumber(h[3]) or 0
if tokens == nil then tokens = burst; ts = now end
if now < blocked then return {0, blocked - now} end
tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
local granted = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  granted = 1
else
  wait = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 3600000)
return {granted, wait}
"""

# KEYS[1] bucket hash. ARGV: block for this many microseconds (extends, never shortens).
_BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'blocked_until')) or 0
if until_us > current then redis.call('HSET', KEYS[1], 'blocked_until', tostring(until_us)) end
redis.call('HSET', KEYS[1], 'tokens', '0', 'ts', tostring(math.max(until_us, current)))
redis.call('PEXPIRE', KEYS[1], 3600000)
return until_us
"""


@dataclass(frozen=True, slots=True)
class RateBudgetSettings:
    """25 orders/s with a burst of 30 by default (behaviour.md §5)."""

    rate_per_second: float = 25.0
    burst: int = 30
    max_wait_seconds: float = 30.0


class RateBudget(Protocol):
    async def acquire(self, cost: int = 1) -> float:
        """Wait for ``cost`` tokens; returns the seconds waited. BudgetExhausted past the max wait."""
        ...

    async def block(self, seconds: float) -> None:
        """Stop every replica for ``seconds`` (a venue's Retry-After)."""
        ...


class RedisRateBudget:
    """:class:`RateBudget` in Redis, shared by all replicas of one venue account."""

    def __init__(self, store: RedisStore, *, venue: str, account: str, settings: RateBudgetSettings) -> None:
        if settings.rate_per_second <= 0 or settings.burst < 1:
            raise ValueError("rate_per_second must be > 0 and burst >= 1")
        self._key = store.writable(RATE_BUDGET, venue=venue, account=account)
        self._settings = settings
        self._take = store.client.register_script(_TAKE_LUA)
        self._block = store.client.register_script(_BLOCK_LUA)

    async def acquire(self, cost: int = 1) -> float:
        if cost > self._settings.burst:
            raise ValueError(f"cost {cost} exceeds the burst {self._settings.burst}")
        started = time.monotonic()
        while True:
            granted, wait_us = await self._take(
                keys=[self._key], args=[self._settings.rate_per_second, self._settings.burst, cost]
            )
            if int(granted) == 1:
                return time.monotonic() - started
            waited = time.monotonic() - started
            wait_s = int(wait_us) / 1_000_000
            if waited + wait_s > self._settings.max_wait_seconds:
                raise BudgetExhausted(
                    f"rate budget exhausted: would wait {waited + wait_s:.1f}s "
                    f"(max {self._settings.max_wait_seconds}s)",
                    retry_after_s=wait_s,
                )
            await asyncio.sleep(wait_s)

    async def block(self, seconds: float) -> None:
        await self._block(keys=[self._key], args=[int(max(0.0, seconds) * 1_000_000)])


class MeteredBudget:
    """A :class:`RateBudget` that records every wait in a Prometheus histogram."""

    def __init__(self, budget: RateBudget, wait_seconds: Histogram) -> None:
        self._budget = budget
        self._wait = wait_seconds

    async def acquire(self, cost: int = 1) -> float:
        waited = await self._budget.acquire(cost)
        self._wait.observe(waited)
        return waited

    async def block(self, seconds: float) -> None:
        await self._budget.block(seconds)
