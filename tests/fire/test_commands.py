"""Command ids, acks, bounded retries, door confirmation and no repeated announcements."""

from __future__ import annotations

from gateway.fire import State
from tests.fire.helpers import (
    ack,
    alarm,
    alerts,
    answer,
    answered_fire,
    commands,
    confirmed_fire,
    make_engine,
    msg,
    records,
    targets,
    troubles,
)


def test_unacknowledged_commands_are_retried_bounded_then_reported() -> None:
    engine, clock = make_engine(command_retry_s=5, command_max_retries=2, door_confirm_s=1000)
    _, actions = confirmed_fire(engine)
    screen = next(c for c in commands(actions, "show") if "SCR-b1-a" in c.topic)
    others = [c for c in commands(actions) if c is not screen and c.payload["action"] != "release"]
    engine.on_messages([ack(c) for c in others])
    resent = []
    for _ in range(4):
        clock.advance(5)
        resent.append(engine.tick())
    assert [commands(a) for a in resent[:2]] == [[screen], [screen]]  # same cmd_id, same payload
    (trouble,) = troubles(resent[2])
    assert (trouble.alert.type, trouble.alert.device) == ("trouble", "SCR-b1-a")
    assert trouble.alert.detail["trouble"] == "command_unacknowledged"
    assert trouble.alert.detail["cmd_id"] == screen.payload["cmd_id"]
    assert resent[3] == []
    kinds = [r.kind for a in resent for r in records(a)]
    assert kinds == ["retry", "retry", "command_failed"]


def test_an_ack_from_another_device_is_ignored() -> None:
    engine, clock = make_engine(command_retry_s=5, door_confirm_s=1000)
    _, actions = confirmed_fire(engine)
    screen = commands(actions, "show")[0]
    forged = msg("b1", "screen", "SCR-other", "ack",
                 fields={"cmd_id": screen.payload["cmd_id"], "ok": True})  # fmt: skip
    assert engine.on_messages([forged]) == []
    clock.advance(5)
    assert screen in commands(engine.tick())


def test_a_rejected_command_raises_trouble_and_is_not_retried() -> None:
    engine, clock = make_engine(command_retry_s=5, door_confirm_s=1000)
    _, actions = confirmed_fire(engine)
    say = commands(actions, "say")[0]
    reply = engine.on_messages([ack(say, ok=False)])
    (trouble,) = troubles(reply)
    assert trouble.alert.detail["trouble"] == "command_rejected"
    clock.advance(5)
    assert say not in commands(engine.tick())


def test_door_confirmed_by_the_controller_ack() -> None:
    engine, _ = make_engine()
    inc_id, actions = confirmed_fire(engine)
    (release,) = commands(actions, "release")
    reply = engine.on_messages([ack(release)])
    assert [r.kind for r in records(reply)] == ["ack", "door_confirmed", "door_confirmed"]
    retained = alerts(reply, retained=True)[-1]
    assert retained["doors_confirmed"] == ["b1-d1", "b1-d2"]
    assert engine.incident(inc_id).doors == {"b1-d1": "confirmed", "b1-d2": "confirmed"}
    assert alerts(reply) == []  # door news goes to the retained topic only


def test_door_confirmed_by_the_controller_status() -> None:
    engine, _ = make_engine()
    inc_id, _ = confirmed_fire(engine)
    status = msg("b1", "access", "AC-b1", "status", fields={"state": "released", "online": True})
    engine.on_messages([status])
    assert engine.incident(inc_id).doors == {"b1-d1": "confirmed", "b1-d2": "confirmed"}


