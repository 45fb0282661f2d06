"""The embedded history: forwarded points that reports and charts need, kept `history_days`.

With InfluxDB configured the outbox empties as the forwarder writes, yet the daily report
and the dashboard's charts still need the day's flows, occupancy, alerts and alarms.
`Spool.mark_forwarded` moves the forwarded rows of the measurements below into the `history`
table in the same transaction as their delete; the forwarder never reads that table.
`Spool.prune` drops history older than `history_days` (by point time); over `max_bytes`,
history goes first (oldest forwarded first), before any outbox telemetry. docs/spool.md.

This module holds the table's SQL; `Spool` holds the byte accounting and the locks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

# Every point of these measurements is kept (what gateway/reports/daily.py and bundle.py
# read, and the head-count series the dashboard charts).
KEPT_MEASUREMENTS: Final = frozenset(
    {
        "checkpoint_flow",
        "occupancy",
        "occupancy_correction",
        "alert",
        "smoke_event",
        "heat_event",
        "callpoint_event",
    }
)
# Of these, only the events named: camera line crossings are already summed in
# `checkpoint_flow`, and would be most of the volume.
KEPT_EVENTS: Final = {"camera_event": frozenset({"fire", "smoke"})}
HISTORY_MEASUREMENTS: Final = KEPT_MEASUREMENTS | KEPT_EVENTS.keys()
LEN: Final = "length(CAST(line AS BLOB))"  # UTF-8 bytes, as for the outbox
_CHUNK_MAX: Final = 100_000
_IN_KEPT: Final = ", ".join(f"'{m}'" for m in sorted(HISTORY_MEASUREMENTS))


def _kept_sql() -> str:
    """An SQL expression of `line`: its measurement when the history keeps the point, else NULL.

    The rule of KEPT_MEASUREMENTS / KEPT_EVENTS, evaluated inside SQLite so that forwarding
    never copies the lines out. Kept names need no escapes: the measurement ends at the
    first `,` or space. A tag value cannot hold `,event=` unescaped, so the event test is a
    substring test (a string field holding `,event=fire,` would keep one point too many).
    """
    arms = []
    for name in sorted(KEPT_MEASUREMENTS):
        n = len(name) + 1
        arms.append(f"WHEN substr(line, 1, {n}) IN ('{name},', '{name} ') THEN '{name}'")
    for name, events in sorted(KEPT_EVENTS.items()):
        tests = " OR ".join(
            f"instr(line, ',event={e}{end}') > 0" for e in sorted(events) for end in ", "
        )
        arms.append(
            f"WHEN substr(line, 1, {len(name) + 1}) = '{name},' AND ({tests}) THEN '{name}'"
        )
    return "CASE " + " ".join(arms) + " END"


_KEPT: Final = _kept_sql()


BY_IDS: Final = "id IN (SELECT value FROM json_each(?))"  # one parameter: a JSON list of ids


def keep(
    conn: sqlite3.Connection, where: str, params: Sequence[object], store: bool = True
) -> tuple[int, int]:
    """Copy the kept ones of the outbox rows matching `where` (e.g. BY_IDS) into history,
    in id order; the caller deletes them from the outbox in the same transaction.

    Returns (rows, bytes) kept; with `store=False` only counts them (what was given up).
    """
    select = (
        f"SELECT m, ts_ms, line FROM (SELECT {_KEPT} AS m, ts_ms, line, id FROM outbox"
        f" WHERE {where}) WHERE m IS NOT NULL ORDER BY id"
    )
    # Counted, then copied, each in one step (a RETURNING row per copy would hand the GIL
    # back and forth per row: gateway/spool/outbox.py).
    rows, nbytes = conn.execute(
        f"SELECT count(*), coalesce(sum({LEN}), 0) FROM ({select})", params
    ).fetchone()
    if store and rows:
        conn.execute(f"INSERT INTO history (measurement, ts_ms, line) {select}", params)
    return int(rows), int(nbytes)


def delete_oldest(
    conn: sqlite3.Connection, table: str, where: str, need: int, rows: int, nbytes: int
) -> tuple[int, int]:
    """Delete the oldest rows (by id) of `table` matching `where` until `need` bytes are freed.

    `rows`/`nbytes`: how many such rows and bytes there are (to size the reads). Reads just
    enough (id, size) pairs to cover `need`, then deletes by id range; returns (rows, bytes).
    """
    evicted = freed = 0
    after_id = -1
    while freed < need and evicted < rows:
        avg = max(1, (nbytes - freed) // max(1, rows - evicted))
        chunk = min(_CHUNK_MAX, (need - freed) // avg + 64)
        sizes = conn.execute(
            f"SELECT id, {LEN} FROM {table} WHERE {where} AND id > ? ORDER BY id LIMIT ?",
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
        conn.execute(f"DELETE FROM {table} WHERE {where} AND id <= ?", (after_id,))
    return evicted, freed


def prune_chunk(conn: sqlite3.Connection, cutoff_ms: int, limit: int) -> tuple[int, int]:
    """Delete up to `limit` history rows with ts_ms < cutoff_ms; (rows, bytes)."""
    sizes = conn.execute(
        f"DELETE FROM history WHERE id IN (SELECT id FROM history WHERE measurement IN"
        f" ({_IN_KEPT}) AND ts_ms < ? LIMIT ?) RETURNING {LEN}",
        (cutoff_ms, limit),
    ).fetchall()
    return len(sizes), sum(s for (s,) in sizes)


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(rows, bytes) in the history table, or (0, 0) for a file without one."""
    if not has_history(conn):
        return 0, 0
    n, size = conn.execute(f"SELECT count(*), coalesce(sum({LEN}), 0) FROM history").fetchone()
    return int(n), int(size)


def has_history(conn: sqlite3.Connection) -> bool:
    """True when the file has the history table (a version-1 spool read in place has not)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history'"
    ).fetchone()
    return row is not None


def select_lines(
    conn: sqlite3.Connection,
    measurement: str,
    since_ms: int,
    until_ms: int,
    limit: int,
    *,
    with_history: bool = True,
) -> list[str]:
    """Lines of exactly `measurement` with since_ms <= ts < until_ms from the outbox and the
    history; oldest first (ties: history, then outbox, each in stored order), at most `limit`.

    The outbox has no time index (it would slow every commit): it is scanned, which is cheap
    while the forwarder keeps it short. History is read through (measurement, ts_ms).
    """
    prefixes = (f"{_escape(measurement)},", f"{_escape(measurement)} ")
    outbox = (
        "SELECT ts_ms, 1 AS src, id, line FROM outbox WHERE ts_ms >= ? AND ts_ms < ?"
        " AND substr(line, 1, ?) IN (?, ?)"
    )
    args: Sequence[object] = (since_ms, until_ms, len(prefixes[0]), *prefixes)
    if with_history:
        outbox = (
            "SELECT ts_ms, 0 AS src, id, line FROM history WHERE measurement = ?"
            " AND ts_ms >= ? AND ts_ms < ? UNION ALL " + outbox
        )
        args = (measurement, since_ms, until_ms, *args)
    rows = conn.execute(
        f"SELECT line FROM ({outbox}) ORDER BY ts_ms, src, id LIMIT ?", (*args, max(0, limit))
    ).fetchall()
    return [line for (line,) in rows]


def _escape(measurement: str) -> str:
    return measurement.replace(",", "\\,").replace(" ", "\\ ")
