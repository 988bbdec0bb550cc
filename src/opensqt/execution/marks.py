"""Submit marks in Redis: who is sending which client order id, and whether it was answered.

A mark is set (``SET NX``, one-day expiry) before an order is first sent, per venue account
and client order id, and says ``sending`` by one process (a random token per
:class:`RedisSubmitMarks`) since a time on the Redis server's clock. Once the venue has answered,
the sender settles it (``done``, only while the mark is still its own). A sender re-stamps its
mark before a send that comes late (after a long wait for the rate budget, or a retry), so the
stale limit counts from the latest send. Whoever finds a mark already there must not send
blind:

* settled, or sent by this very process (an earlier attempt of its own has returned), or older
  than ``stale_after_ms`` (the sender died or lost its answer; the venue has long decided):
  take the mark over (so a third process waits for this one) and look the order up first;
* sent by an earlier run of the same executor id less than ``stale_after_ms`` ago (ORPHANED):
  an executor id runs once at a time, so that process is gone and nobody need wait for it, but
  its request may still be on the wire. Take the mark over and look the order up; "not found"
  counts only once the venue has decided that send (the claim says how long ago it was
  stamped; the executor waits out the rest, see ``OrderExecutor``);
* being sent by another process right now (a replica on the same account): wait until that
  send is settled or stale, then look it up. Without the wait, a
  lookup could run before the other send reaches the venue, find nothing, and send a second
  order (venues refuse a duplicate client id only while the first order is still open).
"""

from __future__ import annotations

import secrets

from opensqt.execution.order_executor import DECIDED_AFTER_S, RESTAMP_AFTER_S, Claim, MarkClaim
from opensqt.transport.redis_keys import SUBMIT_MARK
from opensqt.transport.redis_store import RedisStore

__all__ = ["RedisSubmitMarks"]

# KEYS[1] the mark. ARGV: token, ttl seconds, stale after ms, executor id.
# The caller ends up owning the mark
# ("s:<token>:<now>") unless another process is sending the id. Returns {code, other's age ms}:
# 1 FIRST (there was none), 2 SETTLED (done, stale or its own: it was taken over or re-stamped),
# 3 IN_FLIGHT (another process's, younger than the stale limit; left alone),
# 4 ORPHANED (an earlier run of this executor id, younger than the stale limit; taken over).
_CLAIM_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mine = 's:' .. ARGV[1] .. ':' .. now
local ttl = tonumber(ARGV[2])
if redis.call('SET', KEYS[1], mine, 'NX', 'EX', ttl) then return {1, 0} end
local value = redis.call('GET', KEYS[1]) or 'done'
local owner, since = string.match(value, '^s:([^:]+):(%d+)$')
if owner and owner ~= ARGV[1] and now - tonumber(since) < tonumber(ARGV[3]) then
  local age = now - tonumber(since)
  if string.sub(owner, 1, string.len(ARGV[4]) + 1) ~= ARGV[4] .. '.' then return {3, age} end
  redis.call('SET', KEYS[1], mine, 'KEEPTTL')  -- an earlier run of this executor id: gone
  return {4, age}
end
redis.call('SET', KEYS[1], mine, 'KEEPTTL')
return {2, 0}
"""

# KEYS[1] the mark. ARGV: token. "done" only if the mark is still this process's.
_SETTLE_LUA = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1]) + 3) == 's:' .. ARGV[1] .. ':' then
  redis.call('SET', KEYS[1], 'done', 'KEEPTTL')
  return 1
end
return 0
"""


_CLAIMS = {1: MarkClaim.FIRST, 2: MarkClaim.SETTLED, 3: MarkClaim.IN_FLIGHT, 4: MarkClaim.ORPHANED}


class RedisSubmitMarks:
    """The submit marks of one venue account, for one process (see the module doc)."""

    def __init__(
        self,
        store: RedisStore,
        *,
        venue: str,
        account: str,
        owner: str = "executor",
        stale_after_ms: int = int((DECIDED_AFTER_S + RESTAMP_AFTER_S) * 1000),
        ttl_seconds: int = 86_400,
    ) -> None:
        if not owner or any(c in owner for c in ".:"):
            raise ValueError(f"owner must be an executor id without '.' or ':', got {owner!r}")
        self._store = store
        self._venue = venue
        self._account = account
        self._ttl = ttl_seconds
        self._stale_after_ms = stale_after_ms
        self._owner = owner
        self.token = f"{owner}.{secrets.token_hex(8)}"
        self._claim = store.client.register_script(_CLAIM_LUA)
        self._settle = store.client.register_script(_SETTLE_LUA)

    def _key(self, client_order_id: str) -> str:
        return self._store.writable(
            SUBMIT_MARK, venue=self._venue, account=self._account, client_order_id=client_order_id
        )

    async def claim(self, client_order_id: str) -> Claim:
        """Take the mark before a send (see the module doc); an answered, stale, own or orphaned
        mark is taken over, so a third process waits for this one's send."""
        code, age_ms = await self._claim(
            keys=[self._key(client_order_id)],
            args=[self.token, self._ttl, self._stale_after_ms, self._owner],
        )
        return Claim(_CLAIMS[int(code)], int(age_ms) / 1000)

    async def settle(self, client_order_id: str) -> None:
        """The venue answered: "done", if the mark is still this process's."""
        await self._settle(keys=[self._key(client_order_id)], args=[self.token])
