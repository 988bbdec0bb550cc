"""Persistence of the paper exchange in one SQLite file.

After every change, one transaction appends the new order-log entries, trades and ledger
entries and replaces the snapshot (the matching core's ``to_state()`` plus the venue's own
state and the listen keys). SQLite in WAL mode makes the transaction atomic and durable across
a killed process, so a restart (even after ``kill -9``) resumes from the last acknowledged
change: an order the exchange answered is never lost, and half a change is never seen.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensqt.exchange.state import decode, encode
from opensqt.paper.records import LedgerEntry, OrderLogEntry, TradeRecord
from opensqt.telemetry import get_logger

__all__ = ["PaperStore", "SavedState"]

log = get_logger(__name__)

#: How often the log is copied into the database file (in the background).
CHECKPOINT_EVERY_S = 1.0
#: Log pages (4 KiB each) at which a commit checkpoints in line: only when the thread falls behind.
BACKSTOP_PAGES = 4_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_log (
    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, account TEXT NOT NULL, wallet TEXT NOT NULL,
    symbol TEXT NOT NULL, order_id INTEGER NOT NULL, client_order_id TEXT NOT NULL,
    execution TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER PRIMARY KEY, account TEXT NOT NULL, wallet TEXT NOT NULL, symbol TEXT NOT NULL,
    time_ms INTEGER NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    tran_id INTEGER PRIMARY KEY, account TEXT NOT NULL, wallet TEXT NOT NULL, kind TEXT NOT NULL,
    symbol TEXT NOT NULL, time_ms INTEGER NOT NULL, payload TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SavedState:
    """What :meth:`PaperStore.load` returns."""

    venue: dict[str, Any]
    extra: dict[str, Any]
    order_log: list[OrderLogEntry]
    trades: list[TradeRecord]
    ledger: list[LedgerEntry]


class PaperStore:
    """The SQLite file of one paper exchange."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint copies the log into the database and syncs it to disk: milliseconds that
        # an order's answer would wait for. A thread of its own does it instead (sqlite3 lets go
        # of the GIL meanwhile); commits append to the log and do not sync. Once a checkpoint
        # has copied the whole log, the next commit starts the log over. Should the thread fall
        # behind (commits without pause), a commit checkpoints itself once the log passes
        # BACKSTOP_PAGES: the log stays bounded.
        self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._db.executescript(_SCHEMA)
        self.saves = 0
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_every,
            args=(CHECKPOINT_EVERY_S,),
            name="paper-store-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()

    def _checkpoint_every(self, seconds: float) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            while not self._stop.wait(seconds):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # the next round tries again; the log only grows
                    log.warning("paper_checkpoint_failed", path=str(self.path), error=str(exc))
        finally:
            db.close()

    def load(self) -> SavedState | None:
        """The last saved state, or ``None`` for a new file."""
        rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "venue" not in rows:
            return None
        return SavedState(
            venue=json.loads(rows["venue"]),
            extra=json.loads(rows.get("extra", "{}")),
            order_log=[
                decode(OrderLogEntry, json.loads(payload))
                for (payload,) in self._db.execute("SELECT payload FROM order_log ORDER BY seq")
            ],
            trades=[
                decode(TradeRecord, json.loads(payload))
                for (payload,) in self._db.execute("SELECT payload FROM trades ORDER BY trade_id")
            ],
            ledger=[
                decode(LedgerEntry, json.loads(payload))
                for (payload,) in self._db.execute("SELECT payload FROM ledger ORDER BY tran_id")
            ],
        )

    def save(
        self,
        venue_state: dict[str, Any],
        extra: dict[str, Any],
        new_records: list[OrderLogEntry | TradeRecord | LedgerEntry],
    ) -> None:
        """Append ``new_records`` and replace the snapshot, in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for record in new_records:
                payload = json.dumps(encode(record), separators=(",", ":"))
                if isinstance(record, OrderLogEntry):
                    order = record.order
                    db.execute(
                        "INSERT INTO order_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.seq,
                            record.time_ms,
                            record.account,
                            record.wallet.value,
                            order.symbol,
                            int(order.exchange_order_id),
                            order.client_order_id,
                            record.execution,
                            payload,
                        ),
                    )
                elif isinstance(record, TradeRecord):
                    db.execute(
                        "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            record.trade_id,
                            record.account,
                            record.wallet.value,
                            record.symbol,
                            record.time_ms,
                            payload,
                        ),
                    )
                else:
                    db.execute(
                        "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.tran_id,
                            record.account,
                            record.wallet.value,
                            record.kind,
                            record.symbol,
                            record.time_ms,
                            payload,
                        ),
                    )
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('venue', ?)",
                (json.dumps(venue_state, separators=(",", ":")),),
            )
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('extra', ?)", (json.dumps(extra, separators=(",", ":")),)
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.saves += 1

    def close(self) -> None:
        """Stop the checkpoints, fold the log into the database and close (twice is harmless)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._checkpointer.join()
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()
