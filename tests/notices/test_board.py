"""Sending notices: payloads, targets, text checks, acknowledgements and bounded retries."""

from __future__ import annotations

import pytest

from gateway.api.notices import Color
from gateway.config import FireSection
from gateway.fire import Publish
from gateway.fire.linkage import Terminal
from gateway.notices import (
    COLORS,
    Notice,
    NoticeBoard,
    NoticeError,
    NoticeSpec,
    Targets,
    TerminalRef,
    UnknownNotice,
)
from tests.fire.helpers import ROOT, SITE, ack, make_engine
from tests.notices.helpers import B1_TERMINALS, B2_TERMINALS, TEXT, Bench, status


def test_a_notice_reaches_every_screen_and_voice_terminal_of_the_building() -> None:
    bench = Bench()
    view = bench.post(buildings=("b2",), ttl_s=900)
    assert view["state"] == "active" and view["skipped"] == []
    assert status(view) == dict.fromkeys(B2_TERMINALS, "pending")
    (topic, show), (_, say) = bench.sent
    assert topic == "community/shazui/b2/screen/SCR-b2/cmd"
    assert show == {
        "cmd_id": f"{view['id']}-c001", "ts": bench.clock.wall_ms(), "action": "show",
        "text": TEXT, "priority": "notice", "ttl_s": 900, "notice": view["id"],
    }  # fmt: skip
    assert say == {
        "cmd_id": f"{view['id']}-c002", "ts": bench.clock.wall_ms(), "action": "say",
        "text": TEXT, "lang": "zh", "repeat": 1, "priority": "notice", "notice": view["id"],
    }  # fmt: skip
    assert view["id"].startswith("notice-2026")  # ManualClock's wall time is in 2026
    assert view["expires_at"] == view["created_at"] + 900_000


def test_an_alert_carries_its_priority_color_and_voice_options() -> None:
    bench = Bench()
    bench.post(buildings=("b2",), priority="alert", color="yellow", lang="en", repeat=3)
    (show,) = bench.commands("b2/screen/SCR-b2")
    (say,) = bench.commands("b2/voice/VT-b2")
    assert (show["priority"], show["color"]) == ("alert", "yellow")
    assert (say["priority"], say["lang"], say["repeat"]) == ("alert", "en", 3)


def test_fire_priority_and_bad_options_are_refused_with_what_to_use() -> None:
    with pytest.raises(NoticeError, match=r"use notice or alert.*fire engine"):
        NoticeSpec(TEXT, priority="fire")
    with pytest.raises(NoticeError, match=r"ttl_s 5: use 10\.\.604800"):
        NoticeSpec(TEXT, ttl_s=5)
    with pytest.raises(NoticeError, match="color 'pink'"):
        NoticeSpec(TEXT, color="pink")
    with pytest.raises(NoticeError, match=r"repeat 9: use 1\.\.5"):
        NoticeSpec(TEXT, repeat=9)
    assert Color.__args__ == COLORS  # type: ignore[attr-defined]  # the API's enum


def test_texts_are_checked_against_what_the_terminals_can_take() -> None:
    bench = Bench()
    with pytest.raises(NoticeError, match="text is empty"):
        bench.post("  \n ", buildings=("b2",))
    long = "请" * 101
    with pytest.raises(NoticeError, match=r"101 characters.*at most 100.*screens only"):
        bench.post(long, buildings=("b2",))
    with pytest.raises(NoticeError, match="control character U\\+0007 at position 2"):
        bench.post("停水\a通知", buildings=("b2",))
    with pytest.raises(NoticeError, match="201 characters; a screen shows at most 200"):
        bench.post("请" * 201, buildings=("b2",), kinds=("screen",))
    assert bench.sent == []  # nothing was sent for a refused notice
    view = bench.post(f"  {long}\n第二行  ", buildings=("b2",), kinds=("screen",))
    assert view["text"] == f"{long}\n第二行"
    assert [c["text"] for c in bench.commands()] == [f"{long}\n第二行"]
    with pytest.raises(NoticeError, match="'by' must name who"):
        bench.post(buildings=("b2",), by=" ")


def test_targets_gates_named_terminals_and_kinds() -> None:
    bench = Bench()
    view = bench.post(gates=True, terminals=(TerminalRef("b1", "VT-b1"),))
    assert set(status(view)) == {"gates/screen/SCR-gate-1", "b1/voice/VT-b1"}
    view = bench.post(buildings=("b1", "b2"), kinds=("voice",))
    assert set(status(view)) == {t for t in B1_TERMINALS | B2_TERMINALS if "/voice/" in t}
    twice = bench.post(buildings=("b2",), terminals=(TerminalRef("b2", "SCR-b2", "screen"),))
    assert set(status(twice)) == B2_TERMINALS  # each terminal once


def test_unknown_targets_name_what_the_site_has() -> None:
    bench = Bench()
    with pytest.raises(NoticeError, match=r"no building 'b9' in the site model.*b1, b2"):
        bench.post(buildings=("b9",))
    with pytest.raises(NoticeError, match=r"terminals\[0\]: b2/SCR-x is not.*screen:SCR-b2"):
        bench.post(terminals=(TerminalRef("b2", "SCR-x"),))
    with pytest.raises(NoticeError, match="b2/SCR-b2 is not"):
        bench.post(terminals=(TerminalRef("b2", "SCR-b2", "voice"),))
    with pytest.raises(NoticeError, match="targets: none given"):
        bench.post()
    with pytest.raises(NoticeError, match="no voice terminal in the gates"):
        bench.post(gates=True, kinds=("voice",))


