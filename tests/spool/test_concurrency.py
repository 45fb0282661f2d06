"""A committing thread, a forwarding thread and an API reader at once: nothing lost or doubled."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from gateway.spool import Spool, SpoolRow

T0 = 1_795_475_306_083
BATCHES = 80
ROWS = 500


def batch(number: int) -> list[SpoolRow]:
    return [
        SpoolRow(
            2 if i % 50 == 0 else 1 if i % 10 == 0 else 0, T0, T0, f"c,b={number},i={i} v=1i {T0}"
        )
        for i in range(ROWS)
    ]


def test_concurrent_commit_and_forward_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 30, max_age_h=1)
    writer_done = threading.Event()
    forwarded: list[str] = []
    misordered: list[list[int]] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for number in range(BATCHES):
                spool.commit_batch(batch(number))
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            writer_done.set()

    def forward() -> None:
        try:
            while True:
                done = (
                    writer_done.is_set()
                )  # read before next_batch: an empty batch after it is final
                rows = spool.next_batch(333)
                if not rows and done:
                    return
                classes = [r.cls for r in rows]
                if classes != sorted(classes, key=lambda c: c == 0):
                    misordered.append(classes)
                forwarded.extend(r.line for r in rows)
                spool.mark_forwarded([r.id for r in rows])
        except BaseException as exc:
            errors.append(exc)

    def read_api() -> None:
        try:
            while not writer_done.is_set():
                spool.stats()
                spool.history("c", since_ms=0, limit=50)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, forward, read_api)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    expected = {line.line for number in range(BATCHES) for line in batch(number)}
    counts = Counter(forwarded)
    assert [line for line, n in counts.items() if n > 1] == []
    assert set(counts) == expected
    assert misordered == []
    stats = spool.stats()
    assert (stats.rows, stats.bytes, stats.forwarded_total) == (0, 0, BATCHES * ROWS)
    spool.close()
