"""Storms of detectors and flooding detectors: one incident, one set of linkage commands."""

from __future__ import annotations

from gateway.fire import State
from tests.fire.helpers import (
    STORM,
    alarm,
    alerts,
    answer,
    clear,
    commands,
    make_engine,
    records,
    targets,
)


def test_storm_of_200_detectors_is_one_incident_with_one_set_of_commands() -> None:
    engine, clock = make_engine()
    actions = []
    for device in STORM:
        clock.advance(0.01)
        actions += engine.on_alarm(alarm(device))
    (inc,) = engine.incidents()
    assert inc.sources == tuple(STORM)
    assert inc.zone == "b1-f9"
    assert inc.state == State.DISPATCHED
    cmds = commands(actions)
    assert len(cmds) == 6  # 3 screens, 2 voice terminals, 1 door controller
    assert targets(cmds) == {
        "b1/screen/SCR-b1-a",
        "b1/screen/SCR-b1-b",
        "gates/screen/SCR-gate-1",
        "b1/voice/VT-b1",
        "b1/voice/AMP-b1",
        "b1/access/AC-b1",
    }
    assert [a["state"] for a in alerts(actions)] == ["pre_alarm", "confirmed", "dispatched"]
    assert [r.kind for r in records(actions)].count("source") == 200
    answer(engine, actions)
    # The storm going on (every detector again, then clears) changes nothing on the wire.
    more = []
    for device in STORM:
        more += engine.on_alarm(alarm(device))
        more += engine.on_messages([clear(device)])
    assert commands(more) == []
    assert alerts(more) == []
    assert len(engine.incidents()) == 1


def test_flooding_detector_opens_one_incident_and_bounded_records() -> None:
    engine, clock = make_engine(verify_s=10_000, deadline_s=20_000)
    actions = []
    for _ in range(1000):
        clock.advance(0.05)
        actions += engine.on_alarm(alarm("SD-1"))
        actions += engine.on_messages([clear("SD-1")])
    (inc,) = engine.incidents()
    assert inc.state == State.PRE_ALARM  # one detector never confirms by itself
    assert commands(actions) == []
    assert len(alerts(actions)) == 1
    assert [r.kind for r in records(actions)] == ["opened", "source", "clear"]
    assert len(engine.timeline(inc.id)) == 3


def test_flooding_detector_after_a_false_alarm_opens_one_new_incident() -> None:
    engine, clock = make_engine(verify_s=10_000, deadline_s=20_000)
    engine.on_alarm(alarm("SD-1"))
    first = engine.incidents()[0].id
    engine.act(first, "false_alarm", "duty-wang")
    for _ in range(500):
        clock.advance(0.05)
        engine.on_alarm(alarm("SD-1"))
        engine.on_messages([clear("SD-1")])
    open_now = engine.incidents(open_only=True)
    assert len(engine.incidents()) == 2
    assert len(open_now) == 1 and open_now[0].id != first
