"""The durable spool: a SQLite (WAL) outbox between ingest and the forwarder.

One `commit_batch` is one transaction; the pipeline acknowledges MQTT messages only after
it returns, so a `kill -9` loses nothing that was acknowledged. With no InfluxDB the same
file is the embedded history store; with one, forwarded points that reports need move to
the `history` table (`gateway.spool.history`). docs/spool.md states the guarantees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Final, Literal

from gateway.clock import Clock, SystemClock
from gateway.errors import SpoolError
from gateway.spool import history as hist
from gateway.spool import outbox
from gateway.spool.connection import SpoolConnections
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
EVICT_TO: Final = 0.9  # after passing max_bytes, evict down to this fraction of it
_TELEMETRY: Final = 0
_CLASSES: Final = (0, 1, 2)
_PRUNE_CHUNK: Final = 20_000  # rows per prune transaction, so commits never wait long
_RELIEVE_HISTORY_ROWS: Final = 2_000  # oldest history rows a full disk takes back per relieve()
_LEN: Final = hist.LEN  # UTF-8 bytes, not characters
_DAY_MS: Final = 86_400_000


def _nbytes(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode())


class Spool(SpoolConnections):
    """SQLite store-and-forward outbox; thread-safe, synchronous (call it via to_thread).

    Writes go through one connection under a lock. Reads use two read-only connections
    (forwarder: `next_batch`, `stats`; API: `history`, `dead_letters`), so a slow history
    scan never delays a commit (and so an MQTT ack) or the forwarder. Only one process
    should write a spool file: the byte accounting lives in this object.
    `keep_history=True` (no InfluxDB): nothing is forwarded; rows stay as history, bounded
    by `prune` (telemetry age) and `max_bytes`. Otherwise forwarded rows of the history
    measurements are kept `history_days` (0: none) in the `history` table, which is the
    first thing evicted over `max_bytes`.
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
        history_days: float = 35.0,
    ) -> None:
        if max_bytes <= 0 or max_age_h <= 0:
            raise SpoolError(f"spool {path}: max_bytes and max_age_h must be positive")
        if not history_days >= 0:
            raise SpoolError(f"spool {path}: history_days must be 0 or more, got {history_days}")
        if synchronous not in ("full", "normal"):
            raise SpoolError(f"spool {path}: synchronous must be 'full' or 'normal'")
        self.max_bytes = max_bytes
        self.max_age_h = max_age_h
        self.keep_history = keep_history
        self.history_days = history_days
        self._clock: Clock = clock if clock is not None else SystemClock()
        # The ids of the last `next_batch` and, per class, its last id (see mark_forwarded).
        self._last_batch: tuple[list[int], dict[int, int]] | None = None
        super().__init__(path, synchronous)

    # ---------------------------------------------------------------- open/close

    def _opened(self) -> None:
        """Load the byte accounting and counters (at open)."""
        self._rows = dict.fromkeys(_CLASSES, 0)
        self._bytes = dict.fromkeys(_CLASSES, 0)
        for cls, n, size in self._w.execute(
            f"SELECT cls, count(*), coalesce(sum({_LEN}), 0) FROM outbox GROUP BY cls"
        ):
            self._rows[cls], self._bytes[cls] = n, size
        self._hist_rows, self._hist_bytes = hist.totals(self._w)
        self._dead_rows = int(self._w.execute("SELECT count(*) FROM dead_letter").fetchone()[0])
        self._counters = dict(self._w.execute("SELECT name, value FROM counters").fetchall())

    def relieve(self) -> bool:
        """After a "disk full": fold the WAL into the database file and truncate it, which
        gives its space back to the filesystem; True when the WAL could be emptied.

        Then drop the oldest history rows (a few thousand), so their pages can hold new
        outbox rows: history never keeps the outbox from a disk it could use.
        """
        with self._wlock:
            try:
                busy = self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error:
                return False
            if self._hist_rows and not self._closed:
                with suppress(SpoolError):
                    self._drop_history(_RELIEVE_HISTORY_ROWS)
                    with suppress(sqlite3.Error):
                        self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return not busy

    def _drop_history(self, max_rows: int) -> None:
        """Delete up to `max_rows` oldest history rows, counted as history evictions (lock held)."""
        need = -(-self._hist_bytes * max_rows // self._hist_rows)  # their share of the bytes
        with self._transaction() as conn:
            n, size = hist.delete_oldest(
                conn, "history", "1", need, self._hist_rows, self._hist_bytes
            )
            self._bump(conn, "history_evicted_total", n)
        self._after_history(-n, -size, evicted=n)

    def _after_history(self, rows: int, nbytes: int, evicted: int = 0) -> None:
        self._hist_rows += rows
        self._hist_bytes += nbytes
        self._counters["history_evicted_total"] += evicted

    # ---------------------------------------------------------------- writes

    def commit_batch(
        self,
        rows: Sequence[SpoolRow],
        dead: Sequence[DeadLetter] = (),
        audit: Sequence[AuditRow] = (),
    ) -> CommitResult:
        """Store `rows`, `dead` and `audit` in ONE transaction; past max_bytes, evict history
        first, then telemetry.

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
                outbox.insert_rows(conn, rows)
                dead_evicted = self._insert_dead(conn, [clip_dead_letter(d) for d in dead])
                if audit:
                    conn.executemany(
                        "INSERT INTO audit (ts_ms, incident, record) VALUES (?, ?, ?)", audit
                    )
                h_evicted, h_freed, evicted, freed = self._evict(
                    conn, sum(bytes_now.values()), rows_now[_TELEMETRY], bytes_now[_TELEMETRY]
                )
            rows_now[_TELEMETRY] -= evicted
            bytes_now[_TELEMETRY] -= freed
            self._rows, self._bytes = rows_now, bytes_now
            self._after_dead(len(dead), dead_evicted)
            self._after_history(-h_evicted, -h_freed, evicted=h_evicted)
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
        self, conn: sqlite3.Connection, outbox_bytes: int, tel_rows: int, tel_bytes: int
    ) -> tuple[int, int, int, int]:
        """Over max_bytes (outbox + history), delete the oldest history, then the oldest
        telemetry, until under EVICT_TO * max_bytes; (history rows, bytes, telemetry rows,
        bytes) freed, counted in the same transaction."""
        total = outbox_bytes + self._hist_bytes
        if total <= self.max_bytes:
            return 0, 0, 0, 0
        need = total - int(self.max_bytes * EVICT_TO)
        h_rows, h_freed = hist.delete_oldest(
            conn, "history", "1", need, self._hist_rows, self._hist_bytes
        )
        rows, freed = hist.delete_oldest(
            conn, "outbox", "cls = 0", need - h_freed, tel_rows, tel_bytes
        )
        if h_rows:
            self._bump(conn, "history_evicted_total", h_rows)
        if rows:
            self._bump(conn, "evicted_total", rows)
        return h_rows, h_freed, rows, freed

    def _bump(self, conn: sqlite3.Connection, name: str, by: int) -> None:
        conn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (by, name))

    def _forget(self, gone: dict[int, tuple[int, int, int]]) -> None:
        for cls, size, _ in gone.values():
            self._rows[cls] -= 1
            self._bytes[cls] -= size

    def mark_forwarded(self, ids: Sequence[int]) -> None:
        """The database accepted these rows: delete them from the outbox, moving those the
        history keeps into it (one transaction).

        When the move fails (a full disk: the history rows need pages a delete does not),
        the rows are deleted without it, the lost history counted as evicted: history never
        keeps the outbox from draining.
        """
        if not ids:
            return
        last, self._last_batch = self._last_batch, None
        if last is not None and list(ids) == last[0]:
            where, params = outbox.where_upto(last[1])  # exactly that batch: by id range
        else:
            where, params = outbox.where_ids(ids)
        if self.history_days <= 0:
            self._forwarded(where, params, keep=None)
            return
        try:
            self._forwarded(where, params, keep=True)
        except SpoolError:
            self._forwarded(where, params, keep=False)

    def _forwarded(self, where: str, params: Sequence[object], keep: bool | None) -> None:
        with self._wlock:
            with self._transaction() as conn:
                gone, (h_rows, h_bytes) = outbox.delete_forwarded(conn, where, params, keep)
                n_gone = sum(count for _, count, _ in gone)
                self._bump(conn, "forwarded_total", n_gone)
                if keep is False and h_rows:
                    self._bump(conn, "history_evicted_total", h_rows)
            for cls, count, size in gone:
                self._rows[cls] -= count
                self._bytes[cls] -= size
            self._after_forwarded(n_gone, keep, h_rows, h_bytes)

    def _after_forwarded(self, rows: int, keep: bool | None, h_rows: int, h_bytes: int) -> None:
        if keep:
            self._after_history(h_rows, h_bytes)
        elif keep is False:
            self._after_history(0, 0, evicted=h_rows)
        self._counters["forwarded_total"] += rows

    def dead_letter_lines(self, rows: Sequence[tuple[int, str, str]], stage: str) -> None:
        """Move outbox rows `(id, line, reason)` the database rejected to the dead letters."""
        if not rows:
            return
        now = self._clock.wall_ms()
        with self._wlock:
            with self._transaction() as conn:
                gone = outbox.delete_ids(conn, [r[0] for r in rows])
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
        """Drop telemetry received more than max_age_h ago (by the injected clock), and history
        points older than history_days; returns the telemetry rows dropped."""
        self._prune_history(self._clock.wall_ms() - round(self.history_days * _DAY_MS))
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

    def _prune_history(self, cutoff_ms: int) -> None:
        while self._hist_rows:
            with self._wlock:
                with self._transaction() as conn:
                    n, size = hist.prune_chunk(conn, cutoff_ms, _PRUNE_CHUNK)
                self._after_history(-n, -size)
            if n < _PRUNE_CHUNK:
                return

    # ---------------------------------------------------------------- reads

    def next_batch(self, limit: int) -> list[OutboxRow]:
        """The oldest unforwarded rows: alarms and events first, then telemetry, each by age.

        The forwarder is the only consumer: it calls `mark_forwarded` (or
        `dead_letter_lines`) before asking again. Always empty when `keep_history`.
        """
        if limit <= 0 or self.keep_history:
            return []
        with self._reading() as conn:
            batch = outbox.select_batch(conn, limit)
        self._last_batch = ([row.id for row in batch], outbox.last_ids(batch))
        return batch

    def history(self, measurement_prefix: str, since_ms: int, limit: int) -> list[str]:
        """Lines (outbox and history) whose text starts with the prefix and ts_ms >= since_ms.

        The newest `limit` of them, returned oldest first. A scan: for one measurement in a
        time range, `lines` reads the history through its index.
        """
        if limit <= 0:
            return []
        where = "ts_ms >= ? AND substr(line, 1, ?) = ?"
        args = (since_ms, len(measurement_prefix), measurement_prefix)
        with self._reading(api=True) as conn:
            lines = conn.execute(
                f"SELECT line FROM (SELECT line, ts_ms, src, id FROM (SELECT line, ts_ms,"
                f" 0 AS src, id FROM history WHERE {where} UNION ALL SELECT line, ts_ms, 1, id"
                f" FROM outbox WHERE {where}) ORDER BY ts_ms DESC, src DESC, id DESC LIMIT ?)"
                " ORDER BY ts_ms, src, id",
                (*args, *args, limit),
            ).fetchall()
        return [line for (line,) in lines]

    def lines(self, measurement: str, since_ms: int, until_ms: int, limit: int) -> list[str]:
        """Lines of exactly `measurement` with since_ms <= ts < until_ms, outbox and history,
        oldest first, at most `limit` (the reports' and charts' read path)."""
        with self._reading(api=True) as conn:
            return hist.select_lines(conn, measurement, since_ms, until_ms, limit)

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
                history_rows=self._hist_rows,
                history_bytes=self._hist_bytes,
                history_evicted_total=counters["history_evicted_total"],
            )
