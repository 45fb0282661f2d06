"""Pre-alarm and every confirmation rule of the fire engine, and the linkage it starts."""

from __future__ import annotations

from gateway.fire import State
from gateway.fire.texts import DEFAULT_TEXT_FIRE, DEFAULT_TEXT_PREALARM, render
from tests.fire.helpers import (
    ROOT,
    SITE,
    alarm,
    alerts,
    camera,
    clear,
    commands,
    confirmed_fire,
    make_engine,
    notices,
    records,
    site_model,
    targets,
)

FIRE_TEXT = render(DEFAULT_TEXT_FIRE, "1", 3, "b1-f3")


def test_single_detector_opens_pre_alarm_for_the_duty_room_only() -> None:
    engine, _ = make_engine()
    actions = engine.on_alarm(alarm("SD-1"))
    assert commands(actions) == []
    assert notices(actions) == []
    (alert,) = alerts(actions)
    assert alert["state"] == "pre_alarm"
    assert (alert["building"], alert["floor"], alert["zone"]) == ("b1", 3, "b1-f3")
    assert alert["sources"] == ["SD-1"]
    assert alert["deadline_at"] == alert["opened_at"] + 300_000
    (retained,) = alerts(actions, retained=True)
    assert retained == alert
    retained_topic = [a for a in actions if getattr(a, "retain", False)]
    assert [a.topic for a in retained_topic] == [  # type: ignore[union-attr]
        f"{ROOT}/{SITE}/alerts/fire/{alert['id']}"
    ]
    assert [r.kind for r in records(actions)] == ["opened", "source"]


def test_pre_alarm_reaches_screens_and_voice_only_when_the_site_says_so() -> None:
    engine, _ = make_engine(prealarm_notify_screens=True)
    actions = engine.on_alarm(alarm("SD-1"))
    shown = commands(actions, "show")
    assert targets(shown) == {"b1/screen/SCR-b1-a", "b1/screen/SCR-b1-b"}  # no gate screens
    assert {c.payload["priority"] for c in shown} == {"alert"}
    assert shown[0].payload["text"] == render(DEFAULT_TEXT_PREALARM, "1", 3, "b1-f3")
    assert targets(commands(actions, "say")) == {"b1/voice/VT-b1", "b1/voice/AMP-b1"}
    assert commands(actions, "release") == []


def test_second_detector_in_zone_confirms_and_starts_full_linkage() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    actions = engine.on_alarm(alarm("HD-1", kind="heat"))
    (inc,) = engine.incidents()
    assert inc.state == State.DISPATCHED
    assert inc.reason == "dispatch"
    assert [a["state"] for a in alerts(actions)] == ["confirmed", "dispatched"]
    shown = commands(actions, "show")
    assert targets(shown) == {"b1/screen/SCR-b1-a", "b1/screen/SCR-b1-b", "gates/screen/SCR-gate-1"}
    assert all(c.payload["priority"] == "fire" for c in shown)
    assert all(c.payload["text"] == FIRE_TEXT for c in shown)
    said = commands(actions, "say")
    assert targets(said) == {"b1/voice/VT-b1", "b1/voice/AMP-b1"}
    assert all(c.payload["lang"] == "zh" and c.payload["repeat"] == 2 for c in said)
    (release,) = commands(actions, "release")
    assert release.topic == f"{ROOT}/{SITE}/b1/access/AC-b1/cmd"
    assert (release.payload["doors"], release.payload["reason"]) == (["b1-d1", "b1-d2"], "fire")
    ids = [c.payload["cmd_id"] for c in commands(actions)]
    assert len(set(ids)) == len(ids) == 6
    assert all(c.qos == 1 and not c.retain for c in commands(actions))
    (notice,) = notices(actions)
    assert (notice.team, notice.tier, notice.reason) == ("mfs-near", 0, "dispatch")
    assert alerts(actions)[-1]["team"] == "mfs-near"
    assert alerts(actions)[0]["doors"] == {"b1-d1": "pending", "b1-d2": "pending"}
    # Commands leave before alerts, notifications and records.
    kinds = [type(a).__name__ for a in actions]
    assert kinds.index("Notify") > max(i for i, k in enumerate(kinds) if k == "Publish")


def test_confirmation_reason_is_recorded() -> None:
    engine, _ = make_engine()
    _, actions = confirmed_fire(engine)
    states = [r for r in records(actions) if r.kind == "state"]
    assert [(r.data["to"], r.data["reason"], r.by) for r in states] == [
        ("confirmed", "second_detector", "SD-2"),
        ("dispatched", "dispatch", "gateway"),
    ]


