"""The vectorized engine equals the plain-Python reference on random event streams:
late, early, duplicate-timestamp and empty batches, cumulative counter resets and stale
reports, devices going offline and back, corrections, daily resets, alerts."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.headcount import HeadcountBatch, HeadcountEngine, HeadcountSettings
from tests.headcount.conftest import START_MS, site_model
from tests.headcount.reference import ReferenceHeadcount

SITE = site_model()
N_CP = len(SITE.checkpoints)
CAMERAS = [c for cp in SITE.checkpoints for c in cp.cameras]
DEVICES = [*CAMERAS, "AC-g1", "AC-g2", "AC-i1", "nobody"]
TARGETS = ["b1", "b2", "site"]

offsets = st.one_of(
    st.sampled_from([-150_000, -35_000, -30_000, -29_999, -10_000, -1, 0, 1, 10_000, 25_000]),
    st.integers(-200_000, 90_000),
)
swipes = st.lists(st.tuples(st.integers(0, N_CP - 1), offsets, st.integers(1, 11)), max_size=30)
counts = st.lists(
    st.tuples(st.integers(0, N_CP - 1), offsets, st.integers(0, 6), st.integers(0, 6)),
    max_size=10,
)
totals = st.lists(
    st.tuples(
        st.integers(0, len(CAMERAS) - 1),
        st.integers(0, N_CP - 1),
        offsets,
        st.integers(0, 60),
        st.integers(0, 60),
    ),
    max_size=10,
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), swipes, counts, totals),
        st.tuples(st.just("advance"), st.sampled_from([0.2, 1, 1, 5, 10, 30, 90, 300, 900])),
        st.tuples(st.just("tick")),
        st.tuples(
            st.just("offline"),
            st.sampled_from(DEVICES),
            st.one_of(st.none(), st.integers(-300_000, 10_000)),
        ),
        st.tuples(st.just("online"), st.sampled_from(DEVICES)),
        st.tuples(st.just("correct"), st.sampled_from(TARGETS), st.integers(0, 12)),
    ),
    max_size=40,
)
configs = st.builds(
    HeadcountSettings,
    bucket_s=st.sampled_from([5, 10, 60]),
    lateness_s=st.sampled_from([0, 30, 120]),
    max_future_s=st.sampled_from([0, 20, 300]),
    occupancy_interval_s=st.sampled_from([10, 60]),
    tailgate_window=st.sampled_from(["1m", "5m"]),
    site_occupancy_limit=st.sampled_from([None, 8]),
)


def _batch(now: int, sw: list[Any], co: list[Any], cu: list[Any]) -> HeadcountBatch:
    def col(rows: list[Any], j: int, add: int = 0) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.array([r[j] + add for r in rows], dtype=np.int64)

    return HeadcountBatch(
        swipe_checkpoint=col(sw, 0),
        swipe_ts_ms=col(sw, 1, now),
        swipe_code=col(sw, 2),
        count_checkpoint=col(co, 0),
        count_ts_ms=col(co, 1, now),
        count_in=col(co, 2),
        count_out=col(co, 3),
        cumulative_camera=col(cu, 0),
        cumulative_checkpoint=col(cu, 1),
        cumulative_ts_ms=col(cu, 2, now),
        cumulative_in=col(cu, 3),
        cumulative_out=col(cu, 4),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, steps=ops, start=st.integers(0, 59_999))
def test_engine_equals_reference_on_random_streams(
    config: HeadcountSettings, steps: list[Any], start: int
) -> None:
    clock = ManualClock(wall_ms=START_MS + start)
    engine = HeadcountEngine(SITE, config, clock, site_id="t")
    ref = ReferenceHeadcount(SITE, config, clock, site_id="t")
    for step in [*steps, ("advance", 4000), ("tick",)]:
        kind = step[0]
        if kind == "batch":
            batch = _batch(clock.wall_ms(), *step[1:])
            engine.ingest(batch)
            ref.ingest(batch)
        elif kind == "advance":
            clock.advance(step[1])
        elif kind == "tick":
            assert engine.tick() == ref.tick()
        elif kind == "offline":
            engine.mark_offline(step[1], None if step[2] is None else clock.wall_ms() + step[2])
            ref.mark_offline(step[1], None if step[2] is None else clock.wall_ms() + step[2])
        elif kind == "online":
            engine.mark_online(step[1])
            ref.mark_online(step[1])
        else:
            assert engine.correct_occupancy(step[1], step[2], "duty") == ref.correct_occupancy(
                step[1], step[2], "duty"
            )
        assert engine.occupancy() == ref.level
    stats = engine.stats()
    assert stats.clamps == ref.clamps
    assert stats.late == ref.late
