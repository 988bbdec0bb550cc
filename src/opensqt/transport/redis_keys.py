"""Every Redis key of OpenSQT, with the one service that writes it.

Other services may read a key; only its owner writes it (enforced by
:meth:`opensqt.transport.redis_store.RedisStore.writable`). Updates that must be atomic use Lua
or MULTI/WATCH, never read-modify-write from Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ALERTS",
    "ARBITRAGE_PLAN",
    "AUDIT_LOG",
    "EXECUTOR_AUDIT",
    "EXECUTOR_REGISTRY",
    "GRID_ANCHOR",
    "GRID_INTERVAL",
    "GRID_SLOTS",
    "KEYS",
    "LEGS",
    "RATE_BUDGET",
    "SUBMIT_MARK",
    "TRADING_STATE",
    "KeySpec",
]

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
PREFIX = "opensqt:v1"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A Redis key template, its type and its owner (the only writing service)."""

    name: str
    template: str
    owner: str
    redis_type: str
    description: str

    def key(self, **tokens: str) -> str:
        expected = re.findall(r"{(\w+)}", self.template)
        if set(tokens) != set(expected):
            raise ValueError(f"key {self.name} needs tokens {expected}, got {sorted(tokens)}")
        for name, value in tokens.items():
            if not _TOKEN_RE.match(value):
                raise ValueError(f"key {self.name}: {name} {value!r} is not a valid key token")
        return self.template.format(**tokens)


TRADING_STATE = KeySpec(
    "trading_state",
    PREFIX + ":risk:trading_state",
    owner="risk",
    redis_type="hash",
    description="state, reason, set_by, updated_ms, version; read by every executor before every order",
)
AUDIT_LOG = KeySpec(
    "audit_log",
    PREFIX + ":risk:audit",
    owner="risk",
    redis_type="stream",
    description="operator actions (Halt/Resume/CancelAll) with the caller's certificate identity",
)
ALERTS = KeySpec(
    "alerts",
    PREFIX + ":risk:alerts",
    owner="risk",
    redis_type="stream",
    description="risk alerts, newest last, capped",
)
GRID_SLOTS = KeySpec(
    "grid_slots",
    PREFIX + ":strategy:slots:{agent}:{symbol}",
    owner="strategy",
    redis_type="hash",
    description="field = slot price, value = serialized InventorySlot (versioned)",
)
GRID_ANCHOR = KeySpec(
    "grid_anchor",
    PREFIX + ":strategy:anchor:{agent}:{symbol}",
    owner="strategy",
    redis_type="string",
    description="the grid anchor price, fixed at the first price",
)
GRID_INTERVAL = KeySpec(
    "grid_interval",
    PREFIX + ":strategy:interval:{agent}:{symbol}",
    owner="strategy",
    redis_type="string",
    description="the grid's price interval as started (the configured one, or ATR-widened); "
    "kept while slots are in use",
)
LEGS = KeySpec(
    "legs",
    PREFIX + ":strategy:legs:{agent}",
    owner="strategy",
    redis_type="hash",
    description="field = venue:symbol, value = serialized Leg (versioned)",
)
ARBITRAGE_PLAN = KeySpec(
    "arbitrage_plan",
    PREFIX + ":strategy:plan:{agent}",
    owner="strategy",
    redis_type="hash",
    description="the running arbitrage plan: workflow, sequence and step:<n> = each step recorded "
    "before its order is sent; deleted when the plan is done (a restart resolves what is left)",
)
RATE_BUDGET = KeySpec(
    "rate_budget",
    PREFIX + ":executor:rate:{venue}:{account}",
    owner="executor",
    redis_type="hash",
    description="token bucket shared by every executor replica on one exchange account",
)
SUBMIT_MARK = KeySpec(
    "submit_mark",
    PREFIX + ":executor:submit:{venue}:{account}:{client_order_id}",
    owner="executor",
    redis_type="string",
    description=(
        "set (NX, 1 day) before an order is first sent: 'sending' by a process since a time, then"
        " 'done'; present again means look it up first (after waiting for a send in flight)"
    ),
)
EXECUTOR_REGISTRY = KeySpec(
    "executor_registry",
    PREFIX + ":executor:registry",
    owner="executor",
    redis_type="hash",
    description="field = executor id, value = address and heartbeat; risk pushes Halt to each",
)
EXECUTOR_AUDIT = KeySpec(
    "executor_audit",
    PREFIX + ":executor:audit",
    owner="executor",
    redis_type="stream",
    description="operator actions on an executor directly (Halt/Resume/CancelAll): executor id, the "
    "caller's certificate identity, reason; risk's own pushes are in risk's audit log",
)

KEYS: tuple[KeySpec, ...] = (
    TRADING_STATE,
    AUDIT_LOG,
    ALERTS,
    GRID_SLOTS,
    GRID_ANCHOR,
    GRID_INTERVAL,
    LEGS,
    ARBITRAGE_PLAN,
    RATE_BUDGET,
    SUBMIT_MARK,
    EXECUTOR_REGISTRY,
    EXECUTOR_AUDIT,
)
