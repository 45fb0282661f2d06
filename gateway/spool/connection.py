"""The spool file's connections: one writer, two readers, their locks, transactions, close.

`Spool` builds on this; it holds the rules (what is stored, evicted, forwarded, kept).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from gateway.errors import SpoolError
from gateway.spool.schema import connect, describe, migrate


class SpoolConnections:
    """Opens (creating or migrating) the file; every failure becomes a SpoolError.

    Writes go through `_w` under `_wlock`; the forwarder reads through `_r`, the API
    through `_h`, each under its own lock, so a slow read never delays a commit.
    """

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = Path(path)
        self._wlock = threading.Lock()  # the writer connection and the in-memory totals
        self._rlock = threading.Lock()  # the forwarder's reader: next_batch, stats
        self._hlock = threading.Lock()  # the API's reader: history, lines, dead_letters
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"spool {self.path}: cannot create the directory {self.path.parent}"
                f" ({exc.strerror}); check spool.path and the gateway user's permissions"
            ) from exc
        if self.path.is_dir():
            raise SpoolError(f"spool {self.path}: is a directory; spool.path names a file")
        try:
            self._w = connect(self.path, synchronous)
            migrate(self._w, self.path)
            self._r = connect(self.path, synchronous, read_only=True)
            self._h = connect(self.path, synchronous, read_only=True)
            self._opened()
        except (sqlite3.Error, OSError, SpoolError) as exc:
            self._close_quietly()
            if isinstance(exc, SpoolError):
                raise
            raise SpoolError(describe(self.path, exc)) from exc

    def _opened(self) -> None:
        """Called once the connections are open, to load what the subclass keeps in memory."""

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close; later calls raise SpoolError."""
        with self._wlock, self._rlock, self._hlock:
            if self._closed:
                return
            self._closed = True
            # A reader elsewhere (e.g. a backup) may hold the WAL; it is checkpointed next time.
            with suppress(sqlite3.Error):
                self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._close_quietly()

    def _close_quietly(self) -> None:
        for name in ("_h", "_r", "_w"):
            conn: sqlite3.Connection | None = getattr(self, name, None)
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any failure rolls back and becomes a SpoolError.

        The caller holds `_wlock` around it and updates the in-memory totals after it, still
        under the lock, so they change only when the transaction committed.
        """
        if self._closed:
            raise SpoolError(f"spool {self.path}: used after close()")
        conn = self._w
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already (SQLITE_FULL)
                    conn.execute("ROLLBACK")
            raise SpoolError(describe(self.path, exc)) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _reading(self, api: bool = False) -> Iterator[sqlite3.Connection]:
        """A read-only connection; in WAL mode it sees the last commit and never blocks one."""
        with self._hlock if api else self._rlock:
            if self._closed:
                raise SpoolError(f"spool {self.path}: used after close()")
            try:
                yield self._h if api else self._r
            except sqlite3.Error as exc:
                raise SpoolError(describe(self.path, exc)) from exc
