"""Executors register with a heartbeat so risk can reach every one of them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from opensqt.cancellation import raise_if_cancelled
from opensqt.clock import Clock
from opensqt.telemetry import get_logger
from opensqt.transport.redis_keys import EXECUTOR_REGISTRY
from opensqt.transport.redis_store import RedisStore

__all__ = ["ExecutorEntry", "ExecutorRegistry"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ExecutorEntry:
    executor_id: str
    address: str
    venue: str
    account: str
    heartbeat_ms: int


class ExecutorRegistry:
    """The ``opensqt:v1:executor:registry`` hash: executor id -> address and heartbeat."""

    def __init__(self, store: RedisStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def heartbeat(self, entry: ExecutorEntry) -> None:
        payload = json.dumps(
            {
                "address": entry.address,
                "venue": entry.venue,
                "account": entry.account,
                "heartbeat_ms": self._clock.now_ms(),
            }
        )
        await self._store.client.hset(self._store.writable(EXECUTOR_REGISTRY), entry.executor_id, payload)

    async def run(self, entry: ExecutorEntry, interval_seconds: float) -> None:
        """Heartbeat until cancelled. A failed heartbeat (Redis away) is logged and tried again
        at the next beat: a heartbeat that stopped for good would let risk's halt pushes skip
        this executor once its entry went stale."""
        failing = False
        while True:
            raise_if_cancelled()
            try:
                await self.heartbeat(entry)
            except Exception as exc:
                if not failing:
                    log.warning("executor_heartbeat_failed", executor_id=entry.executor_id,
                                error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                failing = True
            else:
                if failing:
                    log.info("executor_heartbeat_restored", executor_id=entry.executor_id)
                failing = False
            await asyncio.sleep(interval_seconds)

    async def remove(self, executor_id: str) -> None:
        await self._store.client.hdel(self._store.writable(EXECUTOR_REGISTRY), executor_id)

    async def live(self, max_age_ms: int) -> list[ExecutorEntry]:
        """Executors whose last heartbeat is at most ``max_age_ms`` old (read by risk)."""
        raw = await self._store.client.hgetall(self._store.readable(EXECUTOR_REGISTRY))
        now = self._clock.now_ms()
        entries = []
        for key, value in raw.items():
            data = json.loads(value)
            entry = ExecutorEntry(
                executor_id=key.decode() if isinstance(key, bytes) else str(key),
                address=str(data["address"]),
                venue=str(data["venue"]),
                account=str(data["account"]),
                heartbeat_ms=int(data["heartbeat_ms"]),
            )
            if now - entry.heartbeat_ms <= max_age_ms:
                entries.append(entry)
        return sorted(entries, key=lambda e: e.executor_id)
