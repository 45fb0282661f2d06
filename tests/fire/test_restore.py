"""Restart safety: incidents, timers, commands in flight and released doors come back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.fire import Action, Audit, FireEngine, IncidentError
from gateway.fire.actions import AuditRecord
from tests.fire.helpers import (
    ack,
    alarm,
    answer,
    commands,
    confirmed_fire,
    make_engine,
    notices,
    records,
    troubles,
)

TICK = 0.5


class Spool:
    """Stands in for the lead's durable store: every audit record, as stored JSON."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def keep(self, actions: list[Action]) -> list[Action]:
        self.rows += [json.dumps(a.record.to_dict()) for a in actions if isinstance(a, Audit)]
        return actions

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.rows]


def half_an_incident(engine: FireEngine, clock: ManualClock, spool: Spool) -> str:
    """Confirmed, screens/voice acknowledged, door release not confirmed, one escalation."""
    inc_id, actions = confirmed_fire(engine)
    spool.keep(actions)
    spool.keep(answer(engine, [c for c in commands(actions) if c.payload["action"] != "release"]))
    for _ in range(round(70 / TICK)):
        clock.advance(TICK)
        step = spool.keep(engine.tick())
        spool.keep(answer(engine, [c for c in commands(step) if c.payload["action"] != "release"]))
    return inc_id


def test_restored_engine_continues_exactly_like_one_that_never_stopped() -> None:
    survivor, clock = make_engine(door_confirm_s=5, command_max_retries=2)
    spool = Spool()
    inc_id = half_an_incident(survivor, clock, spool)
    restored, _ = make_engine(clock, door_confirm_s=5, command_max_retries=2)
    summary = restored.restore(spool.records())
    assert summary.skipped == ()
    assert summary.open_incidents == (inc_id,)
    assert summary.applied == len(spool.rows)
    assert restored.incident(inc_id) == survivor.incident(inc_id)
    assert restored.timeline(inc_id) == survivor.timeline(inc_id)
    assert restored.next_deadline() == survivor.next_deadline()
    escalations = []
    for _ in range(round(400 / TICK)):
        clock.advance(TICK)
        a, b = survivor.tick(), restored.tick()
        assert a == b
        escalations += [(n.reason, n.team) for n in notices(b)]
    assert escalations == [("no_ack", "street"), ("no_ack", "district"),
                           ("not_on_scene", "street"), ("deadline", "district")]  # fmt: skip
    inc = restored.incident(inc_id)
    assert inc.breach and inc.escalation == 5
    assert inc.doors == {"b1-d1": "unconfirmed", "b1-d2": "unconfirmed"}
    # Doors released before the restart go back to normal when it is resolved.
    actions = restored.act(inc_id, "resolve", "mfs-near")
    assert commands(actions, "normal")[0].payload["doors"] == ["b1-d1", "b1-d2"]


def test_deadline_counts_from_opened_at_across_a_restart() -> None:
    engine, clock = make_engine(deadline_s=300, arrive_s=1000, ack_s=1000, voice_ttl_s=1000)
    spool = Spool()
    spool.keep(engine.on_alarm(alarm("SD-1")))
    opened = clock.monotonic()
    clock.advance(100)
    spool.keep(engine.act(engine.incidents()[0].id, "confirm", "duty-wang"))
    clock.advance(30)  # the gateway is down for a while
    restored, _ = make_engine(clock, deadline_s=300, arrive_s=1000, ack_s=1000,
                              voice_ttl_s=1000)  # fmt: skip
    restored.restore(spool.records())
    answer(restored, restored.tick())  # pending commands are retried at once
    seen = []
    while clock.monotonic() < opened + 400:
        clock.advance(TICK)
        seen += [(clock.monotonic() - opened, n.reason) for n in notices(restored.tick())]
    assert seen == [(300.0, "deadline")]


def test_timers_that_expired_while_down_fire_at_the_first_tick() -> None:
    engine, clock = make_engine()
    spool = Spool()
    inc_id, actions = confirmed_fire(engine)
    spool.keep(actions)
    spool.keep(answer(engine, actions))
    clock.advance(400)
    restored, _ = make_engine(clock)
    restored.restore(spool.records())
    reasons = [n.reason for n in notices(restored.tick())]
    assert reasons == ["no_ack", "no_ack", "no_ack", "not_on_scene", "deadline"]
    assert restored.incident(inc_id).breach