def test_an_acknowledged_command_is_not_sent_again() -> None:
    bench = Bench(command_retry_s=5)
    view = bench.post(buildings=("b2",))
    bench.ack_all()
    view = bench.notices.get(view["id"])
    assert status(view) == dict.fromkeys(B2_TERMINALS, "acked")
    assert all(t["acked_at"] == bench.clock.wall_ms() for t in view["terminals"])
    before = len(bench.sent)
    bench.clock.advance(60)
    bench.tick()
    assert len(bench.sent) == before
    assert bench.notices.next_deadline() is None


def test_unacknowledged_commands_are_retried_bounded_then_given_up() -> None:
    bench = Bench(command_retry_s=5, command_max_retries=2)
    view = bench.post(buildings=("b2",), kinds=("screen",))
    (show,) = bench.commands()
    assert bench.notices.next_deadline() == bench.clock.monotonic() + 5
    for _ in range(4):
        bench.clock.advance(5)
        bench.tick()
    assert bench.commands() == [show, show, show]  # same cmd_id and payload, 2 retries
    view = bench.notices.get(view["id"])
    (terminal,) = view["terminals"]
    assert (terminal["status"], terminal["attempts"]) == ("given_up", 2)
    assert [r.kind for r in bench.stored()] == ["posted", "command", "retry", "retry", "given_up"]
    bench.ack("b2/screen/SCR-b2", show)  # a late answer is still good news
    assert status(bench.notices.get(view["id"])) == {"b2/screen/SCR-b2": "acked"}


def test_a_retry_stops_when_the_notice_expires() -> None:
    bench = Bench(command_retry_s=5, command_max_retries=100)
    view = bench.post(buildings=("b2",), kinds=("screen",), ttl_s=12)
    for _ in range(4):
        bench.clock.advance(5)
        bench.tick()
    assert len(bench.commands()) == 3  # at 0, 5 and 10 s; at 15 s it has expired
    view = bench.notices.get(view["id"])
    assert (view["state"], status(view)["b2/screen/SCR-b2"]) == ("expired", "given_up")
    assert bench.stored()[-1].data["reason"] == "expired"


def test_a_refused_command_fails_and_an_ack_from_another_device_is_ignored() -> None:
    bench = Bench(command_retry_s=5)
    view = bench.post(buildings=("b2",))
    show, say = bench.commands()
    bench.ack("b2/screen/SCR-other", show)
    bench.ack("b2/voice/VT-b2", say, ok=False, error="busy")
    view = bench.notices.get(view["id"])
    assert status(view) == {"b2/screen/SCR-b2": "pending", "b2/voice/VT-b2": "failed"}
    assert view["terminals"][1]["error"] == "busy"
    bench.clock.advance(5)
    bench.tick()
    assert bench.commands()[2:] == [show]  # only the screen is retried


def test_a_terminal_that_cannot_synthesize_gets_its_say_through_the_audio_attacher() -> None:
    bench = Bench()
    bench.post(buildings=("b1",), kinds=("voice",))
    assert bench.targets() == {"b1/voice/VT-b1"}
    (command,) = bench.audio
    assert command.topic.endswith("/b1/voice/AMP-b1/cmd") and command.needs_audio
    assert command.payload["text"] == TEXT


def test_ids_count_per_day_and_command_ids_per_notice() -> None:
    bench = Bench()
    first = bench.post(buildings=("b2",))
    second = bench.post(buildings=("b2",))
    day = first["id"].rsplit("-", 1)[0]
    assert (first["id"], second["id"]) == (f"{day}-0001", f"{day}-0002")
    assert [c["cmd_id"] for c in bench.commands("b2/screen/SCR-b2")] == [
        f"{day}-0001-c001",
        f"{day}-0002-c001",
    ]
    bench.clock.advance(86_400)
    assert bench.post(buildings=("b2",))["id"].endswith("-0001")


def test_finished_notices_beyond_keep_are_forgotten_active_ones_never() -> None:
    engine, clock = make_engine()
    board = NoticeBoard(FireSection(), engine.linkage, clock, ROOT, SITE, keep=2)

    def none(_terminal: Terminal) -> str | None:
        return None  # no fire anywhere

    targets = Targets(buildings=("b2",), kinds=("screen",))
    old = [board.post(NoticeSpec(TEXT, ttl_s=10), targets, "op", none)[0] for _ in range(4)]
    board.on_messages([ack(c) for c in _publishes(board, old)])
    clock.advance(11)
    board.tick(none)
    fresh, _ = board.post(NoticeSpec(TEXT, ttl_s=600), targets, "op", none)
    assert [n.id for n in board.notices()] == [old[2].id, old[3].id, fresh.id]
    with pytest.raises(UnknownNotice, match=f"no notice '{old[0].id}'"):
        board.notice(old[0].id)
    assert all(not cmd.startswith(old[0].id) for cmd in board.state.by_cmd)


def _publishes(board: NoticeBoard, notices: list[Notice]) -> list[Publish]:
    return [Publish(d.topic, d.payload) for n in notices for d in n.deliveries.values() if d.topic]
