"""Versioned JSON records in Redis hash fields: one compare-and-set script and strict readers.

Shared by the grid slot store and the arbitrage leg store. Each record is a JSON object with an
integer ``version``; :data:`CAS_JSON_FIELD_LUA` writes a field only if the stored version is the
one the writer read (a missing field counts as version 0), otherwise it returns the current
value so the caller can re-apply its pure transition. No Redis import here: the stores register
the script on their own client.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

__all__ = ["CAS_JSON_FIELD_LUA", "contention_pause", "json_count", "json_text"]

# KEYS[1]: the hash. ARGV: field, expected version, new JSON value.
# Returns {1} when written, {0, current value or ''} on a version mismatch.
CAS_JSON_FIELD_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if current then
  version = tonumber(cjson.decode(current)['version'])
end
if version ~= tonumber(ARGV[2]) then
  return {0, current or ''}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1}
"""


def json_text(document: dict[str, Any], name: str) -> str:
    """A string field, or TypeError."""
    value = document[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


def json_count(document: dict[str, Any], name: str) -> int:
    """A non-negative integer field (not a bool), or TypeError."""
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    return value


async def contention_pause(conflicts: int) -> None:
    """After the ``conflicts``-th compare-and-set lost in a row, wait a random moment (up to
    0.5 ms doubling per loss, at most 16 ms): writers that retry at once can starve one of them
    for as long as the others keep winning."""
    ceiling = min(0.0005 * 2 ** min(conflicts - 1, 5), 0.016)
    await asyncio.sleep(random.uniform(0, ceiling))
