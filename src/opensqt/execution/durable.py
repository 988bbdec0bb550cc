"""DBOS lifecycle for the executor: one DBOS per process, launched once, destroyed when released.

DBOS is process-global. The executor service launches it at start (SQLite by default, Postgres
by configuration) with a pinned ``application_version`` (otherwise a code change would make
pending workflows unrecoverable); pending workflows of this executor id are recovered by
``launch``. Several executors in one process (tests) share the first one's DBOS.
"""

from __future__ import annotations

import threading
from typing import Any

from dbos import DBOS, DBOSConfig

from opensqt.telemetry import get_logger

__all__ = ["APPLICATION_VERSION", "acquire", "dbos_config", "release"]

log = get_logger(__name__)

#: Bump only with a migration plan: pending workflows recover only under the same version.
APPLICATION_VERSION = "opensqt-executor-v1"

_lock = threading.Lock()
_users = 0


def dbos_config(*, executor_id: str, system_database_url: str) -> DBOSConfig:
    return {
        "name": "opensqt-executor",
        "system_database_url": system_database_url,
        "application_version": APPLICATION_VERSION,
        "executor_id": executor_id,
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    }


def acquire(config: DBOSConfig) -> None:
    """Launch DBOS for this process (first caller) or join the running one."""
    global _users
    with _lock:
        if _users == 0:
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


def _redacted(config: Any) -> str:
    url = str(config.get("system_database_url", ""))
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
