"""The spool's SQLite file: connection settings, schema and its version, error messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from gateway.errors import SpoolError

# In PRAGMA user_version. 2 added the `history` table (forwarded points kept for reports);
# a version-1 file is migrated in place when it is opened (the DDL below is idempotent).
SCHEMA_VERSION: Final = 2
COUNTERS: Final = (
    "evicted_total",
    "dead_letters_total",
    "forwarded_total",
    "pruned_total",
    "dead_letters_evicted_total",
    "history_evicted_total",
)
_TABLES: Final = frozenset({"outbox", "dead_letter", "counters", "audit", "history"})
_BUSY_TIMEOUT_MS: Final = 10_000
_WAL_AUTOCHECKPOINT_PAGES: Final = 4000  # 16 MiB of WAL (~50 batches of 2,000 points)
_JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cls INTEGER NOT NULL CHECK (cls BETWEEN 0 AND 2),
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_cls_id ON outbox (cls, id);
CREATE INDEX IF NOT EXISTS outbox_cls_received ON outbox (cls, received_ms);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    stage TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    incident TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_measurement_ts ON history (measurement, ts_ms);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES {", ".join(f"('{c}', 0)" for c in COUNTERS)};
PRAGMA user_version = {SCHEMA_VERSION};
"""


def describe(path: Path, exc: BaseException) -> str:
    """A sqlite3/OS error as a message that says where and what to do."""
    text = str(exc)
    low = text.lower()
    if "full" in low:
        hint = "free disk space or lower spool.max_bytes"
    elif "not a database" in low or "malformed" in low or "corrupt" in low:
        hint = "the file is damaged: move it aside (a new spool is created) or restore a backup"
    elif "readonly" in low or "unable to open" in low or isinstance(exc, OSError):
        hint = "check that the directory exists and is writable by the gateway user"
    elif "locked" in low or "busy" in low:
        hint = "another process holds the spool; stop it or choose another spool.path"
    else:
        hint = "see docs/spool.md"
    return f"spool {path}: {text} ({hint})"


def connect(path: Path, synchronous: str, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode, in autocommit (transactions are explicit), usable by any thread.

    Raises sqlite3.Error/OSError (the caller wraps them) or SpoolError when WAL is unavailable.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    try:
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise SpoolError(
                f"spool {path}: the filesystem does not support SQLite WAL mode (got {mode!r});"
                " put the spool on a local disk"
            )
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        if read_only:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, bring an older spool up to date (version 1 → 2: the
    `history` table and its counter); refuse files of a newer gateway or of another program."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SpoolError(
            f"spool {path}: written by a newer gateway (schema {version}, this one knows"
            f" {SCHEMA_VERSION}); upgrade the gateway or move the file aside"
        )
    if version == SCHEMA_VERSION:
        return
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if tables - _TABLES:
        raise SpoolError(
            f"spool {path}: this SQLite file is not a gateway spool (it has tables"
            f" {sorted(tables - _TABLES)}); choose another spool.path"
        )
    # executescript commits by itself; the DDL is idempotent, so a crash midway is harmless.
    conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
