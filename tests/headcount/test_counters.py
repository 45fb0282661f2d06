"""Cumulative vendor counters: baselines, differences, resets, stale and duplicate reports."""

from __future__ import annotations

import numpy as np

from gateway.clock import ManualClock
from gateway.headcount import CounterState, HeadcountBatch, HeadcountEngine, HeadcountSettings
from gateway.headcount.counters import CameraCounters
from tests.headcount.conftest import START_MS, site_model

SITE = site_model()
C1 = [cp.id for cp in SITE.checkpoints].index("c1")


def update(counters: CameraCounters, rows: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """rows: (camera, ts, in total, out total) at checkpoint 0; the counted (ts, in, out)."""
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    _, ts, n_in, n_out = counters.update(
        table[:, 0], np.zeros(len(table), np.int64), table[:, 1], table[:, 2], table[:, 3]
    )
    return [[int(a), int(b), int(c)] for a, b, c in zip(ts, n_in, n_out, strict=True)]


def test_first_report_is_a_baseline_then_differences_count() -> None:
    counters = CameraCounters()
    assert update(counters, [(0, 1000, 1203, 988)]) == []
    assert update(counters, [(0, 2000, 1210, 990), (0, 3000, 1211, 990)]) == [
        [2000, 7, 2],
        [3000, 1, 0],
    ]
    assert counters.baselines == 1


def test_a_total_that_goes_down_is_a_reset_counted_from_zero() -> None:
    counters = CameraCounters()
    update(counters, [(0, 1000, 500, 400)])
    assert update(counters, [(0, 2000, 3, 401)]) == [[2000, 3, 401]]
    assert update(counters, [(0, 3000, 5, 402)]) == [[3000, 2, 1]]
    assert counters.resets == 1


def test_stale_and_duplicate_reports_are_dropped_and_counted() -> None:
    counters = CameraCounters()
    update(counters, [(0, 5000, 100, 100)])
    # a re-delivered older report, the same timestamp twice, then a newer one
    rows = [(0, 4000, 90, 90), (0, 6000, 104, 101), (0, 6000, 104, 101), (0, 7000, 105, 101)]
    assert update(counters, rows) == [[6000, 4, 1], [7000, 1, 0]]
    assert counters.stale == 2


def test_reports_within_a_batch_are_taken_in_time_order_per_camera() -> None:
    counters = CameraCounters()
    update(counters, [(0, 1000, 10, 0), (1, 1000, 50, 0)])
    rows = [(1, 3000, 58, 0), (0, 3000, 16, 0), (0, 2000, 12, 0), (1, 2000, 55, 0)]
    assert sorted(update(counters, rows)) == [[2000, 2, 0], [2000, 5, 0], [3000, 3, 0],
                                              [3000, 4, 0]]  # fmt: skip
    assert counters.resets == 0


def test_engine_counts_cumulative_reports_and_survives_a_restart() -> None:
    clock = ManualClock(wall_ms=START_MS)
    settings = HeadcountSettings(daily_reset=None)
    engine = HeadcountEngine(SITE, settings, clock, site_id="s")
    cam = engine.index.camera_slot("CAM-c1")
    t = clock.wall_ms()

    def report(target: HeadcountEngine, ts: int, total_in: int, total_out: int) -> None:
        target.ingest(HeadcountBatch.cumulative([cam], [C1], [ts], [total_in], [total_out]))

    report(engine, t, 1203, 988)
    report(engine, t + 1000, 1206, 989)
    assert engine.occupancy()["b1"] == 2
    saved = engine.counter_states()
    assert saved == {"CAM-c1": CounterState(t + 1000, 1206, 989)}
    restarted = HeadcountEngine(SITE, settings, clock, site_id="s")
    restarted.restore_counter_states(saved)
    report(restarted, t + 2000, 1210, 989)
    assert restarted.occupancy()["b1"] == 4  # differenced against the saved totals
    stats = restarted.stats()
    assert (stats.baselines, stats.counter_resets, stats.stale_reports) == (0, 0, 0)
