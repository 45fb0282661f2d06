"""The spool with its history table against a plain-Python reference of the documented rules.

Rules (docs/spool.md): forwarding moves the rows of the history measurements into the
history, in id order; over `max_bytes` (outbox + history) the oldest history goes first,
then the oldest telemetry, down to 90 %; `prune` drops telemetry older than `max_age_h`
(receive time) and history older than `history_days` (point time). The SQL rule that picks
the kept rows is checked against a line-by-line reading of it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.forward.lineproto import encode_point
from gateway.spool import Spool, SpoolRow
from gateway.spool.history import KEPT_EVENTS, KEPT_MEASUREMENTS

T0 = 1_795_475_306_083
HOUR_MS = 3_600_000
HISTORY_DAYS = 1 / 24  # an hour, so pruning matters within the generated times


def kept(line: str) -> bool:
    """The rule read off the line (the reference for the SQL expression)."""
    head = line.split(" ", 1)[0]  # the generated lines have no escaped spaces
    name, *tags = head.split(",")
    if name in KEPT_MEASUREMENTS:
        return True
    return any(f"event={e}" in tags for e in KEPT_EVENTS.get(name, ()))


def size(line: str) -> int:
    return len(line.encode())


@dataclass
class Reference:
    max_bytes: int
    rows: list[tuple[int, int, int, str]] = field(default_factory=list)  # id, cls, received, line
    hist: list[tuple[int, str]] = field(default_factory=list)  # ts, line, oldest forwarded first
    next_id: int = 1
    evicted: int = 0
    hist_evicted: int = 0

    def commit(self, new: list[SpoolRow]) -> int:
        for r in new:
            self.rows.append((self.next_id, r.cls, r.received_ms, r.line))
            self.next_id += 1
        total = sum(size(r[3]) for r in self.rows) + sum(size(h[1]) for h in self.hist)
        if total <= self.max_bytes:
            return 0
        need = total - int(self.max_bytes * 0.9)
        while self.hist and need > 0:
            need -= size(self.hist.pop(0)[1])
            self.hist_evicted += 1
        gone = set()
        for r in self.rows:
            if need <= 0:
                break
            if r[1] == 0:
                gone.add(r[0])
                need -= size(r[3])
        self.rows = [r for r in self.rows if r[0] not in gone]
        self.evicted += len(gone)
        return len(gone)

    def order(self) -> list[tuple[int, int, int, str]]:
        return [r for r in self.rows if r[1]] + [r for r in self.rows if not r[1]]

    def forward(self, k: int, ts_of: dict[str, int]) -> None:
        self.forward_ids({r[0] for r in self.order()[:k]}, ts_of)

    def forward_ids(self, ids: set[int], ts_of: dict[str, int]) -> None:
        """Those of `ids` still held are forwarded (others were pruned or evicted)."""
        self.hist += [(ts_of[r[3]], r[3]) for r in self.rows if r[0] in ids and kept(r[3])]
        self.rows = [r for r in self.rows if r[0] not in ids]

    def prune(self, now_ms: int) -> int:
        before = len(self.rows)
        self.rows = [r for r in self.rows if r[1] or r[2] >= now_ms - HOUR_MS]
        self.hist = [h for h in self.hist if h[0] >= now_ms - round(HISTORY_DAYS * 86_400_000)]
        return before - len(self.rows)


MEASUREMENTS = ["checkpoint_flow", "occupancy", "alert", "smoke", "camera_event", "camera_event"]
points = st.tuples(
    st.sampled_from([0, 0, 1, 2]),
    st.integers(0, 2 * HOUR_MS),  # age of the point (and of its receipt)
    st.sampled_from(MEASUREMENTS),
    st.sampled_from(["fire", "line_crossing", "smoke"]),
    st.text(st.sampled_from("ab, =楼"), max_size=30),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.lists(points, min_size=1, max_size=20)),
        st.tuples(st.just("forward"), st.integers(0, 30)),
        # a batch read, then rows committed, evicted and pruned before it is marked forwarded
        st.tuples(
            st.just("forward_late"),
            st.tuples(
                st.integers(0, 30),
                st.lists(points, min_size=1, max_size=20),
                st.integers(0, HOUR_MS),
            ),
        ),
        st.tuples(st.just("prune"), st.integers(0, 2 * HOUR_MS)),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(max_bytes=st.integers(300, 6000), steps=ops)
def test_spool_with_history_matches_the_reference_model(
    max_bytes: int, steps: list[tuple[str, object]]
) -> None:
    clock = ManualClock(wall_ms=T0)
    ref = Reference(max_bytes)
    ts_of: dict[str, int] = {}
    serial = iter(range(10**9))

    def open_spool(path: Path) -> Spool:
        return Spool(path, max_bytes, max_age_h=1, clock=clock, history_days=HISTORY_DAYS)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spool.db"
        spool = open_spool(path)
        try:

            def commit(points: list[tuple[int, int, str, str, str]]) -> None:
                rows = []
                for cls, age, name, event, text in points:
                    ts = clock.wall_ms() - age
                    n = next(serial)  # a tag before or after `event`: it may end the tags
                    tags = {"event": event, "az"[n % 2]: str(n)}
                    line = encode_point(name, tags, {"t": text}, ts)
                    ts_of[line] = ts
                    rows.append(SpoolRow(cls, ts, ts, line))
                assert spool.commit_batch(rows).evicted == ref.commit(rows)

            for op, arg in steps:
                if op == "commit":
                    commit(arg)  # type: ignore[arg-type]
                elif op == "forward_late":
                    k, new, advance = arg  # type: ignore[misc]
                    ids = [r.id for r in spool.next_batch(k)]
                    ref_ids = {r[0] for r in ref.order()[:k]}
                    commit(new)
                    clock.advance(advance / 1000)
                    assert spool.prune() == ref.prune(clock.wall_ms())
                    spool.mark_forwarded(ids)
                    ref.forward_ids(ref_ids, ts_of)
                elif op == "forward":
                    spool.mark_forwarded([r.id for r in spool.next_batch(arg)])  # type: ignore[arg-type]
                    ref.forward(arg, ts_of)  # type: ignore[arg-type]
                elif op == "prune":
                    clock.advance(arg / 1000)  # type: ignore[operator]
                    assert spool.prune() == ref.prune(clock.wall_ms())
                else:
                    spool.close()
                    spool = open_spool(path)
                got = spool.next_batch(100_000)
                assert [(r.id, r.cls, r.received_ms, r.line) for r in got] == ref.order()
                stats = spool.stats()
                assert stats.history_rows == len(ref.hist)
                assert stats.history_bytes == sum(size(h[1]) for h in ref.hist)
                assert stats.bytes == sum(size(r[3]) for r in ref.rows)
                assert (stats.evicted_total, stats.history_evicted_total) == (
                    ref.evicted,
                    ref.hist_evicted,
                )
                for name in ("checkpoint_flow", "camera_event"):
                    stored = [(h[0], 0, i, h[1]) for i, h in enumerate(ref.hist)]
                    stored += [(ts_of[r[3]], 1, r[0], r[3]) for r in ref.rows]
                    want = [s[3] for s in sorted(stored) if s[3].startswith(name + ",")]
                    assert spool.lines(name, 0, 2**62, 10_000) == want
        finally:
            spool.close()
