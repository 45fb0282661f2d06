"""Escalation timers: each fires at its configured time (± one tick) and notifies a new tier."""

from __future__ import annotations

import json

import pytest

from gateway.clock import ManualClock
from gateway.config import DEFAULT_PROFILES_DIR
from gateway.decode import Decoder, ProfileSet
from gateway.decode.message import DeviceMessage
from gateway.fire import FireEngine, State
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex
from tests.fire.helpers import (
    FAR_CARD,
    NEAR_CARD,
    SALT,
    SITE,
    alarm,
    alerts,
    answer,
    answered_fire,
    commands,
    confirmed_fire,
    make_engine,
    notices,
    records,
    site_model,
)

TICK = 0.25  # the runner's scheduler tick in these tests


def run_until(engine: FireEngine, clock: ManualClock, seconds: float) -> list[tuple[float, str]]:
    """Tick every TICK for `seconds`; (time since start, escalation reason) of each escalation."""
    start = clock.monotonic()
    seen = []
    for _ in range(round(seconds / TICK)):
        clock.advance(TICK)
        for rec in records(engine.tick()):
            if rec.kind == "escalation":
                seen.append((clock.monotonic() - start, str(rec.data["reason"])))
    return seen


def swipe(card: str, building: str, reader: str, door: str) -> DeviceMessage:
    """A card swipe decoded by the real decoder (so the card hash is the gateway's)."""
    site = SiteIndex(site_model())
    decoder = Decoder(ProfileSet.load(DEFAULT_PROFILES_DIR), site, SALT)
    payload = {"ts": 1_795_475_306_000, "event": "swipe", "card": card, "door": door,
               "dir": "in", "granted": True}  # fmt: skip
    topic = DeviceTopic(SITE, building, "access", reader, "event")
    return decoder.decode(topic, json.dumps(payload).encode(), 1_795_475_306_000)


def test_no_ack_escalates_along_the_chain_at_ack_s() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=1000, deadline_s=2000)
    inc_id = answered_fire(engine)
    start = clock.monotonic()
    assert engine.next_deadline() == start + 60
    clock.advance(60 - TICK)
    assert engine.tick() == []
    clock.advance(TICK)
    actions = engine.tick()
    (notice,) = notices(actions)
    assert (notice.team, notice.tier, notice.reason) == ("mfs-far", 0, "no_ack")
    (alert,) = alerts(actions)
    assert (alert["state"], alert["team"], alert["escalation"]) == ("dispatched", "mfs-far", 1)
    assert alert["teams"] == ["mfs-near", "mfs-far"]
    # An escalation announces again, even within the terminals' ttl.
    assert len(commands(actions, "show")) == 3
    assert len(commands(actions, "say")) == 2
    # The chain goes on by tier: street command, then the district, then it ends.
    seen = run_until(engine, clock, 200)
    assert seen == [(60.0, "no_ack"), (120.0, "no_ack")]
    inc = engine.incident(inc_id)
    assert (inc.team, inc.escalation, inc.tier) == ("district", 3, 2)


def test_acknowledgement_stops_the_ack_chain() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=1000, deadline_s=2000)
    inc_id, _ = confirmed_fire(engine)
    clock.advance(59)
    actions = engine.act(inc_id, "ack", "mfs-near")
    assert [a["state"] for a in alerts(actions)] == ["acknowledged"]
    assert engine.incident(inc_id).acknowledged_by == "mfs-near"
    assert run_until(engine, clock, 300) == []


def test_not_on_scene_by_arrive_s_escalates_to_street_command() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=180, deadline_s=2000, voice_ttl_s=1000)
    inc_id = answered_fire(engine)
    engine.act(inc_id, "ack", "mfs-near")
    start = clock.monotonic()
    assert engine.next_deadline() == start + 180
    clock.advance(180 - TICK)
    assert engine.tick() == []
    clock.advance(TICK)
    actions = engine.tick()
    (notice,) = notices(actions)
    assert (notice.team, notice.tier, notice.reason) == ("street", 1, "not_on_scene")
    (alert,) = alerts(actions)
    assert (alert["state"], alert["escalation"], alert["team"]) == ("acknowledged", 1, "mfs-near")
    assert run_until(engine, clock, 100) == []  # once only


def test_arrive_is_measured_from_confirmation() -> None:
    engine, clock = make_engine(verify_s=100, arrive_s=180, deadline_s=2000, ack_s=1000)
    engine.on_alarm(alarm("SD-1"))
    seen = run_until(engine, clock, 400)
    assert seen == [(280.0, "not_on_scene")]


