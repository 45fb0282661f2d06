"""A notice never overrides a fire message, and gets its screen back when the fire is gone."""

from __future__ import annotations

from gateway.notices import TerminalRef
from tests.fire.helpers import alarm
from tests.notices.helpers import B1_TERMINALS, B2_TERMINALS, Bench, status


def test_terminals_with_a_fire_message_are_skipped_and_reported() -> None:
    bench = Bench()
    incident = bench.confirm_fire("b1")
    fire_sent = len(bench.sent)
    view = bench.post(buildings=("b1", "b2"), gates=True)
    skipped = {s["terminal"]: s for s in view["skipped"]}
    # Confirmed fires also show on the gate screens (gate_screens_on_fire, the default).
    assert set(skipped) == B1_TERMINALS | {"gates/screen/SCR-gate-1"}
    assert skipped["b1/screen/SCR-b1-a"] == {
        "terminal": "b1/screen/SCR-b1-a",
        "reason": f"fire message on screen (incident {incident})",
        "incident": incident,
    }
    voice = skipped["b1/voice/VT-b1"]["reason"]
    assert voice == f"fire message on voice terminal (incident {incident})"
    assert bench.targets(fire_sent) == B2_TERMINALS  # nothing new reached b1 or the gates
    assert [c for c in bench.audio if "notice" in c.payload] == []  # nor AMP-b1's audio path
    assert {t: s for t, s in status(view).items() if t in B1_TERMINALS} == dict.fromkeys(
        B1_TERMINALS, "skipped"
    )
    (posted,) = [r for r in bench.stored() if r.kind == "posted"]
    assert len(posted.data["skipped"]) == 5 and posted.by == "op-1"


def test_a_pre_alarm_blocks_notices_only_where_it_is_announced() -> None:
    quiet = Bench()
    quiet.fire.on_alarm(alarm("SD-1"))  # pre_alarm, duty room only (the default)
    assert quiet.post(buildings=("b1",))["skipped"] == []
    loud = Bench(prealarm_notify_screens=True)
    loud.fire.on_alarm(alarm("SD-1"))
    view = loud.post(buildings=("b1",))
    assert set(status(view).values()) == {"skipped"}


def test_a_fire_takes_the_screen_and_gives_it_back_for_the_rest_of_the_ttl() -> None:
    bench = Bench()
    view = bench.post(buildings=("b1",), ttl_s=600)
    bench.ack_all()
    bench.clock.advance(100)
    incident = bench.confirm_fire("b1")
    view = bench.notices.get(view["id"])
    screens = {t for t in B1_TERMINALS if "/screen/" in t}
    assert {t: s for t, s in status(view).items() if t in screens} == dict.fromkeys(
        screens, "preempted"
    )
    assert status(view)["b1/voice/VT-b1"] == "acked"  # said and done: a fire changes nothing
    bench.ack_all()
    before = len(bench.sent)
    bench.clock.advance(50)
    bench.fire.act(incident, "resolve", "mfs-near")
    after = bench.sent[before:]
    clears = [i for i, (t, p) in enumerate(after) if p.get("action") == "clear" and "/b1/" in t]
    shows = [i for i, (t, p) in enumerate(after) if p.get("notice") == view["id"]]
    assert len(clears) == 2 and len(shows) == 2 and max(clears) < min(shows)  # clear first
    for _, payload in (after[i] for i in shows):
        assert (payload["action"], payload["ttl_s"], payload["priority"]) == ("show", 450, "notice")
    assert bench.targets(before) == screens  # the voice announcement is not repeated
    view = bench.notices.get(view["id"])
    assert {t: s for t, s in status(view).items() if t in screens} == dict.fromkeys(
        screens, "pending"
    )


def test_a_notice_that_expired_during_the_fire_is_not_shown_again() -> None:
    bench = Bench()
    view = bench.post(buildings=("b2",), kinds=("screen",), ttl_s=60)
    bench.ack_all()
    incident = bench.confirm_fire("b2")
    bench.clock.advance(61)
    before = len(bench.sent)
    bench.fire.act(incident, "false_alarm", "op-1")
    assert bench.targets(before) == set()
    assert bench.notices.get(view["id"])["state"] == "expired"


def test_nothing_is_retried_to_a_terminal_while_a_fire_covers_it() -> None:
    bench = Bench(command_retry_s=5)
    view = bench.post(buildings=("b1",))
    before = len(bench.sent)
    incident = bench.confirm_fire("b1")
    for _ in range(3):
        bench.clock.advance(5)
        bench.tick()
    assert bench.targets(before) == set()
    view = bench.notices.get(view["id"])
    assert set(status(view).values()) == {"preempted"}
    assert {t["incident"] for t in view["terminals"]} == {incident}
    assert bench.notices.next_deadline() is None
    # Voice announcements still in flight are dropped; the screens come back afterwards.
    bench.fire.act(incident, "resolve", "op-1")
    assert bench.targets(len(bench.sent) - 2) == {t for t in B1_TERMINALS if "/screen/" in t}


