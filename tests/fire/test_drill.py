"""Drills: the whole chain, every command marked `drill: true`, doors only if allowed."""

from __future__ import annotations

import pytest

from gateway.fire import IncidentError, State
from gateway.fire.texts import DEFAULT_TEXT_DRILL, render
from tests.fire.helpers import (
    alarm,
    alerts,
    answer,
    commands,
    make_engine,
    notices,
    records,
    targets,
)


def test_drill_runs_the_chain_with_every_command_marked() -> None:
    engine, clock = make_engine(ack_s=60)
    actions = engine.drill("b1", "b1-f5", "duty-wang")
    (inc,) = engine.incidents()
    assert inc.drill and inc.id.startswith("drill-")
    assert inc.state == State.DISPATCHED
    cmds = commands(actions)
    assert cmds and all(c.payload["drill"] is True for c in cmds)
    assert commands(actions, "release") == []  # doors stay as they are in a drill
    texts = {c.payload["text"] for c in cmds}
    assert texts == {render(DEFAULT_TEXT_DRILL, "1", 5, "b1-f5")}
    assert "消防演练" in texts.pop()
    assert all(a["drill"] is True for a in alerts(actions))
    assert notices(actions)[0].payload["drill"] is True
    note = next(r for r in records(actions) if r.kind == "note")
    assert note.data["doors"] == ["b1-d3"]
    answer(engine, actions)
    clock.advance(60)
    step = engine.tick()
    assert [n.reason for n in notices(step)] == ["no_ack"]
    assert all(c.payload["drill"] is True for c in commands(step))


def test_drill_releases_doors_when_the_site_allows() -> None:
    engine, _ = make_engine(drill_release_doors=True)
    actions = engine.drill("b1", "b1-f5", "duty-wang")
    (release,) = commands(actions, "release")
    assert release.payload["doors"] == ["b1-d3"] and release.payload["drill"] is True


def test_real_alarm_in_the_building_ends_the_drill() -> None:
    engine, _ = make_engine()
    drill_actions = engine.drill("b1", "b1-f5", "duty-wang")
    answer(engine, drill_actions)
    actions = engine.on_alarm(alarm("SD-1"))
    drill, real = engine.incidents()
    assert (drill.state, drill.reason, drill.closed_by) == (State.RESOLVED, "real_alarm", "gateway")
    assert (real.state, real.drill) == (State.PRE_ALARM, False)
    # The drill's texts come down; the real pre-alarm does not reach the terminals.
    assert targets(commands(actions, "clear")) == {
        "b1/screen/SCR-b1-a", "b1/screen/SCR-b1-b", "gates/screen/SCR-gate-1"
    }  # fmt: skip
    assert [a["state"] for a in alerts(actions)] == ["resolved", "pre_alarm"]
    # A drill does not swallow a real alarm's zone.
    engine.on_alarm(alarm("SD-2"))
    assert engine.incidents()[1].state == State.DISPATCHED


def test_drill_in_another_building_goes_on() -> None:
    engine, _ = make_engine()
    engine.drill("b2", "b2-f1", "duty-wang")
    engine.on_alarm(alarm("SD-1"))
    assert engine.incidents()[0].state == State.DISPATCHED


@pytest.mark.parametrize(
    ("building", "zone", "message"),
    [
        ("b7", "b7-f1", "no building 'b7' in the site model"),
        ("b1", "b2-f1", "building b1 has no zone 'b2-f1'"),
    ],
)
def test_drill_of_an_unknown_place_is_a_clear_error(building: str, zone: str, message: str) -> None:
    engine, _ = make_engine()
    with pytest.raises(IncidentError, match=message):
        engine.drill(building, zone, "duty-wang")
    assert engine.incidents() == []


def test_no_drill_while_a_real_incident_is_open_in_the_building() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    with pytest.raises(IncidentError, match="is open in building b1"):
        engine.drill("b1", "b1-f5", "duty-wang")
    assert len(engine.incidents()) == 1
