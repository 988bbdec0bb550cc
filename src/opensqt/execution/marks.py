"""Submit marks in Redis: who is sending which client order id, and whether it was answered.

A mark is set (``SET NX``, one-day expiry) before an order is first sent, per venue account
and client order id, and says ``sending`` by one process (a random token per
:class:`RedisSubmitMarks`) since a time on the Redis server's clock. Once the venue has answered,
the sender settles it (``done``). Whoever finds a mark already there must not send blind:

* settled, or sent by this very process (an earlier attempt of its own has returned), or older
  than ``stale_after_ms`` (the sender died or lost its answer; the venue has long decided):
  look the order up by client id first;
* being sent by another process right now (a replica, or a restarted executor racing the one it
  replaced): wait until that send is settled or stale, then look it up. Without the wait, a
  lookup could run before the other send reaches the venue, find nothing, and send a second
  order (venues refuse a duplicate client id only while the first order is still open).
"""

from __future__ import annotations

import secrets

from opensqt.execution.order_executor import MarkClaim
from opensqt.transport.redis_keys import SUBMIT_MARK
from opensqt.transport.redis_store import RedisStore

__all__ = ["RedisSubmitMarks"]

# KEYS[1] the mark. ARGV: token, ttl seconds. Returns {1} when set, else {0, value, now_ms}.
_CLAIM_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local value = 's:' .. ARGV[1] .. ':' .. now
if redis.call('SET', KEYS[1], value, 'NX', 'EX', tonumber(ARGV[2])) then return {1} end
return {0, redis.call('GET', KEYS[1]) or 'done', now}
"""


class RedisSubmitMarks:
    """The submit marks of one venue account, for one process (see the module doc)."""

    def __init__(
        self,
        store: RedisStore,
        *,
        venue: str,
        account: str,
        stale_after_ms: int = 15_000,
        ttl_seconds: int = 86_400,
    ) -> None:
        self._store = store
        self._venue = venue
        self._account = account
        self._ttl = ttl_seconds
        self._stale_after_ms = stale_after_ms
        self.token = secrets.token_hex(8)
        self._claim = store.client.register_script(_CLAIM_LUA)

    def _key(self, client_order_id: str) -> str:
        return self._store.writable(
            SUBMIT_MARK, venue=self._venue, account=self._account, client_order_id=client_order_id
        )

    async def claim(self, client_order_id: str) -> MarkClaim:
        reply = await self._claim(keys=[self._key(client_order_id)], args=[self.token, self._ttl])
        if int(reply[0]) == 1:
            return MarkClaim.FIRST
        value = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        now_ms = int(reply[2])
        kind, _, rest = value.partition(":")
        token, _, since = rest.partition(":")
        if kind != "s" or token == self.token or not since.isdigit():
            return MarkClaim.SETTLED  # answered, ours, or a mark of an older format
        if now_ms - int(since) >= self._stale_after_ms:
            return MarkClaim.SETTLED  # its sender is gone; the venue decided long ago
        return MarkClaim.IN_FLIGHT

    async def settle(self, client_order_id: str) -> None:
        await self._store.client.set(self._key(client_order_id), b"done", xx=True, keepttl=True)
