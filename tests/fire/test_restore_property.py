"""Any history of events, restored from its audit records, continues exactly as the original."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.fire import Action, Audit, FireEngine, IncidentError
from tests.fire.helpers import (
    ack,
    alarm,
    camera,
    clear,
    commands,
    make_engine,
    msg,
)

DETECTORS = [("SD-1", "smoke"), ("SD-2", "smoke"), ("CP-1", "callpoint"), ("SD-4", "smoke"),
             ("SD-6", "smoke"), ("SD-21", "smoke"), ("SD-x", "smoke")]  # fmt: skip
ACTIONS = ["ack", "on_scene", "resolve", "false_alarm", "confirm"]

step = st.one_of(
    st.tuples(st.just("alarm"), st.sampled_from(DETECTORS)),
    st.tuples(st.just("clear"), st.sampled_from(DETECTORS)),
    st.tuples(st.just("camera"), st.floats(0.0, 1.0)),
    st.tuples(st.just("act"), st.sampled_from(ACTIONS), st.integers(0, 5)),
    # Whole seconds: the audit keeps wall milliseconds, so a restored timer is exact to the
    # millisecond; whole steps keep the manual clock's wall and monotonic time in step.
    st.tuples(st.just("advance"), st.integers(1, 120)),
    st.tuples(st.just("answer"), st.booleans()),
    st.tuples(st.just("door_status"), st.just("AC-b1")),
    st.tuples(st.just("drill"), st.sampled_from(["b1-f5", "b1-f3"])),
)


def run(engine: FireEngine, clock: ManualClock, steps: list[Any]) -> list[Action]:
    out: list[Action] = []
    last: list[Action] = []
    for s in steps:
        kind = s[0]
        if kind == "alarm":
            device, dkind = s[1]
            building = "b2" if device == "SD-21" else "b1"
            last = engine.on_alarm(alarm(device, building=building, kind=dkind))
        elif kind == "clear":
            device, dkind = s[1]
            last = engine.on_messages([clear(device, kind=dkind)])
        elif kind == "camera":
            last = engine.on_alarm(camera("b1-f3", s[1]))
        elif kind == "act":
            incidents = engine.incidents()
            if not incidents:
                continue
            try:
                last = engine.act(incidents[s[2] % len(incidents)].id, s[1], "someone")
            except IncidentError:
                continue
        elif kind == "advance":
            clock.advance(s[1])
            last = engine.tick()
        elif kind == "answer":
            last = engine.on_messages([ack(c, ok=s[1]) for c in commands(out[-40:])])
        elif kind == "door_status":
            status = msg("b1", "access", s[1], "status", fields={"state": "released"})
            last = engine.on_messages([status])
        else:
            try:
                last = engine.drill("b1", s[1], "duty")
            except IncidentError:
                continue
        out += last
        open_zones = [(i.building, i.zone) for i in engine.incidents(True) if not i.drill]
        assert len(open_zones) == len(set(open_zones))  # one open incident per zone
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40), st.lists(st.integers(1, 90), max_size=8))
def test_restored_engine_matches_the_original(steps: list[Any], after: list[int]) -> None:
    original, clock = make_engine(command_max_retries=2)
    actions = run(original, clock, steps)
    stored = [json.loads(json.dumps(a.record.to_dict())) for a in actions if isinstance(a, Audit)]
    restored, _ = make_engine(clock, command_max_retries=2)
    summary = restored.restore(stored)
    assert summary.skipped == ()
    assert restored.incidents() == original.incidents()
    assert restored.next_deadline() == original.next_deadline()
    for seconds in after:
        clock.advance(seconds)
        assert restored.tick() == original.tick()
    assert restored.incidents() == original.incidents()
