"""The spool's history table: forwarded report points kept, evicted first, pruned by age."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config import parse_config
from gateway.decode.message import SpoolClass
from gateway.errors import ConfigError, SpoolError
from gateway.forward.lineproto import encode_point
from gateway.reports import SpoolFile
from gateway.spool import SCHEMA_VERSION, Spool, SpoolRow

T0 = 1_795_475_306_083
DAY_MS = 86_400_000
TEL, EVT, ALM = SpoolClass.TELEMETRY, SpoolClass.EVENT, SpoolClass.ALARM


def flow(n: int, ts: int = T0) -> SpoolRow:
    line = encode_point(
        "checkpoint_flow",
        {"site": "s", "checkpoint": f"cp-{n}", "window": "1m"},
        {"in": n, "out": 1, "uncertain": False},
        ts + n,
    )
    return SpoolRow(EVT, ts + n, ts + n, line)


def occupancy(n: int, ts: int = T0) -> SpoolRow:
    line = encode_point("occupancy", {"site": "s", "building": "b1"}, {"occupancy": n}, ts + n)
    return SpoolRow(EVT, ts + n, ts + n, line)


def camera(n: int, event: str) -> SpoolRow:
    tags = {"site": "s", "building": "b1", "device": "CAM-1", "event": event, "zone": "z1"}
    line = encode_point("camera_event", tags, {"confidence": 0.9}, T0 + n)
    return SpoolRow(ALM if event in ("fire", "smoke") else EVT, T0 + n, T0 + n, line)


def smoke(n: int, received_ms: int = T0) -> SpoolRow:
    line = encode_point("smoke", {"site": "s", "device": f"SD-{n}"}, {"smoke": 0.01}, T0 + n)
    return SpoolRow(TEL, T0 + n, received_ms, line)


def size(rows: list[SpoolRow]) -> int:
    return sum(len(r.line.encode()) for r in rows)


def forward_all(spool: Spool) -> None:
    while batch := spool.next_batch(7):
        spool.mark_forwarded([r.id for r in batch])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_ms=T0)


@pytest.fixture
def spool(tmp_path: Path, clock: ManualClock) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", max_bytes=1 << 30, max_age_h=1, clock=clock)
    yield s
    s.close()


def test_forwarded_report_points_move_to_history_and_are_never_sent_again(spool: Spool) -> None:
    kept = [flow(1), occupancy(2), camera(3, "fire"), flow(4)]
    dropped = [smoke(5), camera(6, "line_crossing"), smoke(7)]
    spool.commit_batch([kept[0], dropped[0], kept[1], dropped[1], kept[2], dropped[2], kept[3]])

    forward_all(spool)

    stats = spool.stats()
    assert (stats.rows, stats.bytes, stats.forwarded_total) == (0, 0, 7)
    assert (stats.history_rows, stats.history_bytes) == (4, size(kept))
    assert spool.next_batch(100) == []  # history is never handed to the forwarder
    assert spool.lines("checkpoint_flow", T0, T0 + 10, 100) == [kept[0].line, kept[3].line]
    assert spool.lines("camera_event", 0, 2**62, 100) == [kept[2].line]
    assert spool.lines("smoke", 0, 2**62, 100) == []
    assert spool.lines("checkpoint_flow", T0 + 2, T0 + 10, 100) == [kept[3].line]


def test_reads_merge_outbox_and_history_oldest_first(spool: Spool, tmp_path: Path) -> None:
    spool.commit_batch([flow(1), flow(5)])
    forward_all(spool)
    spool.commit_batch([flow(3), flow(7)])  # still waiting in the outbox

    want = [flow(n).line for n in (1, 3, 5, 7)]
    assert spool.lines("checkpoint_flow", 0, 2**62, 100) == want
    assert spool.lines("checkpoint_flow", 0, 2**62, 2) == want[:2]
    assert spool.history("checkpoint_flow,", T0, 3) == want[1:]
    with SpoolFile(tmp_path / "spool.db") as f:
        assert [p.ts_ms for p in f.points("checkpoint_flow", 0, 2**62)] == [
            T0 + n for n in (1, 3, 5, 7)
        ]


def test_history_counts_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    s = Spool(path, max_bytes=1 << 30, max_age_h=1)
    s.commit_batch([flow(1), occupancy(2), smoke(3)])
    forward_all(s)
    before = s.stats()
    s.close()
    s = Spool(path, max_bytes=1 << 30, max_age_h=1)
    assert s.stats() == before
    assert before.history_rows == 2
    s.close()


def test_eviction_drops_history_before_outbox_telemetry(tmp_path: Path) -> None:
    hist = [flow(i) for i in range(200)]
    tel = [smoke(1000 + i) for i in range(200)]
    max_bytes = size(hist) + size(tel) // 2
    s = Spool(tmp_path / "s.db", max_bytes=max_bytes, max_age_h=1)
    s.commit_batch(hist)
    forward_all(s)
    assert s.stats().history_bytes == size(hist)

    first = s.commit_batch(tel[:150])  # over the bound: history alone makes room

    stats = s.stats()
    assert first.evicted == 0 and stats.evicted_total == 0
    assert stats.rows == 150
    gone = stats.history_evicted_total
    assert gone > 0 and stats.history_rows == 200 - gone
    # exactly the oldest forwarded went, just enough to get under 90 % of the bound
    assert s.lines("checkpoint_flow", 0, 2**62, 1000) == [r.line for r in hist[gone:]]
    assert size(hist[gone:]) + size(tel[:150]) <= 0.9 * max_bytes
    assert size(hist[gone - 1 :]) + size(tel[:150]) > 0.9 * max_bytes

    s.commit_batch([r for r in tel[150:]] + [smoke(5000 + i) for i in range(400)])

    stats = s.stats()
    assert stats.history_rows == 0  # all history went before any telemetry
    assert stats.evicted_total > 0
    assert stats.bytes <= max_bytes
    s.close()


def test_prune_drops_history_older_than_history_days(tmp_path: Path) -> None:
    clock = ManualClock(wall_ms=T0)
    s = Spool(tmp_path / "s.db", max_bytes=1 << 30, max_age_h=1, clock=clock, history_days=2)
    old, new = occupancy(0, T0 - 3 * DAY_MS), occupancy(0, T0 - DAY_MS)
    s.commit_batch([old, new, flow(1)])
    forward_all(s)

    assert s.prune() == 0  # the count is of telemetry
    assert s.lines("occupancy", 0, 2**62, 10) == [new.line]
    assert s.stats().history_rows == 2
    clock.advance(DAY_MS / 1000 + 1)
    s.prune()
    assert s.lines("occupancy", 0, 2**62, 10) == []
    assert s.stats().history_rows == 1
    s.close()


def test_history_days_zero_keeps_nothing(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.db", max_bytes=1 << 30, max_age_h=1, history_days=0)
    s.commit_batch([flow(1), occupancy(2)])
    forward_all(s)
    assert (s.stats().rows, s.stats().history_rows) == (0, 0)
    s.close()
    with pytest.raises(SpoolError, match="history_days"):
        Spool(tmp_path / "t.db", max_bytes=1 << 30, max_age_h=1, history_days=-1)


def test_full_disk_still_drains_the_outbox_giving_up_history(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.db", max_bytes=1 << 30, max_age_h=1)
    s.commit_batch([flow(i) for i in range(20)])
    forward_all(s)
    rows = [flow(100 + i) for i in range(3000)]
    s.commit_batch(rows)
    pages = s._w.execute("PRAGMA page_count").fetchone()[0]
    s._w.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL for any new page

    while batch := s.next_batch(1000):
        s.mark_forwarded([r.id for r in batch])

    stats = s.stats()
    assert stats.rows == 0 and stats.forwarded_total == 3020
    # Moves that found no free page gave their history up; freed pages took later ones.
    assert stats.history_evicted_total > 0
    assert stats.history_rows + stats.history_evicted_total == 3020
    oldest = s.lines("checkpoint_flow", 0, 2**62, 1)

    assert s.relieve()  # a full disk also takes back the oldest history

    after = s.stats()
    dropped = stats.history_rows - after.history_rows
    assert 0 < dropped <= 2_000
    assert after.history_evicted_total == stats.history_evicted_total + dropped
    assert s.lines("checkpoint_flow", 0, 2**62, 1) != oldest
    s.close()


V1_SCHEMA = """
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
    cls INTEGER NOT NULL CHECK (cls BETWEEN 0 AND 2), ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL, line TEXT NOT NULL);
