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
    one, two = (RedisSubmitMarks(s, venue="paper", account="main", stale_after_ms=300) for s in stores)
    try:
        assert await one.claim("cid-1") is MarkClaim.FIRST
        assert await two.claim("cid-1") is MarkClaim.IN_FLIGHT  # the other process is sending it
        assert await one.claim("cid-1") is MarkClaim.SETTLED  # its own earlier attempt: look it up
        await one.settle("cid-1")
        assert await two.claim("cid-1") is MarkClaim.SETTLED
        key = stores[0].writable(SUBMIT_MARK, venue="paper", account="main", client_order_id="cid-1")
        assert await stores[0].client.get(key) == b"done"
        assert 86_000 < await stores[0].client.ttl(key) <= 86_400  # settling kept the expiry

        assert await one.claim("cid-2") is MarkClaim.FIRST  # and its sender dies: never settled
        assert await two.claim("cid-2") is MarkClaim.IN_FLIGHT
        await asyncio.sleep(0.35)
        assert await two.claim("cid-2") is MarkClaim.SETTLED  # stale: the venue decided long ago

        await two.settle("never-sent")  # settling creates no mark
        assert await one.claim("never-sent") is MarkClaim.FIRST
    finally:
        for store in stores:
            await store.close()
