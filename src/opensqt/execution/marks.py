"""Submit marks in Redis: set before an order is first sent; found again means "look it up first"."""

from __future__ import annotations

from opensqt.transport.redis_keys import SUBMIT_MARK
from opensqt.transport.redis_store import RedisStore

__all__ = ["RedisSubmitMarks"]


class RedisSubmitMarks:
    """``SET NX`` with a one-day expiry per client order id, per venue account."""

    def __init__(self, store: RedisStore, *, venue: str, account: str, ttl_seconds: int = 86_400) -> None:
        self._store = store
        self._venue = venue
        self._account = account
        self._ttl = ttl_seconds

    async def first(self, client_order_id: str) -> bool:
        key = self._store.writable(
            SUBMIT_MARK, venue=self._venue, account=self._account, client_order_id=client_order_id
        )
        return bool(await self._store.client.set(key, b"1", nx=True, ex=self._ttl))
