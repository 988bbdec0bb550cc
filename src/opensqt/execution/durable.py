"""DBOS lifecycle for the executor: one DBOS per process, launched once, destroyed when released.

DBOS is process-global. The executor service launches it at start (SQLite by default, Postgres
by configuration) with a pinned ``application_version`` (otherwise a code change would make
pending workflows unrecoverable); pending workflows of this executor id are recovered by
``launch``. Several executors in one process (tests) share the first one's DBOS.

DBOS also sweeps its system database once a second for delayed workflows that are due and
workflows past their deadline: work the executor never gives it (no delays, no timeouts). Each
sweep is a write transaction whose Python code holds the process's GIL for 1-3 ms, a stall for an
order arriving meanwhile (an idle executor's event loop on SQLite, late by over 2 ms: 30-62 times
in 40 s with the sweep every second, 32-33 with it every minute). ``acquire`` spaces the sweeps
``background_sweep_s`` apart, at most 4 s on Postgres: there DBOS holds the sweep's lock in a
transaction for the whole interval, and ends that transaction's session after 5 s idle. DBOS has
no public setting for it: the private interval is set before launch, where the sweeping thread
reads it; if a DBOS upgrade moves it, DBOS keeps its own 1 s and a warning says so (a test fails
first: the pin in requirements is exact). DBOS's internal queue keeps its 1 s poll: workflows
recovered at launch are re-enqueued there, and must not wait.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig
from dbos import _workflow_commands as dbos_workflow_commands
from sqlalchemy import event

from opensqt.telemetry import get_logger

__all__ = [
    "APPLICATION_VERSION",
    "BACKGROUND_SWEEP_S",
    "POSTGRES_SWEEP_MAX_S",
    "acquire",
    "sweep_interval",
    "dbos_config",
    "release",
    "sqlite_engine",
]

log = get_logger(__name__)

#: Bump only with a migration plan: pending workflows recover only under the same version.
APPLICATION_VERSION = "opensqt-executor-v1"

_lock = threading.Lock()
_users = 0


def dbos_config(
    *, executor_id: str, system_database_url: str, sqlite_synchronous: str = "NORMAL"
) -> DBOSConfig:
    """DBOS for one executor. On SQLite the system database runs in WAL mode with
    ``sqlite_synchronous`` (``NORMAL``: a commit is a write to the WAL, durable across a crash
    or ``kill -9`` of the process, not across a power loss of the host; ``FULL``: every commit
    is fsynced, several milliseconds per order on a typical disk). Postgres is unaffected."""
    config: DBOSConfig = {
        "name": "opensqt-executor",
        "system_database_url": system_database_url,
        "application_version": APPLICATION_VERSION,
        "executor_id": executor_id,
        "log_level": "WARNING",
        # only recv would wait on it (the executor has none), but DBOS's shutdown waits for the
        # listener's sleep: 0.1 s, not DBOS's 1 s, at every stop
        "notification_listener_polling_interval_sec": 0.1,
    }
    if system_database_url.startswith("sqlite"):
        config["system_database_engine"] = sqlite_engine(system_database_url, synchronous=sqlite_synchronous)
    return config


def sqlite_engine(url: str, *, synchronous: str) -> sa.Engine:
    """The SQLite engine DBOS would make (IMMEDIATE transactions serialise writers, a generous
    busy timeout, foreign keys), plus WAL and the chosen ``synchronous`` level."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"sqlite_synchronous must be NORMAL or FULL, got {synchronous!r}")
    engine = sa.create_engine(url, pool_size=20, max_overflow=0, pool_timeout=30)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, connection_record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    return engine


#: DBOS's sweep of delayed and timed-out workflows (see the module's docstring), by default.
BACKGROUND_SWEEP_S = 10.0
#: On Postgres the sweep's lock transaction must not sit idle 5 s (DBOS sets that timeout).
POSTGRES_SWEEP_MAX_S = 4.0


def sweep_interval(system_database_url: str, background_sweep_s: float) -> float:
    """The sweep interval ``acquire`` uses for this database (capped on Postgres)."""
    if background_sweep_s <= 0:
        raise ValueError(f"background_sweep_s must be positive, got {background_sweep_s}")
    if system_database_url.startswith("postgres"):
        return min(background_sweep_s, POSTGRES_SWEEP_MAX_S)
    return background_sweep_s


def acquire(config: DBOSConfig, *, background_sweep_s: float = BACKGROUND_SWEEP_S) -> None:
    """Launch DBOS for this process (first caller) or join the running one."""
    global _users
    every_s = sweep_interval(str(config.get("system_database_url") or ""), background_sweep_s)
    with _lock:
        if _users == 0:
            _space_background_sweeps(every_s)
            DBOS(config=config)
            DBOS.launch()
            log.info("dbos_launched", executor_id=config.get("executor_id"), database=_redacted(config))
        _users += 1


def release() -> None:
    """Leave DBOS; the last user destroys it (workflow registrations are kept)."""
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users == 0:
            DBOS.destroy(destroy_registry=False)
            log.info("dbos_destroyed")


def _space_background_sweeps(every_s: float) -> None:
    """Set DBOS's background-jobs interval (the sweep of delayed and timed-out workflows) to
    ``every_s``: read when DBOS launches the sweeping thread."""
    if not isinstance(getattr(dbos_workflow_commands, "_BACKGROUND_JOBS_INTERVAL_SEC", None), float):
        log.warning("dbos_background_sweep_unchanged", reason="this DBOS version has no such knob")
        return
    dbos_workflow_commands._BACKGROUND_JOBS_INTERVAL_SEC = every_s


def _redacted(config: Any) -> str:
    url = str(config.get("system_database_url", ""))
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