def test_deadline_is_a_breach_escalated_to_the_top_tier() -> None:
    engine, clock = make_engine(
        ack_s=1000, arrive_s=1000, deadline_s=300, verify_s=100, voice_ttl_s=1000
    )
    engine.on_alarm(alarm("SD-1"))  # the deadline counts from the first alarm
    opened = clock.monotonic()
    clock.advance(100)
    answer(engine, engine.tick())  # confirmed by the verification window
    assert engine.next_deadline() == opened + 300
    clock.advance(200 - TICK)
    assert notices(engine.tick()) == []
    clock.advance(TICK)
    actions = engine.tick()
    (notice,) = notices(actions)
    assert (notice.team, notice.tier, notice.reason) == ("district", 2, "deadline")
    (alert,) = alerts(actions)
    assert alert["breach"] is True
    assert alert["escalation"] == 1
    (rec,) = [r for r in records(actions) if r.kind == "escalation"]
    assert rec.data["due_at"] == alert["deadline_at"]
    assert engine.incidents()[0].breach


def test_every_escalation_in_one_incident_fires_at_its_time() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=180, deadline_s=300)
    confirmed_fire(engine)
    seen = run_until(engine, clock, 400)
    assert seen == [
        (60.0, "no_ack"),
        (120.0, "no_ack"),
        (180.0, "no_ack"),
        (180.0, "not_on_scene"),
        (300.0, "deadline"),
    ]
    assert engine.incidents()[0].escalation == 5


def test_a_late_tick_catches_up_in_time_order() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=180, deadline_s=300)
    confirmed_fire(engine)
    clock.advance(1000)
    reasons = [r.data["reason"] for r in records(engine.tick()) if r.kind == "escalation"]
    assert reasons == ["no_ack", "no_ack", "no_ack", "not_on_scene", "deadline"]
    due = [r.data["due_at"] for r in engine.timeline(engine.incidents()[0].id)
           if r.kind == "escalation"]  # fmt: skip
    opened = engine.incidents()[0].opened_at
    assert [d - opened for d in due] == [60_000, 120_000, 180_000, 180_000, 300_000]


def test_on_scene_stops_arrive_and_deadline() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=180, deadline_s=300)
    inc_id, _ = confirmed_fire(engine)
    clock.advance(30)
    actions = engine.act(inc_id, "on_scene", "mfs-near")
    assert alerts(actions)[0]["state"] == "on_scene"
    assert run_until(engine, clock, 600) == []
    assert engine.next_deadline() is None or engine.next_deadline() > clock.monotonic()


def test_team_card_at_a_checkpoint_of_the_building_reports_on_scene() -> None:
    engine, clock = make_engine(ack_s=60, arrive_s=180, deadline_s=300)
    inc_id, _ = confirmed_fire(engine)
    clock.advance(90)
    # A card of a team that was not dispatched, then an unknown card: nothing.
    assert engine.on_messages([swipe(FAR_CARD, "b1", "RD-b1", "b1-lobby")]) == []
    actions = engine.on_messages([swipe(NEAR_CARD, "b1", "RD-b1", "b1-lobby")])
    assert [a["state"] for a in alerts(actions)] == ["on_scene"]
    inc = engine.incident(inc_id)
    assert (inc.state, inc.on_scene_by) == (State.ON_SCENE, "mfs-near")
    (rec,) = [r for r in records(actions) if r.kind == "state"]
    assert (rec.data["reason"], rec.data["checkpoint"], rec.data["door"]) == (
        "card",
        "cp-b1",
        "b1-lobby",
    )
    assert run_until(engine, clock, 400) == []


def test_team_card_at_a_gate_that_leads_to_the_building_counts() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    # cp-s leads nowhere in particular; cp-n leads to b2.
    assert engine.on_messages([swipe(NEAR_CARD, "gates", "AC-cp-s", "cp-s-d1")]) == []
    engine.on_messages([swipe(NEAR_CARD, "gates", "AC-cp-n", "cp-n-d1")])
    assert engine.incidents()[0].state == State.ON_SCENE


def test_team_card_at_another_building_does_not_count() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    engine.on_messages([swipe(NEAR_CARD, "b1", "RD-b1", "b1-lobby")])
    assert engine.incidents()[0].state == State.DISPATCHED


@pytest.mark.parametrize("action", ["ack", "on_scene"])
def test_escalated_team_may_act_too(action: str) -> None:
    engine, clock = make_engine(ack_s=60)
    inc_id, _ = confirmed_fire(engine)
    clock.advance(60)
    engine.tick()
    engine.act(inc_id, action, "mfs-far")
    assert engine.incident(inc_id).state == ("acknowledged" if action == "ack" else "on_scene")
