"""Redis connection handling, key ownership and the durable trading state."""

from __future__ import annotations

from typing import Any, Literal

import redis.asyncio as aioredis

from opensqt.config import RedisSettings
from opensqt.model import TradingState, TradingStateKind
from opensqt.telemetry import get_logger
from opensqt.transport.redis_keys import AUDIT_LOG, TRADING_STATE, KeySpec

__all__ = ["KeyOwnershipError", "RedisStore", "StateGuard", "TradingStateStore", "append_audit"]

log = get_logger(__name__)


class KeyOwnershipError(PermissionError):
    """A service tried to write a key another service owns."""


class RedisStore:
    """A service's Redis connection. ``writable`` refuses keys the service does not own."""

    def __init__(self, client: aioredis.Redis, *, service: str) -> None:
        self.client = client
        self.service = service

    @classmethod
    async def connect(cls, settings: RedisSettings, *, service: str) -> RedisStore:
        client = aioredis.from_url(
            settings.url.get_secret_value(),
            socket_timeout=settings.socket_timeout_seconds,
            socket_connect_timeout=settings.socket_timeout_seconds,
            health_check_interval=15,
            decode_responses=False,
        )
        await client.ping()
        log.info("redis_connected")
        return cls(client, service=service)

    def readable(self, spec: KeySpec, **tokens: str) -> str:
        return spec.key(**tokens)

    def writable(self, spec: KeySpec, **tokens: str) -> str:
        """The key, if this service owns it; otherwise :class:`KeyOwnershipError`."""
        if spec.owner != self.service:
            raise KeyOwnershipError(f"{self.service} may not write {spec.name} (owned by {spec.owner})")
        return spec.key(**tokens)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.client.aclose()


# KEYS[1]: the trading-state hash. ARGV: state, reason, set_by, updated_ms, guard, expected.
# Bumps the version and writes the state in one step, so concurrent writers never reuse a version.
# ``guard`` makes the write conditional, judged on the state held at that moment (no other writer
# can come between the check and the write): "escalate" writes only a stricter state than the
# current one (ACTIVE < REDUCING < HALTED; a state this script cannot rank counts as HALTED), and
# only over ACTIVE or a state the same ``set_by`` wrote (another's REDUCING stays theirs: an
# automatic recovery from a state taken over would lift it);
# "version" writes only while the version is still ``expected``. Returns {written (0/1), version,
# state, reason, set_by, updated_ms} of the state held afterwards.
_SET_STATE_LUA = """
local rank = {ACTIVE = 0, REDUCING = 1, HALTED = 2}
local held = redis.call('HMGET', KEYS[1], 'version', 'state', 'reason', 'set_by', 'updated_ms')
local guard = ARGV[5]
local refused = false
if guard == 'escalate' then
  local current = held[2] and rank[held[2]] or (held[2] and 2 or 0)
  refused = rank[ARGV[1]] <= current or (current > 0 and held[4] ~= ARGV[3])
elseif guard == 'version' then
  refused = (held[1] or '0') ~= ARGV[6]
end
if refused then
  return {0, held[1] or '0', held[2] or 'ACTIVE', held[3] or '', held[4] or '', held[5] or '0'}
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'set_by', ARGV[3], 'updated_ms', ARGV[4])
return {1, tostring(version), ARGV[1], ARGV[2], ARGV[3], ARGV[4]}
"""
#: A conditional write of the trading state (see _SET_STATE_LUA).
StateGuard = Literal["", "escalate", "version"]


def _text(raw: dict[bytes, bytes], name: str) -> str:
    return raw.get(name.encode(), b"").decode()


def _state(state_name: str, reason: str, set_by: str, updated_ms: str, version: str) -> TradingState:
    """The trading state from its stored fields; HALTED for a state that cannot be read."""
    try:
        state = TradingStateKind(state_name)
    except ValueError:
        # Never trade on a state we cannot read.
        log.error("trading_state_unreadable", state=state_name)
        return TradingState(state=TradingStateKind.HALTED, reason=f"unreadable state {state_name!r}")
    return TradingState(
        state=state, reason=reason, set_by=set_by, updated_ms=int(updated_ms or 0), version=int(version or 0)
    )


class TradingStateStore:
    """The durable trading state. Risk writes it; every executor reads it."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._set_state = store.client.register_script(_SET_STATE_LUA)

    async def get(self) -> TradingState:
        """The current state; ACTIVE at version 0 when it was never set."""
        raw: dict[bytes, bytes] = await self._store.client.hgetall(  # type: ignore[assignment]
            self._store.readable(TRADING_STATE)
        )
        if not raw or not raw.get(b"state"):
            return TradingState(state=TradingStateKind.ACTIVE, reason="never set", version=0)
        return _state(*(_text(raw, name) for name in ("state", "reason", "set_by", "updated_ms", "version")))

    async def set(self, state: TradingStateKind, *, reason: str, set_by: str, now_ms: int) -> TradingState:
        """Write a new state atomically; returns it with its new version."""
        _, held = await self.set_guarded(state, reason=reason, set_by=set_by, now_ms=now_ms)
        return held

    async def set_guarded(
        self,
        state: TradingStateKind,
        *,
        reason: str,
        set_by: str,
        now_ms: int,
        guard: StateGuard = "",
        expected_version: int = 0,
    ) -> tuple[bool, TradingState]:
        """Write a new state atomically unless ``guard`` refuses it (``escalate``: only a
        stricter state than the one held, over ACTIVE or a state this ``set_by`` wrote;
        ``version``: only while the held version is ``expected_version``). Returns whether it
        was written, and the state held afterwards."""
        key = self._store.writable(TRADING_STATE)
        answer = await self._set_state(
            keys=[key], args=[state.value, reason, set_by, str(now_ms), guard, str(expected_version)]
        )
        written, version, state_name, held_reason, held_by, updated_ms = (
            item.decode() if isinstance(item, bytes) else str(item) for item in answer
        )
        return written == "1", _state(state_name, held_reason, held_by, updated_ms, version)

    async def audit(self, *, action: str, identity: str, reason: str, now_ms: int, **extra: Any) -> None:
        """Append an operator action to the audit log (capped at about 100,000 entries)."""
        await append_audit(
            self._store, AUDIT_LOG, action=action, identity=identity, reason=reason, now_ms=now_ms, **extra
        )


async def append_audit(
    store: RedisStore, spec: KeySpec, *, action: str, identity: str, reason: str, now_ms: int, **extra: Any
) -> None:
    """Append one action to the audit stream ``spec`` (capped at about 100,000 entries): what,
    who (the caller's certificate identity), why, when, and ``extra`` as strings."""
    fields = {"action": action, "identity": identity, "reason": reason, "ms": str(now_ms)}
    fields.update({k: str(v) for k, v in extra.items()})
    await store.client.xadd(
        store.writable(spec),
        fields,  # type: ignore[arg-type]
        maxlen=100_000,
        approximate=True,
    )