def test_unconfirmed_door_is_recommanded_after_a_restart() -> None:
    engine, clock = make_engine(door_confirm_s=5)
    spool = Spool()
    inc_id, actions = confirmed_fire(engine)
    spool.keep(actions)
    spool.keep(answer(engine, [c for c in commands(actions) if c.payload["action"] != "release"]))
    clock.advance(2)
    restored, _ = make_engine(clock, door_confirm_s=5)
    restored.restore(spool.records())
    clock.advance(3)
    step = restored.tick()
    assert len(commands(step, "release")) == 2
    assert sorted(t.alert.detail["door"] for t in troubles(step)) == ["b1-d1", "b1-d2"]
    # The original release command's ack still counts after the restart.
    (release,) = commands(actions, "release")
    restored.on_messages([ack(release)])
    assert restored.incident(inc_id).doors == {"b1-d1": "confirmed", "b1-d2": "confirmed"}


def test_ids_continue_after_a_restart() -> None:
    engine, clock = make_engine()
    spool = Spool()
    first, actions = confirmed_fire(engine)
    spool.keep(actions)
    spool.keep(engine.act(first, "false_alarm", "duty-wang"))
    restored, _ = make_engine(clock)
    restored.restore(spool.records())
    second, actions2 = confirmed_fire(restored)
    assert first.endswith("-0001") and second.endswith("-0002")
    old_ids = {json.loads(r)["data"].get("cmd_id") for r in spool.rows} - {None}
    new_ids = {c.payload["cmd_id"] for c in commands(actions2)}
    assert new_ids and not old_ids & new_ids
    # More commands of a restored open incident continue its numbering.
    spool2 = Spool()
    spool2.rows = list(spool.rows)
    spool2.keep(actions2)
    again, _ = make_engine(clock)
    again.restore(spool2.records())
    resolve = commands(again.act(second, "resolve", "x"))
    assert resolve and not {c.payload["cmd_id"] for c in resolve} & (old_ids | new_ids)


def test_bad_duplicate_and_orphan_records_are_skipped_with_a_reason() -> None:
    engine, clock = make_engine()
    spool = Spool()
    inc_id, actions = confirmed_fire(engine)
    spool.keep(actions)
    rows = spool.records()
    bad: list[Any] = [
        rows[0],
        rows[1],
        rows[1],  # duplicate (the spool replayed it)
        {"incident": "inc-x", "seq": 2, "ts": 1, "kind": "state", "by": "x", "data": {}},
        {"incident": inc_id, "seq": 3, "ts": 1, "kind": "teleport", "by": "x", "data": {}},
        "garbage",
        *rows[2:],
    ]
    restored, _ = make_engine(clock)
    summary = restored.restore(bad)
    assert summary.applied == len(rows)
    assert len(summary.skipped) == 4
    assert "duplicate" in summary.skipped[0]
    assert "no 'opened' record" in summary.skipped[1]
    assert "'teleport' is unknown" in summary.skipped[2]
    assert "must be an object" in summary.skipped[3]
    assert restored.incident(inc_id) == engine.incident(inc_id)


def test_restore_needs_a_fresh_engine() -> None:
    engine, _ = make_engine()
    confirmed_fire(engine)
    with pytest.raises(IncidentError, match="fresh engine"):
        engine.restore([])


def test_audit_record_is_an_incident_point() -> None:
    engine, _ = make_engine()
    _, actions = confirmed_fire(engine)
    rec = next(r for r in records(actions) if r.kind == "state")
    assert rec.line("shazui") == (
        f"incident,incident={rec.incident},kind=state,seq={rec.seq},site=shazui "
        f'by="SD-2",from="pre_alarm",to="confirmed",reason="second_detector" {rec.ts}'
    )
    same_ms = [r.line("shazui").split(" ", 1)[0] for r in records(actions)]
    assert len(set(same_ms)) == len(same_ms)  # no two points of one millisecond collide
    assert AuditRecord.from_dict(rec.to_dict()) == rec


def test_closed_incidents_are_forgotten_beyond_keep_closed_but_not_mid_teardown() -> None:
    from gateway.config import FireSection
    from gateway.fire import FireEngine
    from gateway.site import SiteIndex
    from tests.fire.helpers import ROOT, SITE, site_model

    clock = ManualClock()
    engine = FireEngine(FireSection(), SiteIndex(site_model()), SITE, ROOT, clock, keep_closed=1)
    first, actions = confirmed_fire(engine)
    answer(engine, actions)
    teardown = engine.act(first, "resolve", "mfs-near")
    engine.on_alarm(alarm("SD-6"))
    second = engine.incidents()[-1].id
    engine.act(second, "false_alarm", "duty-wang")
    # `first` still awaits the acks of its clear/stop/normal commands: it is kept.
    assert [i.id for i in engine.incidents()] == [first, second]
    answer(engine, teardown)
    engine.on_alarm(alarm("SD-21", building="b2"))
    engine.act(engine.incidents()[-1].id, "false_alarm", "duty-wang")
    assert first not in [i.id for i in engine.incidents()]
    with pytest.raises(IncidentError):
        engine.timeline(first)
