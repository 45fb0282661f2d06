"""The spool against a plain-Python reference of its rules, over random operation sequences."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.spool import Spool, SpoolRow

T0 = 1_795_475_306_083
HOUR_MS = 3_600_000


@dataclass
class Reference:
    """What the spool must hold: rows in id order and the counters, by the documented rules."""

    max_bytes: int
    rows: list[tuple[int, int, int, str]] = field(default_factory=list)  # id, cls, received, line
    next_id: int = 1
    evicted: int = 0
    forwarded: int = 0
    pruned: int = 0

    def size(self) -> int:
        return sum(len(r[3].encode()) for r in self.rows)

    def commit(self, new: list[SpoolRow]) -> int:
        for new_row in new:
            self.rows.append((self.next_id, new_row.cls, new_row.received_ms, new_row.line))
            self.next_id += 1
        if self.size() <= self.max_bytes:
            return 0
        need, freed, gone = self.size() - int(self.max_bytes * 0.9), 0, set()
        for r in self.rows:
            if freed >= need:
                break
            if r[1] == 0:
                gone.add(r[0])
                freed += len(r[3].encode())
        self.rows = [r for r in self.rows if r[0] not in gone]
        self.evicted += len(gone)
        return len(gone)

    def order(self) -> list[tuple[int, int, int, str]]:
        return [r for r in self.rows if r[1]] + [r for r in self.rows if not r[1]]

    def forward(self, k: int) -> None:
        self.forward_ids({r[0] for r in self.order()[:k]})

    def forward_ids(self, ids: set[int]) -> None:
        """Those of `ids` still held are forwarded (others were pruned or evicted)."""
        before = len(self.rows)
        self.rows = [r for r in self.rows if r[0] not in ids]
        self.forwarded += before - len(self.rows)

    def prune(self, cutoff_ms: int) -> int:
        before = len(self.rows)
        self.rows = [r for r in self.rows if r[1] or r[2] >= cutoff_ms]
        self.pruned += before - len(self.rows)
        return before - len(self.rows)


# Repeated snippets: lines of 1-400 characters without asking hypothesis for long texts.
lines = st.builds(
    lambda part, n: part * n,
    st.text(st.sampled_from("abc=, 1楼火\x00"), min_size=1, max_size=10),
    st.integers(1, 40),
)
new_rows = st.lists(
    st.tuples(st.sampled_from([0, 0, 0, 1, 2]), st.integers(0, 2 * HOUR_MS), lines),
    min_size=1,
    max_size=30,
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), new_rows),
        st.tuples(st.just("forward"), st.integers(0, 40)),
        # a batch read, then rows committed, evicted and pruned before it is marked forwarded
        st.tuples(
            st.just("forward_late"),
            st.tuples(st.integers(0, 40), new_rows, st.integers(0, HOUR_MS)),
        ),
        # half a batch marked forwarded (the forwarder's halves after a rejected write)
        st.tuples(st.just("forward_half"), st.integers(0, 40)),
        st.tuples(st.just("prune"), st.integers(0, 2 * HOUR_MS)),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(max_bytes=st.integers(200, 4000), steps=ops)
def test_spool_matches_the_reference_model(max_bytes: int, steps: list[tuple[str, object]]) -> None:
    clock = ManualClock(wall_ms=T0)
    ref = Reference(max_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spool.db"
        spool = Spool(path, max_bytes, max_age_h=1, clock=clock)
        try:
            for op, arg in steps:
                if op == "commit":
                    rows = [SpoolRow(c, T0, clock.wall_ms() - age, ln) for c, age, ln in arg]  # type: ignore[attr-defined]
                    assert spool.commit_batch(rows).evicted == ref.commit(rows)
                elif op == "forward":
                    spool.mark_forwarded([r.id for r in spool.next_batch(arg)])  # type: ignore[arg-type]
                    ref.forward(arg)  # type: ignore[arg-type]
                elif op == "forward_late":
                    k, new, advance = arg  # type: ignore[misc]
                    ids = [r.id for r in spool.next_batch(k)]
                    ref_ids = {r[0] for r in ref.order()[:k]}
                    rows = [SpoolRow(c, T0, clock.wall_ms() - age, ln) for c, age, ln in new]
                    assert spool.commit_batch(rows).evicted == ref.commit(rows)
                    clock.advance(advance / 1000)
                    assert spool.prune() == ref.prune(clock.wall_ms() - HOUR_MS)
                    spool.mark_forwarded(ids)
                    ref.forward_ids(ref_ids)
                elif op == "forward_half":
                    ids = [r.id for r in spool.next_batch(arg)]  # type: ignore[arg-type]
                    spool.mark_forwarded(ids[: len(ids) // 2])
                    ref.forward_ids(set(ids[: len(ids) // 2]))
                elif op == "prune":
                    clock.advance(arg / 1000)  # type: ignore[operator]
                    assert spool.prune() == ref.prune(clock.wall_ms() - HOUR_MS)
                else:
                    spool.close()
                    spool = Spool(path, max_bytes, max_age_h=1, clock=clock)
                got = spool.next_batch(100_000)
                assert [(r.id, r.cls, r.received_ms, r.line) for r in got] == ref.order()
                stats = spool.stats()
                assert stats.rows == len(ref.rows)
                assert stats.bytes == ref.size()
                assert stats.rows_by_class == {
                    c: sum(r[1] == c for r in ref.rows) for c in (0, 1, 2)
                }
                assert stats.oldest_received_ms == min((r[2] for r in ref.rows), default=None)
                assert (stats.evicted_total, stats.forwarded_total, stats.pruned_total) == (
                    ref.evicted,
                    ref.forwarded,
                    ref.pruned,
                )
        finally:
            spool.close()
