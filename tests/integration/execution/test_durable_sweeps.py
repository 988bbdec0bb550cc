"""DBOS's sweep of delayed and timed-out workflows follows the executor's
``background_sweep_s``, and its internal queue (where recovered workflows go) keeps polling:
real DBOS on SQLite (Postgres with OPENSQT_TEST_PG_URL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from opensqt.execution import durable
from tests.support.servers import dbos_database_url

pytestmark = pytest.mark.integration

SWEEP = "delay_until_epoch_ms"  # DBOS's move of due DELAYED workflows to ENQUEUED
DEQUEUE = "queue_name"  # a queue worker's look for ENQUEUED workflows (a SELECT)


@contextmanager
def statements() -> Iterator[Counter[str]]:
    """How many SQL statements any engine runs naming each marker while the block runs."""
    seen: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "workflow_status" not in statement:
            return
        if SWEEP in statement:
            seen[SWEEP] += 1
        # the timed-out sweep's UPDATE names queue_name too: only a SELECT is a queue poll
        if DEQUEUE in statement and statement.lstrip().upper().startswith("SELECT"):
            seen[DEQUEUE] += 1

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)


async def while_idle(tmp_path: Path, background_sweep_s: float) -> Counter[str]:
    """The statements of 2.5 s of an idle DBOS, from 1.2 s after launch (a sweep runs at launch;
    the next one, 4 s or more later, is outside)."""
    url = dbos_database_url(tmp_path)
    durable.acquire(
        durable.dbos_config(executor_id=f"sweeps-{tmp_path.name}", system_database_url=url),
        background_sweep_s=background_sweep_s,
    )
    try:
        await asyncio.sleep(1.2)
        with statements() as seen:
            await asyncio.sleep(2.5)
        return seen
    finally:
        durable.release()


async def test_dbos_sweeps_only_at_the_configured_interval_and_keeps_polling_its_queue(
    tmp_path: Path,
) -> None:
    for name in ("dbos-default", "executor-default"):
        (tmp_path / name).mkdir()
    dbos_default = await while_idle(tmp_path / "dbos-default", 1.0)
    assert dbos_default[SWEEP] >= 1
    assert dbos_default[DEQUEUE] >= 1
    spaced = await while_idle(tmp_path / "executor-default", durable.BACKGROUND_SWEEP_S)
    assert spaced[SWEEP] == 0  # it ran at launch; the next is 10 s later (4 s on Postgres)
    assert spaced[DEQUEUE] >= 1  # a workflow recovered at launch is dequeued within a second


def test_a_non_positive_interval_is_refused(tmp_path: Path) -> None:
    config = durable.dbos_config(
        executor_id="sweeps", system_database_url=f"sqlite:///{tmp_path / 'd.sqlite'}"
    )
    with pytest.raises(ValueError, match="background_sweep_s must be positive, got 0"):
        durable.acquire(config, background_sweep_s=0)


@pytest.mark.parametrize(
    ("url", "asked", "used"),
    [
        ("sqlite:////tmp/d.sqlite", 10.0, 10.0),
        ("sqlite:////tmp/d.sqlite", 120.0, 120.0),
        ("postgresql://u@127.0.0.1:5432/db", 10.0, 4.0),  # the sweep's lock: 5 s idle at most
        ("postgresql://u@127.0.0.1:5432/db", 2.0, 2.0),
    ],
)
def test_postgres_caps_the_sweep_interval(url: str, asked: float, used: float) -> None:
    assert durable.sweep_interval(url, asked) == used
