"""The Redis token bucket: shared by replicas, never over budget, blocked by Retry-After."""

from __future__ import annotations

import asyncio
import time

import pytest

from opensqt.config import RedisSettings
from opensqt.devstack import RedisServer
from opensqt.errors import RateLimited
from opensqt.execution.rate_budget import RateBudgetSettings, RedisRateBudget
from opensqt.transport.redis_store import KeyOwnershipError, RedisStore

pytestmark = pytest.mark.integration


async def _store(redis: RedisServer) -> RedisStore:
    return await RedisStore.connect(RedisSettings(url=redis.url), service="executor")  # type: ignore[arg-type]


async def test_two_replicas_on_one_account_never_exceed_the_budget_together(redis: RedisServer) -> None:
    settings = RateBudgetSettings(rate_per_second=50, burst=10)
    stores = [await _store(redis), await _store(redis)]
    budgets = [RedisRateBudget(s, venue="paper", account="main", settings=settings) for s in stores]
    grants: list[float] = []

    async def hammer(budget: RedisRateBudget) -> None:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            await budget.acquire()
            grants.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(hammer(b) for b in budgets for _ in range(3)))
    elapsed = grants[-1] - started
    # burst + rate x elapsed, with one token of slack for the last refill
    assert len(grants) <= settings.burst + settings.rate_per_second * elapsed + 1
    assert len(grants) >= settings.burst + settings.rate_per_second * 0.8  # and the budget is used
    for s in stores:
        await s.close()


async def test_retry_after_blocks_every_replica(redis: RedisServer) -> None:
    settings = RateBudgetSettings(rate_per_second=1000, burst=5)
    a, b = await _store(redis), await _store(redis)
    first = RedisRateBudget(a, venue="paper", account="main", settings=settings)
    second = RedisRateBudget(b, venue="paper", account="main", settings=settings)
    await first.block(0.3)
    waited = await second.acquire()
    assert waited >= 0.25
    await a.close()
    await b.close()


async def test_waiting_longer_than_allowed_raises_rate_limited(redis: RedisServer) -> None:
    store = await _store(redis)
    budget = RedisRateBudget(
        store,
        venue="paper",
        account="x",
        settings=RateBudgetSettings(rate_per_second=1, burst=1, max_wait_seconds=0.2),
    )
    await budget.acquire()
    with pytest.raises(RateLimited, match="rate budget exhausted"):
        await budget.acquire()
    await store.close()


async def test_only_the_executor_may_write_the_budget(redis: RedisServer) -> None:
    store = await RedisStore.connect(RedisSettings(url=redis.url), service="strategy")  # type: ignore[arg-type]
    with pytest.raises(KeyOwnershipError):
        RedisRateBudget(store, venue="paper", account="main", settings=RateBudgetSettings())
    await store.close()