def test_say_to_a_terminal_that_cannot_synthesize_is_marked_for_audio() -> None:
    engine, _ = make_engine()
    _, actions = confirmed_fire(engine)
    marks = {c.topic.split("/")[4]: c.needs_audio for c in commands(actions, "say")}
    assert marks == {"VT-b1": False, "AMP-b1": True}


def test_second_detector_outside_the_window_does_not_confirm() -> None:
    engine, clock = make_engine(confirm_window_s=120, verify_s=600)
    engine.on_alarm(alarm("SD-1"))
    clock.advance(121)
    actions = engine.on_alarm(alarm("SD-2"))
    assert engine.incidents()[0].state == State.PRE_ALARM
    assert commands(actions) == []
    # ...but the first detector alarming again within the window of the second does.
    clock.advance(100)
    engine.on_alarm(alarm("SD-1"))
    assert engine.incidents()[0].state == State.DISPATCHED


def test_second_detector_at_the_edge_of_the_window_confirms() -> None:
    engine, clock = make_engine(confirm_window_s=120)
    engine.on_alarm(alarm("SD-1"))
    clock.advance(120)
    engine.on_alarm(alarm("SD-2"))
    assert engine.incidents()[0].state == State.DISPATCHED


def test_the_same_detector_twice_is_not_independent() -> None:
    engine, clock = make_engine()
    engine.on_alarm(alarm("SD-1"))
    clock.advance(5)
    actions = engine.on_alarm(alarm("SD-1"))
    assert engine.incidents()[0].state == State.PRE_ALARM
    assert actions == []


def test_detector_in_another_zone_does_not_confirm() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    engine.on_alarm(alarm("SD-6"))  # floor 5
    assert [i.state for i in engine.incidents()] == [State.PRE_ALARM, State.PRE_ALARM]


def test_call_point_confirms_at_once() -> None:
    engine, _ = make_engine()
    actions = engine.on_alarm(alarm("CP-1", kind="callpoint"))
    (inc,) = engine.incidents()
    assert inc.state == State.DISPATCHED
    assert [a["state"] for a in alerts(actions)] == ["pre_alarm", "confirmed", "dispatched"]
    assert commands(actions, "release")
    assert next(r.data["reason"] for r in records(actions) if r.kind == "state") == "callpoint"


def test_call_point_confirms_an_open_pre_alarm() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    engine.on_alarm(alarm("CP-1", kind="callpoint"))
    assert engine.incidents()[0].state == State.DISPATCHED


def test_camera_fire_over_threshold_confirms_pre_alarm() -> None:
    engine, clock = make_engine(camera_confidence=0.7)
    engine.on_alarm(alarm("SD-1"))
    clock.advance(170)  # no window applies to a camera
    engine.on_alarm(camera("b1-f3", 0.69, event="smoke"))
    assert engine.incidents()[0].state == State.PRE_ALARM
    actions = engine.on_alarm(camera("b1-f3", 0.7, event="smoke"))
    inc = engine.incidents()[0]
    assert inc.state == State.DISPATCHED
    assert inc.sources == ("SD-1", "CAM-b1")
    assert commands(actions, "show")


def test_camera_alone_opens_pre_alarm_and_a_detector_then_confirms() -> None:
    engine, _ = make_engine()
    assert engine.on_alarm(camera("b1-f5", 0.3)) == []  # below threshold: nothing
    assert engine.incidents() == []
    engine.on_alarm(camera("b1-f5", 0.9))
    assert engine.incidents()[0].state == State.PRE_ALARM
    assert engine.incidents()[0].floor == 5
    engine.on_alarm(alarm("SD-6"))
    assert engine.incidents()[0].state == State.DISPATCHED


def test_operator_confirms_pre_alarm() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    inc_id = engine.incidents()[0].id
    actions = engine.act(inc_id, "confirm", "duty-wang")
    assert engine.incident(inc_id).state == State.DISPATCHED
    confirm = next(r for r in records(actions) if r.kind == "state")
    assert (confirm.by, confirm.data["reason"]) == ("duty-wang", "operator")
    assert commands(actions, "release")


