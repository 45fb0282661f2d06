"""The durable spool: a SQLite (WAL) outbox between ingest and the forwarder.

One `commit_batch` is one transaction; the pipeline acknowledges MQTT messages only after
it returns, so a `kill -9` loses nothing that was acknowledged. With no InfluxDB the same
file is the embedded history store. docs/spool.md states the guarantees.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from heapq import merge
from pathlib import Path
from typing import Final, Literal

from gateway.clock import Clock, SystemClock
from gateway.errors import SpoolError
from gateway.spool.records import (
    AuditRow,
    CommitResult,
    DeadLetter,
    OutboxRow,
    SpoolRow,
    SpoolStats,
    StoredDeadLetter,
    clip_dead_letter,
)
from gateway.spool.schema import connect, describe, migrate

__all__ = [  # the value types are re-exported so `gateway.spool.store` alone is enough
    "MAX_DEAD_LETTERS",
    "CommitResult",
    "DeadLetter",
    "OutboxRow",
    "Spool",
    "SpoolRow",
    "SpoolStats",
    "StoredDeadLetter",
]

MAX_DEAD_LETTERS: Final = 100_000
EVICT_TO: Final = 0.9  # after passing max_bytes, evict telemetry down to this fraction of it
_TELEMETRY: Final = 0
_CLASSES: Final = (0, 1, 2)
_PRUNE_CHUNK: Final = 20_000  # rows per prune transaction, so commits never wait long
_LEN: Final = "length(CAST(line AS BLOB))"  # UTF-8 bytes, not characters


def _nbytes(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode())


class Spool:
    """SQLite store-and-forward outbox; thread-safe, synchronous (call it via to_thread).

    Writes go through one connection under a lock. Reads use two read-only connections
    (forwarder: `next_batch`, `stats`; API: `history`, `dead_letters`), so a slow history
    scan never delays a commit (and so an MQTT ack) or the forwarder. Only one process
    should write a spool file: the byte accounting lives in this object.
    `keep_history=True` (no InfluxDB): nothing is forwarded; rows stay as history, bounded
    by `prune` (telemetry age) and `max_bytes`.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_age_h: float,
        synchronous: Literal["full", "normal"] = "full",
        *,
        clock: Clock | None = None,
        keep_history: bool = False,
    ) -> None:
        if max_bytes <= 0 or max_age_h <= 0:
            raise SpoolError(f"spool {path}: max_bytes and max_age_h must be positive")
        if synchronous not in ("full", "normal"):
            raise SpoolError(f"spool {path}: synchronous must be 'full' or 'normal'")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_h = max_age_h
        self.keep_history = keep_history
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._wlock = threading.Lock()  # the writer connection and the in-memory totals
        self._rlock = threading.Lock()  # the forwarder's reader: next_batch, stats
        self._hlock = threading.Lock()  # the API's reader: history, dead_letters
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
            self._load_totals()
        except (sqlite3.Error, OSError, SpoolError) as exc:
            self._close_quietly()
            if isinstance(exc, SpoolError):
                raise
            raise SpoolError(describe(self.path, exc)) from exc

    # ---------------------------------------------------------------- open/close

    def _load_totals(self) -> None:
        self._rows = dict.fromkeys(_CLASSES, 0)
        self._bytes = dict.fromkeys(_CLASSES, 0)
        for cls, n, size in self._w.execute(
            f"SELECT cls, count(*), coalesce(sum({_LEN}), 0) FROM outbox GROUP BY cls"
        ):
            self._rows[cls], self._bytes[cls] = n, size
        self._dead_rows = int(self._w.execute("SELECT count(*) FROM dead_letter").fetchone()[0])
        self._counters = dict(self._w.execute("SELECT name, value FROM counters").fetchall())

    def relieve(self) -> bool:
        """After a "disk full": fold the WAL into the database file and truncate it, which
        gives its space back to the filesystem; True when the WAL could be emptied."""
        with self._wlock:
            try:
                busy = self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error:
                return False
            return not busy

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

    # ---------------------------------------------------------------- writes

    def commit_batch(
        self,
        rows: Sequence[SpoolRow],
        dead: Sequence[DeadLetter] = (),
        audit: Sequence[AuditRow] = (),
    ) -> CommitResult:
        """Store `rows`, `dead` and `audit` in ONE transaction, then evict telemetry past max_bytes.

        When this returns, everything is on disk (per `synchronous`) and may be acknowledged.
        Audit records (the fire engine's history) are kept apart and never evicted.
        """
        if not rows and not dead and not audit:
            return CommitResult(0, 0, 0)
        add_rows = dict.fromkeys(_CLASSES, 0)
        add_bytes = dict.fromkeys(_CLASSES, 0)
        for row in rows:
            add_rows[row.cls] = add_rows.get(row.cls, 0) + 1
            add_bytes[row.cls] = add_bytes.get(row.cls, 0) + _nbytes(row.line)
        with self._wlock:
            rows_now = {c: self._rows[c] + add_rows[c] for c in _CLASSES}
            bytes_now = {c: self._bytes[c] + add_bytes[c] for c in _CLASSES}
            with self._transaction() as conn:
                conn.executemany(
                    "INSERT INTO outbox (cls, ts_ms, received_ms, line) VALUES (?, ?, ?, ?)", rows
                )
                dead_evicted = self._insert_dead(conn, [clip_dead_letter(d) for d in dead])
                if audit:
                    conn.executemany(
                        "INSERT INTO audit (ts_ms, incident, record) VALUES (?, ?, ?)", audit
                    )
                evicted, freed = self._evict(
                    conn, sum(bytes_now.values()), rows_now[_TELEMETRY], bytes_now[_TELEMETRY]
                )
                if evicted:
                    self._bump(conn, "evicted_total", evicted)
            rows_now[_TELEMETRY] -= evicted
            bytes_now[_TELEMETRY] -= freed
            self._rows, self._bytes = rows_now, bytes_now
            self._after_dead(len(dead), dead_evicted)
            self._counters["evicted_total"] += evicted
        return CommitResult(len(rows), len(dead), evicted)

    def audit_records(self, since_ms: int = 0) -> list[str]:
        """Audit records (JSON text) stored at or after `since_ms`, in the order stored."""
        with self._reading(api=True) as conn:
            cur = conn.execute("SELECT record FROM audit WHERE ts_ms >= ? ORDER BY id", (since_ms,))
            return [row[0] for row in cur.fetchall()]

    def _insert_dead(self, conn: sqlite3.Connection, dead: Sequence[DeadLetter]) -> int:
        if not dead:
            return 0
        conn.executemany(
            "INSERT INTO dead_letter (received_ms, stage, topic, payload, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            [(d.received_ms, d.stage, d.topic, d.payload, d.reason) for d in dead],
        )
        self._bump(conn, "dead_letters_total", len(dead))
        over = self._dead_rows + len(dead) - MAX_DEAD_LETTERS
        if over <= 0:
            return 0
        conn.execute(
            "DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter ORDER BY id LIMIT ?)",
            (over,),
        )
        self._bump(conn, "dead_letters_evicted_total", over)
        return over

    def _after_dead(self, added: int, evicted: int) -> None:
        self._dead_rows += added - evicted
        self._counters["dead_letters_total"] += added
        self._counters["dead_letters_evicted_total"] += evicted

    def _evict(
        self, conn: sqlite3.Connection, total: int, tel_rows: int, tel_bytes: int
    ) -> tuple[int, int]:
        """Delete the oldest telemetry until under EVICT_TO * max_bytes; (rows, bytes) freed."""
        if total <= self.max_bytes:
            return 0, 0
        need = total - int(self.max_bytes * EVICT_TO)
        evicted = freed = 0
        after_id = -1
        while freed < need and evicted < tel_rows:
            # Read just enough (id, size) pairs to cover the excess, then delete by id range.
            avg = max(1, (tel_bytes - freed) // max(1, tel_rows - evicted))
            chunk = min(100_000, (need - freed) // avg + 64)
            sizes = conn.execute(
                f"SELECT id, {_LEN} FROM outbox WHERE cls = 0 AND id > ? ORDER BY id LIMIT ?",
                (after_id, chunk),
            ).fetchall()
            if not sizes:
                break
            for row_id, size in sizes:
                after_id = row_id
                evicted += 1
                freed += size
                if freed >= need:
                    break
        if evicted:
            conn.execute("DELETE FROM outbox WHERE cls = 0 AND id <= ?", (after_id,))
        return evicted, freed

    def _bump(self, conn: sqlite3.Connection, name: str, by: int) -> None:
        conn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (by, name))

    def _delete_ids(
        self, conn: sqlite3.Connection, ids: Sequence[int]
    ) -> dict[int, tuple[int, int, int]]:
        """Delete outbox rows by id; {id: (cls, bytes, received_ms)} of those that existed."""
        cur = conn.execute(
            f"DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))"
            f" RETURNING id, cls, {_LEN}, received_ms",
            (json.dumps([int(i) for i in ids]),),
        )
        return {row_id: (cls, size, rec) for row_id, cls, size, rec in cur.fetchall()}

    def _forget(self, gone: dict[int, tuple[int, int, int]]) -> None:
        for cls, size, _ in gone.values():
            self._rows[cls] -= 1
            self._bytes[cls] -= size

    def mark_forwarded(self, ids: Sequence[int]) -> None:
        """The database accepted these rows: delete them from the outbox (one transaction)."""
        if not ids:
            return
        with self._wlock:
            with self._transaction() as conn:
                gone = self._delete_ids(conn, ids)
                self._bump(conn, "forwarded_total", len(gone))
            self._forget(gone)
            self._counters["forwarded_total"] += len(gone)

    def dead_letter_lines(self, rows: Sequence[tuple[int, str, str]], stage: str) -> None:
        """Move outbox rows `(id, line, reason)` the database rejected to the dead letters."""
        if not rows:
            return
        now = self._clock.wall_ms()
        with self._wlock:
            with self._transaction() as conn:
                gone = self._delete_ids(conn, [r[0] for r in rows])
                dead = [
                    clip_dead_letter(
                        DeadLetter(gone[i][2] if i in gone else now, "", line.encode(), why, stage)
                    )
                    for i, line, why in rows
                ]
                dead_evicted = self._insert_dead(conn, dead)
            self._forget(gone)
            self._after_dead(len(dead), dead_evicted)

    def prune(self) -> int:
        """Drop telemetry received more than max_age_h ago (by the injected clock); rows dropped."""
        cutoff = self._clock.wall_ms() - round(self.max_age_h * 3_600_000)
        dropped = 0
        while True:
            # One transaction per chunk, so a large backlog never holds off commits for long.
            with self._wlock:
                with self._transaction() as conn:
                    sizes = conn.execute(
                        f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE cls = 0"
                        f" AND received_ms < ? LIMIT ?) RETURNING {_LEN}",
                        (cutoff, _PRUNE_CHUNK),
                    ).fetchall()
                    if sizes:
                        self._bump(conn, "pruned_total", len(sizes))
                self._rows[_TELEMETRY] -= len(sizes)
                self._bytes[_TELEMETRY] -= sum(s for (s,) in sizes)
                self._counters["pruned_total"] += len(sizes)
            dropped += len(sizes)
            if len(sizes) < _PRUNE_CHUNK:
                return dropped

    # ---------------------------------------------------------------- reads

    def next_batch(self, limit: int) -> list[OutboxRow]:
        """The oldest unforwarded rows: alarms and events first, then telemetry, each by age.

        The forwarder is the only consumer: it calls `mark_forwarded` (or
        `dead_letter_lines`) before asking again. Always empty when `keep_history`.
        """
        if limit <= 0 or self.keep_history:
            return []
        query = "SELECT id, cls, received_ms, line FROM outbox WHERE cls = ? ORDER BY id LIMIT ?"
        with self._reading() as conn:
            alarms = [OutboxRow(*r) for r in conn.execute(query, (2, limit))]
            events = [OutboxRow(*r) for r in conn.execute(query, (1, limit))]
            batch = list(merge(alarms, events))[:limit]
            if len(batch) < limit:
                batch += [OutboxRow(*r) for r in conn.execute(query, (0, limit - len(batch)))]
        return batch

    def history(self, measurement_prefix: str, since_ms: int, limit: int) -> list[str]:
        """Lines whose measurement starts with the prefix and ts_ms >= since_ms.

        The newest `limit` of them, returned oldest first (the embedded store's read path).
        """
        if limit <= 0:
            return []
        with self._reading(api=True) as conn:
            lines = conn.execute(
                "SELECT line FROM (SELECT line, ts_ms, id FROM outbox WHERE ts_ms >= ?"
                " AND substr(line, 1, ?) = ? ORDER BY ts_ms DESC, id DESC LIMIT ?)"
                " ORDER BY ts_ms, id",
                (since_ms, len(measurement_prefix), measurement_prefix, limit),
            ).fetchall()
        return [line for (line,) in lines]

    def dead_letters(self, limit: int = 100) -> list[StoredDeadLetter]:
        """The newest dead letters first (for the API and CLI)."""
        with self._reading(api=True) as conn:
            rows = conn.execute(
                "SELECT id, received_ms, stage, topic, payload, reason FROM dead_letter"
                " ORDER BY id DESC LIMIT ?",
                (max(0, limit),),
            ).fetchall()
        return [StoredDeadLetter(*r) for r in rows]

    def stats(self) -> SpoolStats:
        """Counts and bytes from memory; the oldest age from the (cls, received_ms) index."""
        with self._reading() as conn:
            oldest = conn.execute(
                "SELECT min(m) FROM (SELECT min(received_ms) AS m FROM outbox WHERE cls = 0"
                " UNION ALL SELECT min(received_ms) FROM outbox WHERE cls = 1"
                " UNION ALL SELECT min(received_ms) FROM outbox WHERE cls = 2)"
            ).fetchone()[0]
        with self._wlock:
            rows, size, counters = dict(self._rows), sum(self._bytes.values()), self._counters
            return SpoolStats(
                rows=sum(rows.values()),
                bytes=size,
                rows_by_class=rows,
                oldest_received_ms=oldest,
                evicted_total=counters["evicted_total"],
                dead_letters_total=counters["dead_letters_total"],
                forwarded_total=counters["forwarded_total"],
                pruned_total=counters["pruned_total"],
                dead_letters=self._dead_rows,
                dead_letters_evicted_total=counters["dead_letters_evicted_total"],
            )
