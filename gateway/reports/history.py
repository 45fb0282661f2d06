"""Where reports read stored points and audit records: the spool file, or a live `Spool`.

Both readers give the same thing: the points of one measurement in a time range, oldest
first, from the outbox and the history table (what was forwarded; `gateway.spool.history`),
duplicates merged as InfluxDB merges them. `SpoolFile` opens the spool read-only (SQLite
WAL lets it read beside a running gateway); `LiveSpool` wraps the gateway's own `Spool` for
the API. `gateway.reports.influx.InfluxV1History` reads the same points from InfluxDB 1.x.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final, Protocol

from gateway.errors import SpoolError
from gateway.reports.lineparse import Point, parse_lines
from gateway.spool.history import select_lines
from gateway.spool.schema import connect, describe

LIVE_LIMIT: Final = 5_000_000  # lines per measurement and range read from a spool


class History(Protocol):
    """Stored points of one measurement with `since_ms <= ts < until_ms`, oldest first."""

    def points(self, measurement: str, since_ms: int, until_ms: int) -> list[Point]: ...


class SpoolFile:
    """A read-only view of a spool file (the CLI's reader; the gateway may be running)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SpoolError(
                f"spool {self.path}: no such file; check spool.path in the config"
                " (the gateway creates it on its first start)"
            )
        try:
            self._conn = connect(self.path, "normal", read_only=True)
            tables = {
                name
                for (name,) in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        except sqlite3.Error as exc:
            raise SpoolError(describe(self.path, exc)) from exc
        if not {"outbox", "audit"} <= tables:
            self._conn.close()
            raise SpoolError(f"spool {self.path}: not a gateway spool (tables {sorted(tables)})")
        self._history = "history" in tables  # a version-1 file (older gateway) has none

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(describe(self.path, exc)) from exc

    def points(self, measurement: str, since_ms: int, until_ms: int) -> list[Point]:
        """Points of `measurement` in [since_ms, until_ms), oldest first (outbox and history)."""
        try:
            lines = select_lines(
                self._conn,
                measurement,
                since_ms,
                until_ms,
                LIVE_LIMIT,
                with_history=self._history,
            )
        except sqlite3.Error as exc:
            raise SpoolError(describe(self.path, exc)) from exc
        return merge_points(parse_lines(lines, measurement))

    def audit_records(self, since_ms: int = 0, until_ms: int | None = None) -> list[str]:
        """Audit records (JSON text) stored in [since_ms, until_ms), in the order stored."""
        end = until_ms if until_ms is not None else 2**62
        rows = self._rows(
            "SELECT record FROM audit WHERE ts_ms >= ? AND ts_ms < ? ORDER BY id", (since_ms, end)
        )
        return [r[0] for r in rows]

    def incident_records(self, incident_ids: list[str]) -> list[str]:
        """Every audit record of the given incidents, in the order stored."""
        if not incident_ids:
            return []
        marks = ",".join("?" * len(incident_ids))
        rows = self._rows(
            f"SELECT record FROM audit WHERE incident IN ({marks}) ORDER BY id",
            tuple(incident_ids),
        )
        return [r[0] for r in rows]


class _LinesSource(Protocol):
    def lines(self, measurement: str, since_ms: int, until_ms: int, limit: int) -> list[str]: ...


class LiveSpool:
    """`History` over the running gateway's `Spool` (its API reader connection)."""

    def __init__(self, spool: _LinesSource, limit: int = LIVE_LIMIT) -> None:
        self._spool = spool
        self._limit = limit

    def points(self, measurement: str, since_ms: int, until_ms: int) -> list[Point]:
        """Points of `measurement` in [since_ms, until_ms), oldest first (outbox and history)."""
        lines = self._spool.lines(measurement, since_ms, until_ms, self._limit)
        return merge_points(parse_lines(lines, measurement))


def merge_points(points: list[Point]) -> list[Point]:
    """One point per (measurement, tags, time), as InfluxDB stores them: a later write of the
    same point adds or replaces fields. The order of first occurrence is kept.

    A spool holds such repeats after a replay (a restart re-delivers what was not yet
    acknowledged); the history and the outbox may each hold one copy.
    """
    merged: dict[tuple[str, frozenset[tuple[str, str]], int], Point] = {}
    for p in points:
        key = (p.measurement, frozenset(p.tags.items()), p.ts_ms)
        first = merged.get(key)
        if first is None:
            merged[key] = p
        elif p.fields != first.fields:
            merged[key] = Point(p.measurement, p.tags, {**first.fields, **p.fields}, p.ts_ms)
    return list(merged.values())
