"""SQLite checkpoints: one checksummed snapshot per file.

The snapshot is canonical JSON (sorted keys) stored with its SHA-256 in a single row, replaced
in one transaction, so a reader sees the previous snapshot or the new one, never a mix. A
snapshot whose checksum does not match, or a file that is not a checkpoint database, is refused
with :class:`CheckpointCorrupted`; nothing is loaded from it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["CheckpointCorrupted", "CheckpointError", "CheckpointStore"]

_FORMAT = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS checkpoint ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " format INTEGER NOT NULL,"
    " payload BLOB NOT NULL,"
    " sha256 TEXT NOT NULL)"
)


class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded."""


class CheckpointCorrupted(CheckpointError):
    """The stored checkpoint fails its checksum or cannot be read; it is not loaded."""


class CheckpointStore:
    """One snapshot in a SQLite file at ``path`` (created on first save)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5, isolation_level=None)

    def save(self, state: dict[str, Any]) -> None:
        """Replace the snapshot with ``state`` atomically.

        Raises:
            CheckpointError: the state cannot be encoded or the database write failed; the
                previous snapshot is still the one stored.
        """
        try:
            payload = json.dumps(state, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint {self.path}: state cannot be encoded: {error}") from error
        digest = hashlib.sha256(payload).hexdigest()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect()
            try:
                connection.execute(_SCHEMA)
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT OR REPLACE INTO checkpoint (id, format, payload, sha256) VALUES (1, ?, ?, ?)",
                    (_FORMAT, payload, digest),
                )
                connection.execute("COMMIT")
            finally:
                connection.close()
        except (OSError, sqlite3.Error) as error:
            raise CheckpointError(f"checkpoint {self.path}: save failed: {error}") from error

    def load(self) -> dict[str, Any] | None:
        """The stored snapshot, or ``None`` when there is none yet.

        Raises:
            CheckpointCorrupted: the file is not a checkpoint database, or the snapshot's
                checksum does not match its content.
        """
        if not self.path.exists():
            return None
        try:
            connection = self._connect()
            try:
                tables = connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'checkpoint'"
                ).fetchall()
                row = (
                    connection.execute(
                        "SELECT format, payload, sha256 FROM checkpoint WHERE id = 1"
                    ).fetchone()
                    if tables
                    else None
                )
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise CheckpointCorrupted(
                f"checkpoint {self.path} is not a readable checkpoint database ({error}); refusing to load it"
            ) from error
        if row is None:
            return None
        format_version, payload, stored = row
        if format_version != _FORMAT:
            raise CheckpointCorrupted(
                f"checkpoint {self.path} has format {format_version}, expected {_FORMAT}"
            )
        actual = hashlib.sha256(payload).hexdigest()
        if actual != stored:
            raise CheckpointCorrupted(
                f"checkpoint {self.path} is corrupted: checksum {actual[:12]}... does not match the stored "
                f"{str(stored)[:12]}...; refusing to load it (delete the file to start afresh)"
            )
        try:
            state = json.loads(payload)
        except ValueError as error:  # pragma: no cover - the checksum matched what was written
            raise CheckpointCorrupted(f"checkpoint {self.path}: payload is not JSON: {error}") from error
        if not isinstance(state, dict):
            raise CheckpointCorrupted(f"checkpoint {self.path}: payload is not an object")
        return state