def test_door_that_does_not_confirm_is_recommanded_and_raised_as_trouble() -> None:
    engine, clock = make_engine(door_confirm_s=5, command_max_retries=2)
    inc_id, actions = confirmed_fire(engine)
    answer(engine, [c for c in commands(actions) if c.payload["action"] != "release"])
    clock.advance(4.9)
    assert engine.tick() == []
    clock.advance(0.1)
    late = engine.tick()
    again = commands(late, "release")
    assert [c.payload["doors"] for c in again] == [["b1-d1"], ["b1-d2"]]
    assert (
        len(
            {c.payload["cmd_id"] for c in again}
            | {commands(actions, "release")[0].payload["cmd_id"]}
        )
        == 3
    )
    named = sorted(t.alert.detail["door"] for t in troubles(late))
    assert named == ["b1-d1", "b1-d2"]
    assert all(t.alert.state == "raised" and t.alert.device == "AC-b1" for t in troubles(late))
    assert engine.incident(inc_id).doors == {"b1-d1": "unconfirmed", "b1-d2": "unconfirmed"}
    # The second try works for one door: its trouble clears.
    reply = engine.on_messages([ack(again[0])])
    (cleared,) = troubles(reply)
    assert (cleared.alert.state, cleared.alert.detail["door"]) == ("cleared", "b1-d1")
    assert engine.incident(inc_id).doors == {"b1-d1": "confirmed", "b1-d2": "unconfirmed"}
    # The other is tried a bounded number of times (no second trouble), then left raised.
    tries = []
    for _ in range(5):
        clock.advance(5)
        step = engine.tick()
        tries.append(len(commands(step, "release")))
        assert troubles(step) == []
    assert tries == [1, 0, 0, 0, 0]
    assert engine.incident(inc_id).doors["b1-d2"] == "unconfirmed"


def test_resolve_clears_terminals_and_returns_doors_to_normal() -> None:
    engine, _ = make_engine()
    inc_id = answered_fire(engine)
    engine.act(inc_id, "on_scene", "mfs-near")
    actions = engine.act(inc_id, "resolve", "mfs-near")
    assert targets(commands(actions, "clear")) == {
        "b1/screen/SCR-b1-a",
        "b1/screen/SCR-b1-b",
        "gates/screen/SCR-gate-1",
    }
    assert targets(commands(actions, "stop")) == {"b1/voice/VT-b1", "b1/voice/AMP-b1"}
    (normal,) = commands(actions, "normal")
    assert normal.payload["doors"] == ["b1-d1", "b1-d2"]
    assert [a["state"] for a in alerts(actions)] == ["resolved"]
    assert engine.incident(inc_id).closed_by == "mfs-near"
    assert engine.next_deadline() is not None  # the teardown commands await their acks
    answer(engine, actions)
    assert engine.next_deadline() is None


def test_a_door_shared_with_an_open_incident_stays_released() -> None:
    engine, _ = make_engine()
    first = answered_fire(engine)  # b1-f3 holds b1-d1, b1-d2
    engine.on_alarm(alarm("SD-4"))
    second_actions = engine.on_alarm(alarm("SD-5"))  # b1-f3e holds b1-d2
    assert commands(second_actions, "release") == []  # already released
    actions = engine.act(first, "false_alarm", "duty-wang")
    (normal,) = commands(actions, "normal")
    assert normal.payload["doors"] == ["b1-d1"]
    second = engine.incidents(open_only=True)[0]
    assert second.doors == {"b1-d2": "confirmed"}


def test_closing_one_incident_hands_terminals_to_the_other_without_repeating() -> None:
    engine, _ = make_engine()
    first = answered_fire(engine)
    engine.on_alarm(alarm("SD-4"))
    answer(engine, engine.on_alarm(alarm("SD-5")))  # same building and floor: same text
    actions = engine.act(first, "resolve", "mfs-near")
    # The other incident still covers every terminal with the same text: nothing is sent.
    assert commands(actions, "show") == commands(actions, "say") == []
    assert commands(actions, "clear") == commands(actions, "stop") == []