def test_clearing_sends_clear_and_stop_at_the_notice_priority() -> None:
    bench = Bench()
    view = bench.post(buildings=("b2",), priority="alert")
    bench.ack_all()
    before = len(bench.sent)
    view = bench.clear(view["id"], by="op-2")
    assert (view["state"], view["cleared_by"], view["clear_skipped"]) == ("cleared", "op-2", [])
    cmds = [p for _, p in bench.sent[before:]]
    assert [(c["action"], c["priority"]) for c in cmds] == [("clear", "alert"), ("stop", "alert")]
    assert bench.targets(before) == B2_TERMINALS
    assert bench.clear(view["id"])["cleared_by"] == "op-2"  # again: nothing more happens
    assert len(bench.sent) == before + 2


def test_clearing_never_touches_a_terminal_with_a_fire_message() -> None:
    bench = Bench()
    view = bench.post(buildings=("b1", "b2"))
    bench.ack_all()
    incident = bench.confirm_fire("b1")
    before = len(bench.sent)
    view = bench.clear(view["id"])
    assert bench.targets(before) == B2_TERMINALS
    assert {s["terminal"] for s in view["clear_skipped"]} == {
        "b1/voice/VT-b1",
        "b1/voice/AMP-b1",
    }  # the screens were already given up to the fire (preempted): nothing of ours there
    assert all(s["incident"] == incident for s in view["clear_skipped"])
    bench.ack_all(before)
    before = len(bench.sent)
    bench.fire.act(incident, "resolve", "op-1")
    assert bench.targets(before) == set()  # a cleared notice is not shown again


def test_clearing_an_alert_shows_the_notice_below_it_again() -> None:
    bench = Bench()
    screen = "b2/screen/SCR-b2"
    lower = bench.post(terminals=(TerminalRef("b2", "SCR-b2"),), ttl_s=300)
    upper = bench.post(terminals=(TerminalRef("b2", "SCR-b2"),), priority="alert")
    bench.ack_all()
    bench.clock.advance(100)
    before = len(bench.sent)
    bench.clear(upper["id"])
    cmds = bench.commands(screen)[-2:]
    assert len(bench.sent) == before + 2
    assert (cmds[0]["action"], cmds[0]["priority"], cmds[0]["notice"]) == (
        "clear",
        "alert",
        upper["id"],
    )
    assert (cmds[1]["action"], cmds[1]["ttl_s"], cmds[1]["notice"]) == ("show", 200, lower["id"])


def test_a_newer_notice_replaces_the_older_one_at_the_same_level() -> None:
    bench = Bench(command_retry_s=5)
    old = bench.post(buildings=("b2",), kinds=("screen",))
    new = bench.post(buildings=("b2",), kinds=("screen",))
    assert status(bench.notices.get(old["id"])) == {"b2/screen/SCR-b2": "replaced"}
    (terminal,) = bench.notices.get(old["id"])["terminals"]
    assert terminal["replaced_by"] == new["id"]
    bench.clock.advance(5)
    bench.tick()  # the old show, never acknowledged, must not come back over the new one
    assert [c["notice"] for c in bench.commands()] == [old["id"], new["id"], new["id"]]
    before = len(bench.sent)
    bench.clear(old["id"])
    assert len(bench.sent) == before  # clearing it would wipe the newer notice


def test_a_pending_clear_is_not_repeated_over_a_newer_notice() -> None:
    bench = Bench(command_retry_s=5)
    first = bench.post(buildings=("b2",), kinds=("screen",))
    bench.ack_all()
    bench.clear(first["id"])  # its clear is never acknowledged
    second = bench.post(buildings=("b2",), kinds=("screen",))
    bench.clock.advance(5)
    bench.tick()
    actions = [(c["action"], c["notice"]) for c in bench.commands()]
    assert actions[-1] == ("show", second["id"]) and actions.count(("clear", first["id"])) == 1


def test_a_pending_alert_clear_is_not_repeated_over_a_newer_lower_notice() -> None:
    bench = Bench(command_retry_s=5)
    alert = bench.post(buildings=("b2",), kinds=("screen",), priority="alert")
    bench.ack_all()
    bench.clear(alert["id"])  # clears alert and notice levels; never acknowledged
    lower = bench.post(buildings=("b2",), kinds=("screen",))
    bench.clock.advance(5)
    bench.tick()
    actions = [(c["action"], c["notice"]) for c in bench.commands()]
    assert actions[-1] == ("show", lower["id"]) and actions.count(("clear", alert["id"])) == 1
    (terminal,) = bench.notices.get(alert["id"])["terminals"]
    assert (terminal["status"], terminal["replaced_by"]) == ("replaced", lower["id"])
