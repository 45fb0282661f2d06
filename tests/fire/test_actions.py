"""People's actions: legal transitions only; anything else is a clear error and changes nothing."""

from __future__ import annotations

import json

import pytest

from gateway.errors import GatewayError
from gateway.fire import FireEngine, IncidentError, State, parse_action
from tests.fire.helpers import alarm, answered_fire, make_engine


def snapshot(engine: FireEngine, inc_id: str) -> tuple[object, int, float | None]:
    return engine.incident(inc_id), len(engine.timeline(inc_id)), engine.next_deadline()


@pytest.mark.parametrize(
    ("state_actions", "action", "message"),
    [
        ([], "ack", "is pre_alarm: cannot ack (allowed now: confirm, false_alarm)"),
        ([], "on_scene", "is pre_alarm: cannot on_scene"),
        ([], "resolve", "is pre_alarm: cannot resolve"),
        (["confirm"], "confirm", "is dispatched: cannot confirm"),
        (["confirm", "on_scene"], "ack", "is on_scene: cannot ack"),
        (["confirm", "ack"], "ack", "is acknowledged: cannot ack"),
        (["confirm", "resolve"], "false_alarm", "is already resolved: cannot false_alarm"),
        (["false_alarm"], "confirm", "is already false_alarm: cannot confirm"),
        (["confirm"], "explode", "unknown action 'explode'"),
    ],
)
def test_illegal_action_is_a_clear_error_and_changes_nothing(
    state_actions: list[str], action: str, message: str
) -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-1"))
    inc_id = engine.incidents()[0].id
    for step in state_actions:
        engine.act(inc_id, step, "duty-wang")
    before = snapshot(engine, inc_id)
    with pytest.raises(IncidentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.act(inc_id, action, "duty-wang")
    assert snapshot(engine, inc_id) == before


def test_unknown_incident_is_a_clear_error() -> None:
    engine, _ = make_engine()
    inc_id = answered_fire(engine)
    with pytest.raises(IncidentError, match=f"no incident 'inc-nope' \\(open: {inc_id}\\)"):
        engine.act("inc-nope", "ack", "mfs-near")
    with pytest.raises(IncidentError):
        engine.timeline("inc-nope")
    assert issubclass(IncidentError, GatewayError)


def test_action_needs_who() -> None:
    engine, _ = make_engine()
    inc_id = answered_fire(engine)
    with pytest.raises(IncidentError, match="'by' must name who acts"):
        engine.act(inc_id, "ack", "  ")
    assert engine.incident(inc_id).state == State.DISPATCHED


def test_full_life_of_an_incident() -> None:
    engine, _ = make_engine()
    inc_id = answered_fire(engine)
    for action, state in (
        ("ack", State.ACKNOWLEDGED),
        ("on_scene", State.ON_SCENE),
        ("resolve", State.RESOLVED),
    ):
        engine.act(inc_id, action, "mfs-near")
        assert engine.incident(inc_id).state == state
    kinds = [(r.kind, r.data.get("to")) for r in engine.timeline(inc_id) if r.kind == "state"]
    assert [to for _, to in kinds] == [
        "confirmed", "dispatched", "acknowledged", "on_scene", "resolved"
    ]  # fmt: skip
    seqs = [r.seq for r in engine.timeline(inc_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_parse_action_payload() -> None:
    assert parse_action(json.dumps({"by": "team-3", "action": "ack"}).encode()) == (
        "ack",
        "team-3",
    )
    for bad, why in (
        (b"not json", "not JSON"),
        (b"[1]", "must be"),
        (b'{"by": "x", "action": "dance"}', "'dance' is not one of"),
        (b'{"action": "ack"}', "needs 'by'"),
        (b'{"action": "ack", "by": ""}', "needs 'by'"),
        (b"\xff\xfe", "not JSON"),
    ):
        with pytest.raises(IncidentError, match=why):
            parse_action(bad)