CREATE INDEX outbox_cls_id ON outbox (cls, id);
CREATE INDEX outbox_cls_received ON outbox (cls, received_ms);
CREATE TABLE dead_letter (id INTEGER PRIMARY KEY AUTOINCREMENT, received_ms INTEGER NOT NULL,
    stage TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, reason TEXT NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL,
    incident TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX audit_ts ON audit (ts_ms);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('evicted_total', 4), ('dead_letters_total', 0),
    ('forwarded_total', 9), ('pruned_total', 0), ('dead_letters_evicted_total', 0);
PRAGMA user_version = 1;
"""


def test_spool_of_the_previous_schema_opens_and_migrates(tmp_path: Path) -> None:
    """A file written by the previous gateway (schema 1, no history table)."""
    path = tmp_path / "old.db"
    rows = [flow(1), smoke(2), occupancy(3)]
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.executemany(
            "INSERT INTO outbox (cls, ts_ms, received_ms, line) VALUES (?, ?, ?, ?)", rows
        )
        conn.execute("INSERT INTO audit (ts_ms, incident, record) VALUES (1, 'inc-1', '{}')")
    conn.close()

    with SpoolFile(path) as old:  # the report reader reads it as it is, without migrating
        assert [p.ts_ms for p in old.points("checkpoint_flow", 0, 2**62)] == [T0 + 1]

    s = Spool(path, max_bytes=1 << 30, max_age_h=1)
    stats = s.stats()
    assert (stats.rows, stats.evicted_total, stats.forwarded_total) == (3, 4, 9)
    assert stats.history_evicted_total == 0
    assert s.audit_records() == ["{}"]
    forward_all(s)
    assert s.stats().history_rows == 2
    assert s.lines("occupancy", 0, 2**62, 10) == [rows[2].line]
    s.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()
    again = Spool(path, max_bytes=1 << 30, max_age_h=1)
    assert again.stats().history_rows == 2 and again.stats().forwarded_total == 12
    again.close()


@pytest.mark.parametrize("value", ["-1", "4000", '"a month"'])
def test_history_days_out_of_range_is_a_config_error_naming_file_line_and_key(value: str) -> None:
    text = f'[gateway]\nid = "gw-test"\nsite = "test"\n\n[spool]\nhistory_days = {value}\n'
    with pytest.raises(ConfigError, match=r"site\.toml:6: spool\.history_days: "):
        parse_config(text, "site.toml")
    assert parse_config(text.replace(value, "0"), "site.toml").spool.history_days == 0
    assert parse_config(text.split("[spool]", maxsplit=1)[0], "site.toml").spool.history_days == 35
