"""Spool throughput on this machine: commit_batch rows/s for synchronous=full and normal.

Usage: python bench/spool.py [--batches 50] [--rows 2000] [--seconds 3]
Prints, per mode: rows/s of back-to-back 2,000-row commits with their p50/p99 latency, then
the same with a forwarder thread draining the outbox concurrently (next_batch +
mark_forwarded), as in the running gateway. Last, one 2,000-row commit alone and beside a
busy Python thread (the gateway's MQTT thread and event loop are), against the same rows
inserted with `executemany` (what commit_batch did until 2026-12-02; see
gateway/spool/outbox.py), with the gateway's 2 ms GIL switch interval.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gateway.spool import Spool, SpoolRow

_T0 = 1_795_475_306_083


def _batch(n: int, start: int) -> list[SpoolRow]:
    """~150-byte line-protocol points; one event in 100, like a busy community."""
    rows = []
    for i in range(start, start + n):
        ts = _T0 + i
        line = (
            f"smoke,site=shazui,building=b{i % 40:02d},device=SD-{i % 5000:06d},kind=smoke "
            f"smoke=0.{i % 97:02d},temp=24.{i % 10},battery={i % 100}i,rssi=-{i % 90}i "
            f"{ts * 1_000_000}"
        )
        rows.append(SpoolRow(1 if i % 100 == 0 else 0, ts, ts, line))
    return rows


def _commits(path: Path, sync: str, batches: int, n: int) -> tuple[float, list[float]]:
    spool = Spool(path, max_bytes=8 * 1024**3, max_age_h=24, synchronous=sync)  # type: ignore[arg-type]
    work = [_batch(n, b * n) for b in range(batches)]
    lat = []
    t0 = time.perf_counter()
    for rows in work:
        t = time.perf_counter()
        spool.commit_batch(rows)
        lat.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    spool.close()
    return batches * n / elapsed, lat


def _with_forwarder(path: Path, sync: str, seconds: float, n: int) -> tuple[float, float, float]:
    spool = Spool(path, max_bytes=8 * 1024**3, max_age_h=24, synchronous=sync)  # type: ignore[arg-type]
    stop = threading.Event()
    forwarded = 0

    def forward() -> None:
        nonlocal forwarded
        while not stop.is_set():
            batch = spool.next_batch(5000)
            if batch:
                spool.mark_forwarded([r.id for r in batch])
                forwarded += len(batch)
            else:
                time.sleep(0.001)

    worker = threading.Thread(target=forward)
    worker.start()
    written, lat, b = 0, [], 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        rows = _batch(n, b * n)
        t = time.perf_counter()
        spool.commit_batch(rows)
        lat.append(time.perf_counter() - t)
        written += n
        b += 1
    elapsed = time.perf_counter() - t0
    stop.set()
    worker.join()
    spool.close()
    return written / elapsed, forwarded / elapsed, _p(lat, 0.99)


def _beside_busy_thread(path: Path, n: int, reps: int = 5) -> dict[str, tuple[float, float]]:
    """Median ms of one n-row commit, (alone, beside a spinning thread), for commit_batch
    and for the same rows through executemany."""
    spool = Spool(path, max_bytes=8 * 1024**3, max_age_h=24)
    rows = _batch(n, 0)

    def executemany() -> None:
        with spool._wlock, spool._transaction() as conn:
            conn.executemany(
                "INSERT INTO outbox (cls, ts_ms, received_ms, line) VALUES (?, ?, ?, ?)", rows
            )

    def median_ms(commit: Callable[[], object]) -> float:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            commit()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    ways = {"commit_batch": lambda: spool.commit_batch(rows), "executemany": executemany}
    alone = {name: median_ms(fn) for name, fn in ways.items()}
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.002)  # as gateway.cli sets it
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        busy = {name: median_ms(fn) for name, fn in ways.items()}
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(old)
        spool.close()
    return {name: (alone[name], busy[name]) for name in ways}


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for sync in ("full", "normal"):
            rate, lat = _commits(Path(tmp) / f"c-{sync}.db", sync, args.batches, args.rows)
            print(
                f"synchronous={sync:6s} commit_batch({args.rows}): {rate:10,.0f} rows/s  "
                f"p50 {statistics.median(lat) * 1e3:6.2f} ms  p99 {_p(lat, 0.99) * 1e3:6.2f} ms"
            )
        for sync in ("full", "normal"):
            w, f, p99 = _with_forwarder(Path(tmp) / f"f-{sync}.db", sync, args.seconds, args.rows)
            print(
                f"synchronous={sync:6s} + forwarder thread: write {w:10,.0f} rows/s  "
                f"forward {f:10,.0f} rows/s  commit p99 {p99 * 1e3:6.2f} ms"
            )
        got = _beside_busy_thread(Path(tmp) / "busy.db", args.rows)
        (c_alone, c_busy), (m_alone, m_busy) = got["commit_batch"], got["executemany"]
        print(
            f"one {args.rows}-row commit, alone / beside a busy Python thread: commit_batch "
            f"{c_alone:.1f} / {c_busy:.1f} ms, executemany {m_alone:.1f} / {m_busy:.1f} ms "
            f"(executemany ÷ commit_batch beside the thread: {m_busy / c_busy:.0f}×)"
        )


if __name__ == "__main__":
    main()
