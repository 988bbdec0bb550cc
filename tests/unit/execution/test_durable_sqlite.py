"""The executor's DBOS journal on SQLite: WAL, and the synchronous level the settings choose."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from opensqt.execution.durable import dbos_config, sqlite_engine


@pytest.mark.parametrize(("level", "code"), [("NORMAL", 1), ("FULL", 2)])
def test_every_connection_runs_in_wal_with_the_chosen_synchronous_level(
    tmp_path: Path, level: str, code: int
) -> None:
    engine = sqlite_engine(f"sqlite:///{tmp_path / 'dbos.sqlite'}", synchronous=level)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(sa.text("PRAGMA synchronous")).scalar() == code
            assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        sqlite_engine("sqlite:///:memory:", synchronous="OFF")


def test_postgres_keeps_dbos_own_engine(tmp_path: Path) -> None:
    config = dbos_config(executor_id="e", system_database_url="postgresql://u@127.0.0.1:5432/db")
    assert "system_database_engine" not in config
    sqlite = dbos_config(executor_id="e", system_database_url=f"sqlite:///{tmp_path / 'd.sqlite'}")
    engine = sqlite["system_database_engine"]
    assert isinstance(engine, sa.Engine)
    engine.dispose()
