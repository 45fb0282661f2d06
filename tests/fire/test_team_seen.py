"""A camera that recognises a dispatched team at a checkpoint of the building: on scene.

The twin of the card path (test_escalation.py): messages are decoded by the real decoder,
so the checkpoint a camera stands at comes from the site model as in production.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.clock import ManualClock
from gateway.config import DEFAULT_PROFILES_DIR, FireSection, parse_config
from gateway.decode import Decoder, ProfileSet
from gateway.decode.message import DeviceMessage
from gateway.errors import ConfigError
from gateway.fire import FireEngine, State
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex, SiteModel
from tests.fire.helpers import (
    SALT,
    SITE,
    alarm,
    alerts,
    answer,
    confirmed_fire,
    make_engine,
    records,
    site_model,
)

TICK = 0.25
TS = 1_795_475_306_000
# The helper site's checkpoints, each with a recognising camera: cp-b1 is b1's own
# entrance; the gates publish under `gates`, cp-n leads to b2, cp-s leads nowhere.
CHECKPOINTS = [
    {"id": "cp-b1", "building": "b1", "doors": ["b1-lobby"], "access": ["RD-b1"],
     "cameras": ["CAM-cp-b1"]},
    {"id": "cp-n", "building": "gates", "doors": ["cp-n-d1"], "access": ["AC-cp-n"],
     "cameras": ["CAM-cp-n"], "leads_to": ["b2"]},
    {"id": "cp-s", "building": "gates", "doors": ["cp-s-d1"], "access": ["AC-cp-s"],
     "cameras": ["CAM-cp-s"]},
]  # fmt: skip


def site() -> SiteModel:
    return site_model(checkpoints=CHECKPOINTS)


def engine_with_cameras(
    clock: ManualClock | None = None, **settings: Any
) -> tuple[FireEngine, ManualClock]:
    return make_engine(clock, site=site(), **settings)


def seen(
    camera: str, building: str, team: str = "mfs-near", confidence: float = 0.93, **extra: Any
) -> DeviceMessage:
    """A canonical `team_seen` on `…/{building}/camera/{camera}/event`, decoded for real."""
    decoder = Decoder(ProfileSet.load(DEFAULT_PROFILES_DIR), SiteIndex(site()), SALT)
    payload = {"ts": TS, "event": "team_seen", "team": team, "confidence": confidence, **extra}
    topic = DeviceTopic(SITE, building, "camera", camera, "event")
    return decoder.decode(topic, json.dumps(payload).encode(), TS)


def escalations(engine: FireEngine, clock: ManualClock, seconds: float) -> list[str]:
    """Tick every TICK for `seconds`; the reason of every escalation on the way."""
    out = []
    for _ in range(round(seconds / TICK)):
        clock.advance(TICK)
        out += [str(r.data["reason"]) for r in records(engine.tick()) if r.kind == "escalation"]
    return out


def test_team_seen_at_a_checkpoint_of_the_building_is_on_scene_before_arrive_s() -> None:
    engine, clock = engine_with_cameras(ack_s=60, arrive_s=180, deadline_s=300)
    inc_id, _ = confirmed_fire(engine)
    clock.advance(90)
    actions = engine.on_messages([seen("CAM-cp-b1", "b1", member="E0042")])
    assert [a["state"] for a in alerts(actions)] == ["on_scene"]
    assert [a["state"] for a in alerts(actions, retained=True)] == ["on_scene"]
    inc = engine.incident(inc_id)
    assert (inc.state, inc.on_scene_by, inc.reason) == (State.ON_SCENE, "mfs-near", "camera")
    assert inc.on_scene_at == clock.wall_ms()
    (rec,) = records(actions)
    assert (rec.kind, rec.by) == ("state", "mfs-near")
    assert rec.data == {
        "from": "dispatched",
        "to": "on_scene",
        "reason": "camera",
        "device": "CAM-cp-b1",
        "checkpoint": "cp-b1",
        "confidence": 0.93,
    }
    # Neither the street tier (arrive_s) nor the deadline breach ever fires.
    assert escalations(engine, clock, 400) == []


def test_without_the_camera_the_street_tier_is_called_at_arrive_s() -> None:
    # The control of the test above: the same fire, nobody seen.
    engine, clock = engine_with_cameras(ack_s=1000, arrive_s=180, deadline_s=300)
    confirmed_fire(engine)
    clock.advance(90)
    assert escalations(engine, clock, 400) == ["not_on_scene", "deadline"]


def test_team_seen_at_a_gate_that_leads_to_the_building_counts() -> None:
    engine, _ = engine_with_cameras()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    assert engine.on_messages([seen("CAM-cp-s", "gates")]) == []  # cp-s leads elsewhere
    actions = engine.on_messages([seen("CAM-cp-n", "gates")])
    (rec,) = records(actions)
    assert (rec.data["checkpoint"], rec.data["reason"]) == ("cp-n", "camera")
    assert engine.incidents()[0].state == State.ON_SCENE


def test_checkpoint_named_in_the_payload_counts_for_an_unlisted_camera() -> None:
    engine, _ = engine_with_cameras()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    engine.on_messages([seen("CAM-new", "gates", checkpoint="cp-n")])
    assert engine.incidents()[0].state == State.ON_SCENE


def test_team_seen_at_another_buildings_camera_does_nothing() -> None:
    engine, _ = engine_with_cameras()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    assert engine.on_messages([seen("CAM-cp-b1", "b1"), seen("CAM-b1", "b1")]) == []
    assert engine.incidents()[0].state == State.DISPATCHED


@pytest.mark.parametrize(("threshold", "confidence"), [(0.8, 0.79), (0.95, 0.93), (0.8, 0.0)])
def test_below_the_confidence_threshold_nothing_happens(
    threshold: float, confidence: float
) -> None:
    engine, clock = engine_with_cameras(team_seen_confidence=threshold, ack_s=1000)
    inc_id, _ = confirmed_fire(engine)
    assert engine.on_messages([seen("CAM-cp-b1", "b1", confidence=confidence)]) == []
    assert engine.incident(inc_id).state == State.DISPATCHED
    assert "not_on_scene" in escalations(engine, clock, 200)


def test_the_threshold_itself_counts() -> None:
    engine, _ = engine_with_cameras(team_seen_confidence=0.95)
    inc_id, _ = confirmed_fire(engine)
    engine.on_messages([seen("CAM-cp-b1", "b1", confidence=0.95)])
    assert engine.incident(inc_id).state == State.ON_SCENE


def test_a_team_that_was_not_alerted_or_is_unknown_does_nothing() -> None:
    engine, clock = engine_with_cameras(ack_s=60)
    inc_id, _ = confirmed_fire(engine)
    # mfs-far is next in the chain but not alerted yet; "ghost" is no team of the site.
    batch = [seen("CAM-cp-b1", "b1", team="mfs-far"), seen("CAM-cp-b1", "b1", team="ghost")]
    assert engine.on_messages(batch) == []
    assert engine.incident(inc_id).state == State.DISPATCHED
    clock.advance(60)
    engine.tick()  # no ack: mfs-far is alerted now, and its sighting counts
    engine.on_messages([seen("CAM-cp-b1", "b1", team="mfs-far")])
    assert (engine.incident(inc_id).state, engine.incident(inc_id).on_scene_by) == (
        State.ON_SCENE,
        "mfs-far",
    )


def test_a_team_seen_before_dispatch_does_nothing_then_or_later() -> None:
    engine, _ = engine_with_cameras()
    engine.on_alarm(alarm("SD-1"))  # pre-alarm: no team alerted yet
    assert engine.on_messages([seen("CAM-cp-b1", "b1")]) == []
    engine.on_alarm(alarm("SD-2"))
    (inc,) = engine.incidents()
    assert inc.state == State.DISPATCHED, "an earlier sighting must not count after dispatch"


def test_sightings_after_on_scene_and_after_the_verdict_change_nothing() -> None:
    engine, _ = engine_with_cameras()
    inc_id, _ = confirmed_fire(engine)
    engine.on_messages([seen("CAM-cp-b1", "b1")])
    assert engine.on_messages([seen("CAM-cp-b1", "b1"), seen("CAM-cp-b1", "b1")]) == []
    engine.act(inc_id, "resolve", "mfs-near")
    assert engine.on_messages([seen("CAM-cp-b1", "b1")]) == []
    assert len([r for r in engine.timeline(inc_id) if r.data.get("to") == "on_scene"]) == 1


def test_the_alarm_lane_ignores_team_seen() -> None:
    engine, _ = engine_with_cameras()
    msg = seen("CAM-cp-b1", "b1")
    assert not msg.is_alarm
    assert engine.on_alarm(msg) == []
    assert engine.incidents() == []


def test_drill_team_seen_behaves_like_the_card() -> None:
    engine, clock = engine_with_cameras(arrive_s=180, deadline_s=300)
    (first, *_) = alerts(engine.drill("b1", "b1-f3", "duty-officer"))
    assert first["drill"] is True
    actions = engine.on_messages([seen("CAM-cp-b1", "b1")])
    (alert,) = alerts(actions)
    assert (alert["state"], alert["drill"], alert["on_scene_by"]) == ("on_scene", True, "mfs-near")
    assert escalations(engine, clock, 400) == []


def test_restart_replays_the_camera_on_scene() -> None:
    engine, clock = engine_with_cameras(arrive_s=180, deadline_s=300)
    inc_id, actions = confirmed_fire(engine)
    actions += answer(engine, actions)  # every command acknowledged: no retries pending
    clock.advance(30)
    actions += engine.on_messages([seen("CAM-cp-b1", "b1")])
    stored = [r.to_dict() for r in records(actions)]
    clock.advance(30)  # the gateway is down for half a minute
    fresh, _ = engine_with_cameras(clock, arrive_s=180, deadline_s=300)
    summary = fresh.restore(stored)
    assert (summary.applied, summary.skipped) == (len(stored), ())
    before, after = engine.incident(inc_id), fresh.incident(inc_id)
    assert after == before
    assert (after.state, after.on_scene_by, after.reason) == (State.ON_SCENE, "mfs-near", "camera")
    assert [r.kind for r in records(fresh.tick())] == []
    assert escalations(fresh, clock, 400) == []


def test_team_seen_confidence_is_a_checked_fire_setting() -> None:
    assert FireSection().team_seen_confidence == 0.8
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError, match="team_seen_confidence"):
            FireSection(team_seen_confidence=bad)
    text = '[gateway]\nid = "gw"\nsite = "s"\n\n[fire]\nteam_seen_confidence = 2\n'
    with pytest.raises(ConfigError, match=r"site.toml:6.*fire.team_seen_confidence"):
        parse_config(text, "site.toml")
    assert parse_config(text.replace("= 2", "= 0.9"), "site.toml").fire.team_seen_confidence == 0.9