def test_verification_window_expiring_confirms() -> None:
    engine, clock = make_engine(verify_s=180)
    engine.on_alarm(alarm("SD-1"))
    opened = clock.monotonic()
    assert engine.next_deadline() == opened + 180
    clock.advance(179.5)
    assert engine.tick() == []
    clock.advance(0.5)
    actions = engine.tick()
    inc = engine.incidents()[0]
    assert inc.state == State.DISPATCHED
    confirm = next(r for r in records(actions) if r.kind == "state")
    assert (confirm.by, confirm.data["reason"]) == ("timer", "verify_timeout")
    assert inc.confirmed_at == inc.opened_at + 180_000


def test_false_alarm_on_pre_alarm_closes_without_linkage() -> None:
    engine, clock = make_engine()
    engine.on_alarm(alarm("SD-1"))
    inc_id = engine.incidents()[0].id
    actions = engine.act(inc_id, "false_alarm", "duty-wang")
    assert commands(actions) == []
    assert notices(actions) == []
    assert [a["state"] for a in alerts(actions)] == ["false_alarm"]
    assert engine.incidents(open_only=True) == []
    clock.advance(1000)
    assert engine.tick() == []  # the verification window no longer runs
    assert engine.next_deadline() is None


def test_detector_clear_never_closes_an_incident() -> None:
    engine, clock = make_engine()
    engine.on_alarm(alarm("SD-1"))
    actions = engine.on_messages([clear("SD-1")])
    assert [r.kind for r in records(actions)] == ["clear"]
    assert engine.incidents()[0].state == State.PRE_ALARM
    clock.advance(180)
    engine.tick()
    assert engine.incidents()[0].state == State.DISPATCHED  # still confirmed by the timer
    engine.on_messages([clear("SD-1"), clear("SD-2")])
    assert engine.incidents()[0].state == State.DISPATCHED


def test_detectors_of_one_zone_merge_into_one_incident() -> None:
    engine, _ = make_engine()
    for device, kind in (("SD-1", "smoke"), ("SD-2", "smoke"), ("SD-3", "smoke"), ("HD-1", "heat")):
        engine.on_alarm(alarm(device, kind=kind))
    (inc,) = engine.incidents()
    assert inc.sources == ("SD-1", "SD-2", "SD-3", "HD-1")


def test_second_zone_on_the_same_floor_opens_its_own_linked_incident() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    engine.on_alarm(alarm("SD-4"))  # zone b1-f3e, also floor 3
    engine.on_alarm(alarm("SD-6"))  # floor 5: not linked
    first, second, third = engine.incidents()
    assert (first.zone, second.zone) == ("b1-f3", "b1-f3e")
    assert second.linked == (first.id,)
    assert first.linked == (second.id,)
    assert third.linked == ()


def test_unprovisioned_detector_still_opens_an_incident() -> None:
    engine, _ = make_engine()
    actions = engine.on_alarm(alarm("SD-new", building="b9"))
    (inc,) = engine.incidents()
    assert (inc.building, inc.zone, inc.floor) == ("b9", "unknown", None)
    assert alerts(actions)[0]["state"] == "pre_alarm"
    engine.on_alarm(alarm("SD-new2", building="b9"))
    assert engine.incidents()[0].state == State.DISPATCHED


def test_evacuation_text_uses_building_id_without_a_name() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    actions = engine.on_alarm(alarm("SD-21", building="b2"))
    assert actions  # the source is recorded
    (inc,) = engine.incidents()
    shown = [r for r in engine.timeline(inc.id) if r.data.get("action") == "show"]
    assert shown[0].data["payload"]["text"].startswith("b2栋1楼发生火警")


def test_no_teams_in_the_site_model_leaves_the_incident_confirmed() -> None:
    engine, _ = make_engine(site=site_model(fire_teams=[]))
    _, actions = confirmed_fire(engine)
    assert engine.incidents()[0].state == State.CONFIRMED
    assert notices(actions) == []
    assert any(r.kind == "note" for r in records(actions))
    assert commands(actions, "show")


def test_site_model_zone_wins_over_a_zone_in_the_payload() -> None:
    from tests.fire.helpers import msg

    engine, _ = make_engine()
    engine.on_alarm(msg("b1", "smoke", "SD-1", event="alarm", tags={"zone": "b1-f5"}))
    assert engine.incidents()[0].zone == "b1-f3"


def test_alarms_in_the_bulk_lane_are_left_to_the_alarm_lane() -> None:
    engine, _ = make_engine()
    assert engine.on_messages([alarm("SD-1"), alarm("SD-2")]) == []
    assert engine.incidents() == []
