"""Spool behaviour: priority order, persistence, eviction, pruning, dead letters, history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.decode.message import SpoolClass
from gateway.errors import SpoolError
from gateway.spool import (
    DEAD_LETTER_PAYLOAD_MAX,
    MAX_DEAD_LETTERS,
    DeadLetter,
    Spool,
    SpoolRow,
)

T0 = 1_795_475_306_083
TEL, EVT, ALM = SpoolClass.TELEMETRY, SpoolClass.EVENT, SpoolClass.ALARM


def row(cls: int, n: int, received_ms: int = T0, measurement: str = "m") -> SpoolRow:
    return SpoolRow(cls, T0 + n, received_ms, f"{measurement},n={n} v={cls}i {(T0 + n) * 10**6}")


def utf8_len(rows: list[SpoolRow]) -> int:
    return sum(len(r.line.encode()) for r in rows)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_ms=T0)


@pytest.fixture
def spool(tmp_path: Path, clock: ManualClock) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", max_bytes=1 << 30, max_age_h=1, clock=clock)
    yield s
    s.close()


def test_next_batch_returns_alarms_and_events_before_telemetry_oldest_first(spool: Spool) -> None:
    rows = [row(TEL, 0), row(ALM, 1), row(TEL, 2), row(EVT, 3), row(ALM, 4), row(TEL, 5)]
    spool.commit_batch(rows[:3])
    spool.commit_batch(rows[3:])

    batch = spool.next_batch(10)

    assert [r.line for r in batch] == [rows[i].line for i in (1, 3, 4, 0, 2, 5)]
    assert [r.cls for r in batch] == [ALM, EVT, ALM, TEL, TEL, TEL]
    assert spool.next_batch(2) == batch[:2]
    assert [r.line for r in spool.next_batch(4)] == [rows[i].line for i in (1, 3, 4, 0)]


def test_next_batch_prefers_old_events_to_new_telemetry_without_returning_forwarded(
    spool: Spool,
) -> None:
    spool.commit_batch([row(TEL, i) for i in range(5)])
    spool.commit_batch([row(EVT, 10)])
    first = spool.next_batch(3)
    assert [r.cls for r in first] == [EVT, TEL, TEL]

    spool.mark_forwarded([r.id for r in first])

    rest = spool.next_batch(100)
    assert [r.line for r in rest] == [row(TEL, i).line for i in (2, 3, 4)]
    assert {r.id for r in rest}.isdisjoint(r.id for r in first)
    stats = spool.stats()
    assert stats.forwarded_total == 3
    assert stats.rows == 3
    assert stats.rows_by_class == {0: 3, 1: 0, 2: 0}


def test_mark_forwarded_ignores_unknown_ids_in_the_count(spool: Spool) -> None:
    spool.commit_batch([row(TEL, 0), row(TEL, 1)])
    ids = [r.id for r in spool.next_batch(10)]
    spool.mark_forwarded([*ids, 999_999])
    spool.mark_forwarded(ids)
    assert spool.stats().forwarded_total == 2
    assert spool.stats().rows == 0
    assert spool.stats().bytes == 0


def test_rows_bytes_and_counters_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    rows = [row(TEL, 1), row(EVT, 2), row(ALM, 3), SpoolRow(EVT, T0, T0, 'ev,zone=三楼 t="火警" 1')]
    s = Spool(path, max_bytes=1 << 30, max_age_h=1)
    s.commit_batch(rows, [DeadLetter(T0, "a/b", b"{", "bad json", "decode")])
    s.mark_forwarded([s.next_batch(1)[0].id])
    before = s.stats()
    s.close()

    s = Spool(path, max_bytes=1 << 30, max_age_h=1)
    after = s.stats()
    s.close()

    assert after == before
    assert after.bytes == utf8_len([rows[0], rows[2], rows[3]])  # the event n=2 was forwarded
    assert after.rows_by_class == {0: 1, 1: 1, 2: 1}
    assert (after.forwarded_total, after.dead_letters_total, after.dead_letters) == (1, 1, 1)


def test_stats_bytes_count_utf8_bytes_not_characters(spool: Spool) -> None:
    rows = [SpoolRow(EVT, T0, T0, 'alert,zone=三楼 text="疏散" 1'), row(TEL, 1)]
    spool.commit_batch(rows)
    assert spool.stats().bytes == utf8_len(rows)
    assert spool.stats().bytes > sum(len(r.line) for r in rows)


def test_eviction_drops_oldest_telemetry_until_under_ninety_percent(tmp_path: Path) -> None:
    tel = [row(TEL, i) for i in range(1000)]
    keep = [row(EVT, 5000 + i) for i in range(50)] + [row(ALM, 6000 + i) for i in range(50)]
    max_bytes = utf8_len(tel) // 2
    s = Spool(tmp_path / "s.db", max_bytes=max_bytes, max_age_h=1)

    results = [
        s.commit_batch(tel[i : i + 100] + keep[i // 10 : i // 10 + 10]) for i in range(0, 1000, 100)
    ]

    stats = s.stats()
    remaining = [r.line for r in s.next_batch(10_000) if r.cls == TEL]
    evicted = sum(r.evicted for r in results)
    assert evicted > 0
    assert evicted == stats.evicted_total == 1000 - len(remaining)
    assert remaining == [r.line for r in tel[evicted:]]  # exactly the oldest ones went
    assert stats.rows_by_class[EVT] == 50 and stats.rows_by_class[ALM] == 50
    assert stats.bytes <= max_bytes
    assert stats.bytes == utf8_len(tel[evicted:]) + utf8_len(keep)
    s.close()
    reopened = Spool(tmp_path / "s.db", max_bytes=max_bytes, max_age_h=1)
    assert reopened.stats().evicted_total == evicted
    assert reopened.stats().bytes == stats.bytes
    reopened.close()


def test_alarms_and_events_are_never_evicted_even_over_the_bound(tmp_path: Path) -> None:
    keep = [row(ALM if i % 2 else EVT, i) for i in range(400)]
    max_bytes = utf8_len(keep) // 4
    s = Spool(tmp_path / "s.db", max_bytes=max_bytes, max_age_h=1)
    s.commit_batch(keep[:200])
    result = s.commit_batch([row(TEL, 1000 + i) for i in range(100)] + keep[200:])

    assert result.evicted == 100  # the telemetry of this very batch: nothing else may go
    stats = s.stats()
    assert stats.rows == 400
    assert stats.bytes == utf8_len(keep) > max_bytes
    assert sorted(r.line for r in s.next_batch(1000)) == sorted(r.line for r in keep)
    s.close()


def test_prune_drops_only_telemetry_older_than_max_age(spool: Spool, clock: ManualClock) -> None:
    hour = 3_600_000
    old_tel = [row(TEL, i, received_ms=T0 - hour - 1 - i) for i in range(5)]
    fresh_tel = [row(TEL, 10 + i, received_ms=T0 - hour + 1 + i) for i in range(3)]
    old_events = [row(EVT, 20, received_ms=T0 - 5 * hour), row(ALM, 21, received_ms=T0 - 5 * hour)]
    spool.commit_batch(fresh_tel[:1] + old_tel + old_events + fresh_tel[1:])

    assert spool.prune() == 5
    assert sorted(r.line for r in spool.next_batch(100)) == sorted(
        r.line for r in fresh_tel + old_events
    )
    assert spool.stats().pruned_total == 5
    assert spool.stats().bytes == utf8_len(fresh_tel + old_events)

    clock.advance(0.001)  # the first fresh row is now exactly max_age old: kept
    assert spool.prune() == 0
    clock.advance(0.001)
    assert spool.prune() == 1
    assert spool.stats().oldest_received_ms == T0 - 5 * hour


def test_dead_letters_keep_topic_payload_reason_and_stage_newest_first(spool: Spool) -> None:
    dead = [
        DeadLetter(T0, "community/s/b/smoke/d1/telemetry", b"\xff\x00", "not UTF-8", "decode"),
        DeadLetter(T0 + 1, "community/s/b/oven/d2/event", b"{}", "unknown kind 'oven'", "topic"),
    ]
    result = spool.commit_batch([row(TEL, 1)], dead)

    assert result.dead == 2
    got = spool.dead_letters()
    assert [(d.received_ms, d.topic, d.payload, d.reason, d.stage) for d in got] == [
        (*dead[1][:4], dead[1].stage),
        (*dead[0][:4], dead[0].stage),
    ]
    assert spool.dead_letters(limit=1)[0].topic == dead[1].topic
    assert spool.stats().dead_letters_total == 2


def test_long_dead_letter_payloads_are_truncated_and_say_so(spool: Spool) -> None:
    payload = bytes(range(256)) * 100
    spool.commit_batch([], [DeadLetter(T0, "t", payload, "too big", "decode")])
    (got,) = spool.dead_letters()
    assert got.payload == payload[:DEAD_LETTER_PAYLOAD_MAX]
    assert got.reason.startswith("too big")
    assert str(len(payload)) in got.reason


def test_dead_letters_are_bounded_to_the_newest(spool: Spool) -> None:
    extra = 7
    dead = [
        DeadLetter(T0 + i, f"t/{i}", b"x", "r", "decode") for i in range(MAX_DEAD_LETTERS + extra)
    ]
    spool.commit_batch([], dead[:MAX_DEAD_LETTERS])
    spool.commit_batch([], dead[MAX_DEAD_LETTERS:])

    stats = spool.stats()
    assert stats.dead_letters == MAX_DEAD_LETTERS
    assert stats.dead_letters_total == MAX_DEAD_LETTERS + extra
    assert stats.dead_letters_evicted_total == extra
    newest = spool.dead_letters(limit=MAX_DEAD_LETTERS + extra)
    assert len(newest) == MAX_DEAD_LETTERS
    assert newest[0].topic == f"t/{MAX_DEAD_LETTERS + extra - 1}"
    assert newest[-1].topic == f"t/{extra}"


def test_dead_letter_lines_moves_rejected_rows_out_of_the_outbox(spool: Spool) -> None:
    spool.commit_batch([row(TEL, 1, received_ms=T0 - 50), row(EVT, 2), row(TEL, 3)])
    bad = spool.next_batch(10)[1]  # telemetry n=1
    spool.dead_letter_lines([(bad.id, bad.line, "field type conflict")], stage="forward")

    assert [r.line for r in spool.next_batch(10)] == [row(EVT, 2).line, row(TEL, 3).line]
    (dead,) = spool.dead_letters()
    assert (dead.stage, dead.reason, dead.payload) == (
        "forward",
        "field type conflict",
        bad.line.encode(),
    )
    assert dead.received_ms == T0 - 50
    stats = spool.stats()
    assert (stats.rows, stats.forwarded_total, stats.dead_letters_total) == (2, 0, 1)
    assert stats.bytes == utf8_len([row(EVT, 2), row(TEL, 3)])


def test_history_returns_newest_matching_lines_oldest_first(spool: Spool) -> None:
    rows = [row(TEL, i, measurement="smoke" if i % 2 else "access") for i in range(10)]
    spool.commit_batch(rows)

    got = spool.history("smoke", since_ms=T0 + 2, limit=3)

    assert got == [rows[5].line, rows[7].line, rows[9].line]
    assert spool.history("smo", since_ms=T0, limit=100) == [rows[i].line for i in (1, 3, 5, 7, 9)]
    assert spool.history("heat", since_ms=T0, limit=100) == []


def test_keep_history_spool_never_hands_rows_to_a_forwarder(tmp_path: Path) -> None:
    s = Spool(tmp_path / "h.db", max_bytes=1 << 30, max_age_h=1, keep_history=True)
    s.commit_batch([row(TEL, 1), row(ALM, 2)])
    assert s.next_batch(10) == []
    assert s.history("m", since_ms=0, limit=10) == [row(TEL, 1).line, row(ALM, 2).line]
    s.close()


def test_empty_commit_is_a_no_op(spool: Spool) -> None:
    result = spool.commit_batch([])
    assert (result.rows, result.dead, result.evicted) == (0, 0, 0)
    assert spool.stats().rows == 0


def test_invalid_class_is_a_spool_error_and_stores_nothing(spool: Spool) -> None:
    with pytest.raises(SpoolError, match=r"spool\.db.*CHECK constraint"):
        spool.commit_batch([row(TEL, 1), SpoolRow(7, T0, T0, "m v=1i 1")])
    assert spool.stats().rows == 0
    assert spool.next_batch(10) == []


WEIRD_LINES = [
    "emoji 🔥 楼",
    'quote " back \\ slash',
    "\n\r\t",
    "\u2028\u2029",
    "x" * 100_000,
    "",
    "the text \\u0000",
]


@pytest.mark.parametrize("with_nul", [False, True], ids=["one-statement", "row-by-row"])
def test_any_line_text_comes_back_exactly(spool: Spool, with_nul: bool) -> None:
    # Batches go in and out as one JSON text; one holding a NUL goes in row by row.
    lines = [*WEIRD_LINES, "a\x00b"] if with_nul else WEIRD_LINES
    rows = [SpoolRow(i % 3, T0 + i, T0, line) for i, line in enumerate(lines)]
    spool.commit_batch(rows)
    got = spool.next_batch(100)
    assert sorted(r.line for r in got) == sorted(lines)
    assert [r.id for r in got if r.cls == 0] == sorted(r.id for r in got if r.cls == 0)
    assert spool.stats().bytes == utf8_len(rows)
    spool.mark_forwarded([r.id for r in got])
    assert spool.stats().rows == 0
