"""Submit marks in Redis: who is sending a client order id, and whether the venue answered."""

from __future__ import annotations

import asyncio

import pytest

from opensqt.config import RedisSettings
from opensqt.devstack import RedisServer
from opensqt.execution.marks import RedisSubmitMarks
from opensqt.execution.order_executor import MarkClaim
from opensqt.transport.redis_keys import SUBMIT_MARK
from opensqt.transport.redis_store import RedisStore

pytestmark = pytest.mark.integration


async def test_a_second_process_waits_for_a_send_in_flight_and_looks_up_once_it_is_settled_or_stale(
    redis: RedisServer,
) -> None:
    stores = [
        await RedisStore.connect(RedisSettings(url=redis.url), service="executor")  # type: ignore[arg-type]
        for _ in range(2)
    ]
    one, two = (
        RedisSubmitMarks(s, venue="paper", account="main", owner=f"executor-{n}", stale_after_ms=300)
        for n, s in enumerate(stores)
    )
    try:
        assert await one.claim("cid-1") is MarkClaim.FIRST
        assert await two.claim("cid-1") is MarkClaim.IN_FLIGHT  # the other process is sending it
        await two.settle("cid-1")  # not its mark: nothing changes
        assert await two.claim("cid-1") is MarkClaim.IN_FLIGHT
        assert await one.claim("cid-1") is MarkClaim.SETTLED  # its own earlier attempt: look it up
        await one.settle("cid-1")
        key = stores[0].writable(SUBMIT_MARK, venue="paper", account="main", client_order_id="cid-1")
        assert await stores[0].client.get(key) == b"done"
        assert 86_000 < await stores[0].client.ttl(key) <= 86_400  # settling kept the expiry
        assert await two.claim("cid-1") is MarkClaim.SETTLED  # answered: look it up, and it is
        assert await one.claim("cid-1") is MarkClaim.IN_FLIGHT  # two's now, while it looks

        assert await one.claim("cid-2") is MarkClaim.FIRST  # and its sender dies: never settled
        assert await two.claim("cid-2") is MarkClaim.IN_FLIGHT
        await asyncio.sleep(0.35)
        assert await two.claim("cid-2") is MarkClaim.SETTLED  # stale: the venue decided long ago

        await two.settle("never-sent")  # settling creates no mark
        assert await one.claim("never-sent") is MarkClaim.FIRST
    finally:
        for store in stores:
            await store.close()


async def test_a_restarted_executor_takes_over_the_marks_of_its_dead_predecessor_after_a_grace(
    redis: RedisServer,
) -> None:
    """An executor id runs once at a time: a mark left by its previous run is that dead
    process's, so the new run looks the order up after a short grace, not the stale limit."""
    store = await RedisStore.connect(RedisSettings(url=redis.url), service="executor")  # type: ignore[arg-type]
    try:
        before, after, replica = (
            RedisSubmitMarks(store, venue="paper", account="main", owner=owner, restart_grace_ms=200)
            for owner in ("executor-0", "executor-0", "executor-1")
        )
        assert await before.claim("cid-9") is MarkClaim.FIRST  # then killed mid-send
        assert await after.claim("cid-9") is MarkClaim.IN_FLIGHT  # its request may be on the wire
        await asyncio.sleep(0.25)
        assert await replica.claim("cid-9") is MarkClaim.IN_FLIGHT  # another id waits it out
        assert await after.claim("cid-9") is MarkClaim.SETTLED  # the same id: gone, look it up
        with pytest.raises(ValueError, match="owner"):
            RedisSubmitMarks(store, venue="paper", account="main", owner="bad.id")
    finally:
        await store.close()
