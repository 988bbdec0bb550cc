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
        assert (await one.claim("cid-1")).state is MarkClaim.FIRST
        assert (await two.claim("cid-1")).state is MarkClaim.IN_FLIGHT  # the other process is sending it
        await two.settle("cid-1")  # not its mark: nothing changes
        assert (await two.claim("cid-1")).state is MarkClaim.IN_FLIGHT
        assert (await one.claim("cid-1")).state is MarkClaim.SETTLED  # its own earlier attempt: look it up
        await one.settle("cid-1")
        key = stores[0].writable(SUBMIT_MARK, venue="paper", account="main", client_order_id="cid-1")
        assert await stores[0].client.get(key) == b"done"
        assert 86_000 < await stores[0].client.ttl(key) <= 86_400  # settling kept the expiry
        assert (await two.claim("cid-1")).state is MarkClaim.SETTLED  # answered: look it up, and it is
        assert (await one.claim("cid-1")).state is MarkClaim.IN_FLIGHT  # two's now, while it looks

        assert (await one.claim("cid-2")).state is MarkClaim.FIRST  # and its sender dies: never settled
        assert (await two.claim("cid-2")).state is MarkClaim.IN_FLIGHT
        await asyncio.sleep(0.35)
        assert (await two.claim("cid-2")).state is MarkClaim.SETTLED  # stale: the venue decided long ago

        await two.settle("never-sent")  # settling creates no mark
        assert (await one.claim("never-sent")).state is MarkClaim.FIRST
    finally:
        for store in stores:
            await store.close()


async def test_a_restarted_executor_takes_over_the_marks_of_its_dead_predecessor_as_undecided(
    redis: RedisServer,
) -> None:
    """An executor id runs once at a time: a mark left "sending" by its previous run is that
    dead process's. Nobody waits for it to settle, but until the stale limit its request may
    still be on the wire: the new run takes the mark over as ORPHANED, with the mark's age."""
    store = await RedisStore.connect(RedisSettings(url=redis.url), service="executor")  # type: ignore[arg-type]
    try:
        before, after, replica = (
            RedisSubmitMarks(store, venue="paper", account="main", owner=owner, stale_after_ms=400)
            for owner in ("executor-0", "executor-0", "executor-1")
        )
        assert (await before.claim("cid-9")).state is MarkClaim.FIRST  # then killed mid-send
        await asyncio.sleep(0.1)
        taken = await after.claim("cid-9")
        assert taken.state is MarkClaim.ORPHANED  # its request may still be on the wire
        assert 0.09 <= taken.stamped_ago_s < 0.4
        assert (await replica.claim("cid-9")).state is MarkClaim.IN_FLIGHT  # the new run's now
        assert (await after.claim("cid-9")).state is MarkClaim.SETTLED  # its own: look it up
        await before.settle("cid-9")  # the dead run's token settles nothing
        assert (await replica.claim("cid-9")).state is MarkClaim.IN_FLIGHT

        assert (await before.claim("cid-10")).state is MarkClaim.FIRST
        await asyncio.sleep(0.45)
        assert (await after.claim("cid-10")).state is MarkClaim.SETTLED  # stale: decided long ago
        with pytest.raises(ValueError, match="owner"):
            RedisSubmitMarks(store, venue="paper", account="main", owner="bad.id")
    finally:
        await store.close()