def test_closing_an_older_incident_leaves_the_newer_text_alone() -> None:
    engine, _ = make_engine()
    first = answered_fire(engine)  # floor 3
    engine.on_alarm(alarm("SD-6"))
    answer(engine, engine.on_alarm(alarm("SD-7")))  # floor 5, announced last
    actions = engine.act(first, "resolve", "mfs-near")
    assert commands(actions, "show") == commands(actions, "say") == []
    assert commands(actions, "clear") == commands(actions, "stop") == []


def test_closing_the_newer_incident_shows_the_older_text_again() -> None:
    engine, _ = make_engine()
    engine.on_alarm(alarm("SD-6"))
    answer(engine, engine.on_alarm(alarm("SD-7")))  # floor 5 first
    newer = answered_fire(engine)  # then floor 3, now on every terminal
    actions = engine.act(newer, "resolve", "mfs-near")
    shown, said = commands(actions, "show"), commands(actions, "say")
    assert (len(shown), len(said)) == (3, 2)
    assert all(c.payload["text"].startswith("1栋5楼") for c in shown + said)
    assert commands(actions, "clear") == commands(actions, "stop") == []


def test_storm_of_alarms_sends_no_repeated_announcements() -> None:
    engine, clock = make_engine()
    answered_fire(engine)
    for device in ("SD-3", "SD-1", "SD-2"):
        clock.advance(1)
        assert commands(engine.on_alarm(alarm(device))) == []


def test_announcement_is_refreshed_only_after_its_ttl() -> None:
    engine, clock = make_engine(screen_ttl_s=600, voice_ttl_s=120, arrive_s=1000,
                                deadline_s=2000, ack_s=1000)  # fmt: skip
    inc_id = answered_fire(engine)
    engine.act(inc_id, "ack", "mfs-near")
    clock.advance(119.9)
    assert commands(engine.tick()) == []
    clock.advance(0.1)
    voice = engine.tick()
    assert targets(commands(voice)) == {"b1/voice/VT-b1", "b1/voice/AMP-b1"}
    answer(engine, voice)
    clock.advance(600 - 120)
    screens = engine.tick()
    assert targets(commands(screens, "show")) == {
        "b1/screen/SCR-b1-a",
        "b1/screen/SCR-b1-b",
        "gates/screen/SCR-gate-1",
    }


def test_acknowledgement_and_on_scene_do_not_reannounce() -> None:
    engine, _ = make_engine()
    inc_id = answered_fire(engine)
    assert commands(engine.act(inc_id, "ack", "mfs-near")) == []
    assert commands(engine.act(inc_id, "on_scene", "mfs-near")) == []
    assert engine.incident(inc_id).state == State.ON_SCENE


def test_door_without_a_controller_is_raised_at_once() -> None:
    from tests.fire.helpers import site_model

    site = site_model()
    b1 = site.buildings[0].model_copy(update={"access": []})
    engine, _ = make_engine(site=site.model_copy(update={"buildings": [b1, *site.buildings[1:]]}))
    inc_id, actions = confirmed_fire(engine)
    assert commands(actions, "release") == []
    assert sorted(t.alert.detail["door"] for t in troubles(actions)) == ["b1-d1", "b1-d2"]
    assert {t.alert.detail["trouble"] for t in troubles(actions)} == {"door_without_controller"}
    assert engine.incident(inc_id).doors == {"b1-d1": "unconfirmed", "b1-d2": "unconfirmed"}


def test_checkpoint_door_is_released_by_the_checkpoint_controller() -> None:
    engine, _ = make_engine(release_scope="building")
    actions = engine.on_alarm(alarm("CP-21", building="b2", kind="callpoint"))
    (release,) = commands(actions, "release")
    assert release.topic.endswith("/gates/access/AC-cp-n/cmd")
    assert release.payload["doors"] == ["cp-n-d1"]


def test_release_scope_building_opens_every_egress_door_of_the_building() -> None:
    engine, _ = make_engine(release_scope="building")
    _, actions = confirmed_fire(engine)
    (release,) = commands(actions, "release")
    assert release.payload["doors"] == ["b1-d1", "b1-d2", "b1-d3"]
