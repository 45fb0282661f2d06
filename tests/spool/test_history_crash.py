"""kill -9 while forwarding: every row is in the outbox or in the history, exactly once."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path

from gateway.spool import Spool
from tests.spool._history_crash_child import ROWS
from tests.spool.killing import run_and_kill

CHILD = Path(__file__).with_name("_history_crash_child.py")
KILLS = 8
LINE = re.compile(r"occupancy,b=(\d+),i=(\d+),")


def run_once(path: Path, first: int, sync: str, delay_s: float) -> int:
    """Start the child, SIGKILL it after `delay_s`; the last batch it reported forwarded."""
    reported = run_and_kill(CHILD, [str(path), str(first), sync], delay_s)
    return reported[-1] if reported else first - 1


def test_kill_minus_nine_while_forwarding_moves_each_row_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    rng = random.Random(20261125)
    last = -1
    deadline = time.monotonic() + 40
    for kill in range(KILLS):
        last = run_once(path, last + 1, ("full", "normal")[kill % 2], rng.uniform(0.05, 0.4))
        spool = Spool(path, max_bytes=1 << 30, max_age_h=1e6)
        try:
            outbox = [r.line for r in spool.next_batch(10_000_000)]
            stored = spool.lines("occupancy", 0, 2**62, 10_000_000)  # outbox and history
            stats = spool.stats()
        finally:
            spool.close()
        rows = Counter((int(m[1]), int(m[2])) for x in stored if (m := LINE.match(x)))
        assert set(rows.values()) <= {1}  # never in both tables, never twice
        assert set(outbox) <= set(stored)
        batches = Counter(b for b, _ in rows)
        committed = max(batches, default=-1)
        assert committed >= last
        assert batches == dict.fromkeys(range(committed + 1), ROWS)  # nothing lost or partial
        # The counters are written in the transactions that move the rows.
        assert stats.history_rows == len(stored) - len(outbox) == stats.forwarded_total
        assert stats.rows == len(outbox)
        last = committed
        assert time.monotonic() < deadline, f"only {kill + 1} kills in the time bound"
    assert last > KILLS
