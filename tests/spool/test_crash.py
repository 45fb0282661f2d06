"""kill -9 at random moments: every batch reported committed is there whole, none is partial."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path

from gateway.spool import Spool
from tests.spool._crash_child import KEPT, TELEMETRY
from tests.spool.killing import run_and_kill

CHILD = Path(__file__).with_name("_crash_child.py")
KILLS = 12
LINE = re.compile(r"crash,b=(\d+),i=(\d+) ")


def run_child_and_kill(path: Path, first: int, sync: str, max_bytes: int, delay_s: float) -> int:
    """Start the writer, SIGKILL it after `delay_s` of committing; the last batch it reported."""
    reported = run_and_kill(CHILD, [str(path), str(first), sync, str(max_bytes)], delay_s)
    assert reported == list(range(first, first + len(reported)))
    return reported[-1] if reported else first - 1


def test_kill_minus_nine_never_loses_or_splits_a_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    rng = random.Random(20261124)
    max_bytes = 4 * 1024 * 1024  # small enough that many commits also evict telemetry
    last_reported = -1
    deadline = time.monotonic() + 40  # bound the test even on a slow machine
    for kill in range(KILLS):
        sync = ("full", "normal")[kill % 2]
        delay = rng.uniform(0.0, 0.4)
        last_reported = run_child_and_kill(path, last_reported + 1, sync, max_bytes, delay)

        spool = Spool(path, max_bytes=max_bytes, max_age_h=1e6)
        try:
            rows = spool.next_batch(10_000_000)
            stats = spool.stats()
            dead = spool.dead_letters(limit=10_000_000)
        finally:
            spool.close()
        kept = Counter(int(m[1]) for r in rows if r.cls and (m := LINE.match(r.line)))
        present = sorted(kept)
        # Every reported batch is whole; a batch committed but not yet reported may be there,
        # whole too; nothing else.
        assert present[: last_reported + 1] == list(range(last_reported + 1))
        assert len(present) in (last_reported + 1, last_reported + 2)
        assert set(kept.values()) <= {KEPT}
        last_committed = present[-1] if present else -1
        # Telemetry: exactly the newest ones survive, and the persisted eviction counter
        # accounts for every other one (it is updated in the same transaction).
        tel = [(int(m[1]), int(m[2])) for r in rows if not r.cls and (m := LINE.match(r.line))]
        expected = [
            (b, i) for b in range(last_committed + 1) for i in range(KEPT, KEPT + TELEMETRY)
        ]
        assert tel == expected[len(expected) - len(tel) :]
        assert stats.evicted_total == len(expected) - len(tel)
        assert stats.rows == len(rows)
        assert stats.dead_letters_total == last_committed + 1 == len(dead)
        last_reported = last_committed
        assert time.monotonic() < deadline, f"only {kill + 1} kills in the time bound"
    assert last_reported > KILLS  # the kills did land between and during commits
