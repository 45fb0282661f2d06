"""The head-count engine's rules, one behaviour per test, with a hand-driven clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gateway.clock import ManualClock
from gateway.headcount import (
    FlowRecord,
    HeadcountAlert,
    HeadcountBatch,
    HeadcountEngine,
    HeadcountError,
    HeadcountOutput,
    HeadcountSettings,
    swipe_code,
)
from gateway.headcount.batch import (
    AUTH_DENIED,
    AUTH_GRANTED,
    AUTH_NONE,
    PASS_IN,
    PASS_NODIR,
    PASS_NONE,
    PASS_OUT,
)
from tests.headcount.conftest import START_MS, site_model

IN = swipe_code(PASS_IN, AUTH_GRANTED)
OUT = swipe_code(PASS_OUT, AUTH_GRANTED)
DENIED = swipe_code(PASS_NONE, AUTH_DENIED)
SITE = site_model()
CP = {cp.id: i for i, cp in enumerate(SITE.checkpoints)}
BUCKET_MS = 10_000


def make(**settings: Any) -> tuple[HeadcountEngine, ManualClock]:
    clock = ManualClock(wall_ms=START_MS)
    config = HeadcountSettings(**{"daily_reset": None, **settings})
    return HeadcountEngine(SITE, config, clock, site_id="s1"), clock


def swipe(engine: HeadcountEngine, cp: str, ts: int, code: int, n: int = 1) -> None:
    engine.ingest(HeadcountBatch.swipes([CP[cp]] * n, [ts] * n, [code] * n))


def camera(engine: HeadcountEngine, cp: str, ts: int, n_in: int, n_out: int = 0) -> None:
    engine.ingest(HeadcountBatch.counts([CP[cp]], [ts], [n_in], [n_out]))


def flows(outputs: list[HeadcountOutput], cp: str, window: str = "1m") -> list[FlowRecord]:
    """The checkpoint's records of that window, from the engine's start on."""
    return [
        f
        for out in outputs
        for f in out.flows
        if f.checkpoint == cp and f.window == window and f.start_ms >= START_MS
    ]


def crowding(out: HeadcountOutput) -> list[HeadcountAlert]:
    return [a for a in out.alerts if a.type == "crowding"]


def run_until(engine: HeadcountEngine, clock: ManualClock, seconds: float) -> list[HeadcountOutput]:
    """Tick once a second for `seconds`."""
    outputs = []
    for _ in range(int(seconds)):
        clock.advance(1)
        outputs.append(engine.tick())
    return outputs


def test_closed_window_counts_each_checkpoint_by_its_rule() -> None:
    engine, clock = make()
    t0 = clock.wall_ms()
    swipe(engine, "g2", t0 + 1_000, IN, 3)
    swipe(engine, "g2", t0 + 2_000, OUT)
    swipe(engine, "g2", t0 + 3_000, DENIED, 2)
    swipe(engine, "g1", t0 + 4_000, IN, 2)  # g1 has a camera: swipes are authorizations
    camera(engine, "g1", t0 + 10_000, 4, 1)
    outputs = run_until(engine, clock, 60 + 120 + 1)
    (g2,) = flows(outputs, "g2")[:1]
    assert (g2.start_ms, g2.people_in, g2.people_out, g2.net) == (t0, 3, 1, 2)
    assert (g2.granted, g2.denied, g2.camera_in, g2.uncertain) == (4, 2, 0, False)
    (g1,) = flows(outputs, "g1")[:1]
    assert (g1.people_in, g1.people_out, g1.granted, g1.camera_in, g1.camera_out) == (4, 1, 2, 4, 1)
    assert g1.line() == (
        f"checkpoint_flow,checkpoint=g1,site=s1,window=1m in=4i,out=1i,net=3i,granted=2i,"
        f"denied=0i,camera_in=4i,camera_out=1i,late=0i,early=0i,uncertain=false {t0}"
    )


def test_double_counting_and_leads_to_rules_move_occupancy() -> None:
    engine, clock = make()
    t = clock.wall_ms()
    swipe(engine, "g1", t, IN, 3)  # reader + camera: the camera counts
    camera(engine, "g1", t, 3)
    swipe(engine, "g2", t, IN, 2)  # reader only
    swipe(engine, "g2", t, DENIED)
    swipe(engine, "g2", t, swipe_code(PASS_NODIR, AUTH_GRANTED))  # no direction: no flow
    swipe(engine, "d1", t, IN)  # reader, leads to b1
    camera(engine, "c1", t, 2)  # camera, leads to b1
    camera(engine, "m1", t, 4)  # leads to b2 and b3: site only
    swipe(engine, "i1", t, IN)  # inside the perimeter, b2: camera counts, b2 only
    camera(engine, "i1", t, 1)
    camera(engine, "e1", t, 5)  # no device listed: camera counts
    site = 3 + 2 + 1 + 2 + 4 + 5
    assert engine.occupancy() == {"b1": 1 + 2, "b2": 1, "site": site}


def test_late_rows_are_counted_as_late_never_dropped() -> None:
    engine, clock = make(lateness_s=120)
    t0 = clock.wall_ms()
    clock.advance(300)
    swipe(engine, "g2", t0 + 10_000, IN)  # 290 s old: its window is written already
    outputs = run_until(engine, clock, 60 + 120 + 1)
    by_start = {f.start_ms: f for f in flows(outputs, "g2")}
    now_window = by_start[t0 + 300_000]
    assert (now_window.late, now_window.people_in) == (1, 0)
    assert all(f.people_in == 0 for f in by_start.values())
    assert engine.stats().late["g2"] == 1
    assert engine.occupancy()["site"] == 1  # the person did pass


def test_row_from_a_clock_far_ahead_counts_now_as_early() -> None:
    engine, clock = make(max_future_s=300)
    t0 = clock.wall_ms()
    swipe(engine, "g2", t0 + 3_600_000, IN)
    outputs = run_until(engine, clock, 60 + 120 + 1)
    first = flows(outputs, "g2")[0]
    assert (first.start_ms, first.people_in, first.early) == (t0, 1, 1)
    assert engine.stats().early["g2"] == 1


def test_camera_period_counts_land_in_the_bucket_before_their_end() -> None:
    engine, clock = make()
    t0 = clock.wall_ms()
    clock.advance(60)
    camera(engine, "c1", t0 + 60_000, 7)  # the period ending at the minute belongs to it
    outputs = run_until(engine, clock, 60 + 120 + 1)
    assert [f.people_in for f in flows(outputs, "c1")[:2]] == [7, 0]


def test_windows_before_the_engine_started_are_uncertain() -> None:
    engine, clock = make()
    clock.advance(30)
    states = dict(engine.tick().states)
    assert states["g2"]["uncertain"] is True  # the last hour was not all observed
    outputs = run_until(engine, clock, 3600 + 200)
    hours = [f for out in outputs for f in out.flows if f.checkpoint == "g2" and f.window == "1h"]
    assert [f.uncertain for f in hours] == [f.start_ms < START_MS for f in hours]
    assert hours[0].uncertain is True
    assert engine.states()["g2"]["uncertain"] is False


def test_state_published_only_when_changed_and_at_most_once_a_second() -> None:
    engine, clock = make()
    first = engine.tick().states
    assert [cp for cp, _ in first] == list(CP)
    swipe(engine, "g2", clock.wall_ms(), IN)
    clock.advance(0.5)
    assert engine.tick().states == []
    clock.advance(0.5)
    states = dict(engine.tick().states)
    # g2's flows changed; the site's occupancy, shown by every checkpoint that leads to it
    assert list(states) == [cp for cp, state in first if state["occupancy_of"] == "site"]
    payload = states["g2"]
    assert payload == {
        "ts": clock.wall_ms(),
        "checkpoint": "g2",
        "in_1m": 1,
        "out_1m": 0,
        "in_5m": 1,
        "out_5m": 0,
        "in_1h": 1,
        "out_1h": 0,
        "occupancy": 1,
        "occupancy_of": "site",
        "uncertain": True,
    }
    clock.advance(1)
    assert engine.tick().states == []


def test_inflow_crowding_raised_once_and_cleared_once() -> None:
    engine, clock = make()
    t0 = clock.wall_ms()
    clock.advance(5)
    camera(engine, "g1", t0 + 5_000, 5)  # limit 4 per minute
    alerts = crowding(engine.tick())
    assert [(a.type, a.metric, a.state, a.target, a.value, a.limit) for a in alerts] == [
        ("crowding", "inflow_per_min", "raised", "g1", 5.0, 4.0)
    ]
    clock.advance(30)
    camera(engine, "g1", t0 + 35_000, 4)
    seen = [a for out in run_until(engine, clock, 30) for a in crowding(out)]
    assert seen == []  # 4 per minute: not over the limit, not under 80 % of it
    seen = [a for out in run_until(engine, clock, 60) for a in crowding(out)]
    assert [(a.state, a.value) for a in seen] == [("cleared", 0.0)]
    assert [a for out in run_until(engine, clock, 30) for a in crowding(out)] == []


def test_occupancy_crowding_has_hysteresis() -> None:
    engine, clock = make()
    t = clock.wall_ms()
    events = []
    for code, n in ((IN, 7), (OUT, 1), (OUT, 1), (OUT, 1), (IN, 1)):
        swipe(engine, "d1", t, code, n)  # b1's limit is 6: clear at 4.8
        clock.advance(1)
        events += [(a.state, a.value) for a in engine.tick().alerts if a.metric == "occupancy"]
    assert events == [("raised", 7.0), ("cleared", 4.0)]


def test_site_occupancy_limit_comes_from_settings() -> None:
    engine, clock = make(site_occupancy_limit=2)
    swipe(engine, "g2", clock.wall_ms(), IN, 3)
    (alert,) = [a for a in engine.tick().alerts if a.metric == "occupancy"]
    assert (alert.scope, alert.target, alert.state) == ("site", "site", "raised")
    assert alert.body("s1")["building"] == "site"


def test_tailgating_raised_once_and_cleared_once() -> None:
    engine, clock = make(tailgate_window="1m")
    clock.advance(70)  # the 1 min window no longer reaches before the start
    engine.tick()
    t = clock.wall_ms()
    camera(engine, "g1", t, 5)
    swipe(engine, "g1", t, IN)
    clock.advance(1)
    (alert,) = [a for a in engine.tick().alerts if a.type == "tailgating"]
    assert (alert.state, alert.target, alert.value, alert.limit) == ("raised", "g1", 5.0, 1.5)
    assert alert.details == {
        "window_s": 60,
        "camera_in": 5,
        "authorized_in": 1,
        "excess": 4,
        "min_count": 1,
    }
    swipe(engine, "g1", clock.wall_ms(), IN, 3)  # excess 1, ratio 1.25: between the thresholds
    clock.advance(1)
    assert [a for a in engine.tick().alerts if a.type == "tailgating"] == []
    swipe(engine, "g1", clock.wall_ms(), IN)  # excess 0
    clock.advance(1)
    assert [(a.type, a.state) for a in engine.tick().alerts] == [("tailgating", "cleared")]


def test_no_tailgating_without_a_reader_or_while_the_reader_is_offline() -> None:
    engine, clock = make()
    clock.advance(70)
    engine.mark_offline("AC-g1")
    camera(engine, "g1", clock.wall_ms(), 10)
    camera(engine, "c1", clock.wall_ms(), 10)  # camera only: nothing to compare with
    clock.advance(1)
    assert [a for a in engine.tick().alerts if a.type == "tailgating"] == []


def test_occupancy_clamped_at_zero_and_the_clamp_reported() -> None:
    engine, clock = make(occupancy_interval_s=60)
    swipe(engine, "d1", clock.wall_ms(), OUT, 3)
    assert engine.occupancy() == {"b1": 0, "b2": 0, "site": 0}
    stats = engine.stats()
    assert (stats.clamps["b1"], stats.clamped_people["b1"], stats.clamps["site"]) == (1, 3, 1)
    assert stats.clamps["b2"] == 0
    samples = [s for out in run_until(engine, clock, 120) for s in out.occupancy]
    b1 = [(s.occupancy, s.clamped) for s in samples if s.target == "b1"]
    assert b1 == [(0, 1), (0, 0)]
    assert samples[0].line() == (
        f"occupancy,building=b1,site=s1 occupancy=0i,clamped=1i,uncertain=false {START_MS + 60_000}"
    )


def test_daily_reset_at_local_time() -> None:
    engine, clock = make(daily_reset="04:00", timezone="Asia/Shanghai")  # START is 03:58
    swipe(engine, "g2", clock.wall_ms(), IN, 5)
    clock.advance(119)
    engine.tick()
    assert engine.occupancy()["site"] == 5
    clock.advance(1)
    engine.tick()
    assert engine.occupancy()["site"] == 0
    swipe(engine, "g2", clock.wall_ms(), IN, 2)
    clock.advance(86_399)
    engine.tick()
    assert engine.occupancy()["site"] == 2
    clock.advance(1)
    engine.tick()
    assert (engine.occupancy()["site"], engine.stats().daily_resets) == (0, 2)


def test_daily_reset_follows_the_configured_time_zone() -> None:
    engine, clock = make(daily_reset="04:00", timezone="UTC")
    swipe(engine, "g2", clock.wall_ms(), IN, 5)
    clock.advance(600)  # 04:08 in Shanghai is 20:08 UTC
    engine.tick()
    assert (engine.occupancy()["site"], engine.stats().daily_resets) == (5, 0)


def test_manual_correction_sets_occupancy_and_is_audited() -> None:
    engine, clock = make()
    record = engine.correct_occupancy("b1", 12, "duty-1")
    assert (record.target, record.old, record.new, record.by) == ("b1", 0, 12, "duty-1")
    assert record.ts_ms == clock.wall_ms()
    swipe(engine, "d1", clock.wall_ms(), OUT, 2)
    assert engine.occupancy()["b1"] == 10
    assert record.line().startswith("occupancy_correction,building=b1,site=s1 old=0i,new=12i,")


@pytest.mark.parametrize(
    ("target", "value", "by", "message"),
    [
        ("b3", 1, "duty", "no occupancy is kept for 'b3' (kept for: b1, b2, site)"),
        ("nowhere", 1, "duty", "no occupancy is kept for 'nowhere'"),
        ("b1", -1, "duty", "-1 is not a whole number of people"),
        ("b1", 2.5, "duty", "2.5 is not a whole number"),
        ("b1", True, "duty", "True is not a whole number"),
        ("b1", 3, " ", "say who corrects it"),
    ],
)
def test_bad_correction_says_what_is_wrong(target: str, value: Any, by: str, message: str) -> None:
    engine, _ = make()
    with pytest.raises(HeadcountError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.correct_occupancy(target, value, by)
    assert engine.occupancy()["b1"] == 0


def test_offline_device_marks_the_windows_it_missed_uncertain() -> None:
    engine, clock = make(lateness_s=120)
    clock.advance(3600)  # past the start's own uncertainty
    engine.tick()
    offline_at = clock.wall_ms()
    since = offline_at - 90_000
    assert engine.mark_offline("CAM-c1", since_ms=since)
    assert engine.mark_offline("not-a-checkpoint-device") is False
    clock.advance(1)
    assert engine.tick().states[0][0] == "c1"  # only c1 changed: uncertain now
    assert engine.states()["c1"]["uncertain"] is True
    outputs = run_until(engine, clock, 199)
    assert engine.mark_online("CAM-c1")
    online_b = clock.wall_ms() // BUCKET_MS
    outputs += run_until(engine, clock, 600)
    first_b = since // BUCKET_MS
    for f in flows(outputs, "c1"):
        start_b = f.start_ms // BUCKET_MS
        assert f.uncertain == (start_b <= online_b and start_b + 6 > first_b), f
    assert any(f.uncertain for f in flows(outputs, "c1"))
    assert not any(f.uncertain for f in flows(outputs, "d1"))
    b1 = [s for out in outputs for s in out.occupancy if s.target == "b1"]
    assert b1 and all(s.uncertain for s in b1)  # fed by c1 since it went offline
    engine.correct_occupancy("b1", 0, "duty")  # a person counted: certain again
    clock.advance(60)
    assert [s.uncertain for s in engine.tick().occupancy if s.target == "b1"] == [False]


def test_long_silence_writes_the_data_and_skips_the_empty_windows() -> None:
    engine, clock = make()
    swipe(engine, "g2", clock.wall_ms(), IN)
    clock.advance(2 * 86_400)
    out = engine.tick()
    assert sum(f.people_in for f in out.flows if f.checkpoint == "g2" and f.window == "1m") == 1
    assert sum(f.people_in for f in out.flows if f.checkpoint == "g2" and f.window == "1h") == 1
    assert engine.stats().skipped_windows > 0
    assert len(out.flows) < len(CP) * (60 + 12 + 1) * 4  # not two days of empty windows
    swipe(engine, "g2", clock.wall_ms(), IN, 2)
    later = run_until(engine, clock, 200)
    assert sum(f.people_in for f in flows(later, "g2")) == 2


def test_vision_crossings_are_fed_as_tuples() -> None:
    engine, clock = make()
    engine.ingest_crossings([(CP["c1"], clock.wall_ms(), 3, 1), (CP["m1"], clock.wall_ms(), 2, 0)])
    engine.ingest_crossings([])
    assert engine.occupancy() == {"b1": 2, "b2": 0, "site": 4}


def test_empty_batch_changes_nothing() -> None:
    engine, _ = make()
    engine.ingest(HeadcountBatch())
    assert engine.occupancy() == {"b1": 0, "b2": 0, "site": 0}
    assert engine.stats().rows == 0


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (HeadcountBatch.swipes([99], [START_MS], [IN]), "checkpoint index outside 0..6"),
        (HeadcountBatch.swipes([0], [START_MS], [12]), "code outside 0..11"),
        (HeadcountBatch.swipes([0, 1], [START_MS], [IN]), "different lengths"),
        (HeadcountBatch.counts([0], [START_MS], [-1], [0]), "negative count"),
        (HeadcountBatch.cumulative([999], [0], [START_MS], [1], [1]), "camera slot"),
        (
            HeadcountBatch(
                count_checkpoint=np.array([0]),
                count_ts_ms=np.array([1.5e12]),
                count_in=np.array([1]),
                count_out=np.array([0]),
            ),
            "must hold integers",
        ),
    ],
)
def test_bad_rows_are_rejected_with_the_reason(batch: HeadcountBatch, message: str) -> None:
    engine, _ = make()
    with pytest.raises(HeadcountError, match=message):
        engine.ingest(batch)


def test_a_site_without_checkpoints_still_reports_site_occupancy() -> None:
    clock = ManualClock(wall_ms=START_MS)
    engine = HeadcountEngine(site_model(checkpoints=[]), HeadcountSettings(), clock, site_id="s")
    engine.ingest(HeadcountBatch())
    clock.advance(3600)
    out = engine.tick()
    assert out.flows == [] and out.states == [] and out.alerts == []
    assert {s.target for s in out.occupancy} == {"site"}


def test_alert_payload_names_what_and_where() -> None:
    engine, clock = make()
    camera(engine, "g1", clock.wall_ms(), 9)
    (alert,) = engine.tick().alerts
    assert alert.body("s1") == {
        "ts": clock.wall_ms(),
        "type": "crowding",
        "site": "s1",
        "state": "raised",
        "scope": "checkpoint",
        "checkpoint": "g1",
        "metric": "inflow_per_min",
        "value": 9.0,
        "limit": 4.0,
    }
    assert alert.line("s1").startswith("alert,checkpoint=g1,metric=inflow_per_min,site=s1,")


def test_unused_codes_are_accepted() -> None:
    engine, clock = make()
    swipe(engine, "g2", clock.wall_ms(), swipe_code(PASS_NONE, AUTH_NONE))
    assert engine.occupancy()["site"] == 0
