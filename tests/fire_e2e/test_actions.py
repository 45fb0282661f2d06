"""People's actions on `alerts/fire/{incident}/action`: legal ones move the incident,
illegal ones change nothing and the gateway keeps running."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.fire_e2e.scene import DEADLINE_S, Scene


def _trace(scene: Scene, inc: str) -> tuple[int, int, int]:
    """What an action could change: audit records, alerts published, commands sent."""
    return len(scene.audit(inc)), len(scene.app.alerts()), len(scene.commands())


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.fire.runtime" and "refused" in r.getMessage()
    ]


async def _refused(
    scene: Scene, caplog: pytest.LogCaptureFixture, inc: str, actions: list[tuple[str, Any]]
) -> None:
    """Publish each (incident, payload): each is refused (logged), and nothing changes."""
    assert scene.gw is not None
    before, logged = _trace(scene, inc), len(_refusals(caplog))
    for target, payload in actions:
        if isinstance(payload, bytes):
            scene.app.act_raw(target, payload)
        else:
            scene.app.act(target, *payload)
    deadline = asyncio.get_running_loop().time() + 10
    while len(_refusals(caplog)) < logged + len(actions):
        assert asyncio.get_running_loop().time() < deadline, _refusals(caplog)
        await asyncio.sleep(0.01)
    await scene.settle()
    assert len(_refusals(caplog)) == logged + len(actions)
    assert _trace(scene, inc) == before
    assert scene.gw.link.connected and scene.gw.pipeline.commit_error is None


async def test_illegal_actions_change_nothing_and_legal_ones_still_work(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway.fire.runtime")
    assert scene.gw is not None
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    inc = (await scene.app.until_alert(lambda a: a["state"] == "dispatched"))["id"]
    await scene.expect_linkage(inc, "b1-f3")
    await scene.until_acked(inc)

    await _refused(
        scene,
        caplog,
        inc,
        [
            ("inc-20991231-9999", ("ack", "mfs-near")),  # no such incident
            (inc, ("confirm", "duty-room")),  # already confirmed
            (inc, ("explode", "mfs-near")),  # not an action
            (inc, ("ack", " ")),  # nobody acts
            (inc, b"{not json"),
            (inc, b'["ack"]'),
        ],
    )

    scene.app.act(inc, "ack")
    acked = await scene.app.until_alert(lambda a: a["state"] == "acknowledged")
    assert acked["acknowledged_by"] == "mfs-near"
    scene.app.act(inc, "on_scene")
    on_scene = await scene.app.until_alert(lambda a: a["state"] == "on_scene")
    assert on_scene["on_scene_by"] == "mfs-near"
    assert on_scene["on_scene_at"] == scene.clock.wall_ms()
    await scene.until_acked(inc)

    # On scene stops the arrive and deadline timers.
    await scene.advance(DEADLINE_S + 10)
    await scene.settle()
    assert scene.audit(inc, "escalation") == []

    scene.app.act(inc, "resolve", by="commander")
    resolved = await scene.app.until_alert(lambda a: a["state"] == "resolved")
    assert (resolved["closed_by"], resolved["closed_at"]) == ("commander", scene.clock.wall_ms())
    # Back to normal: screens cleared, voice stopped, doors locked again.
    for dev in ("SCR-b1-lobby", "SCR-b1-lift", "SCR-gate-n"):
        (clear,) = await scene.terminals[dev].until_command("clear", inc)
        assert clear["priority"] == "fire"
    await scene.terminals["VT-b1"].until_command("stop", inc)
    (normal,) = await scene.doors["AC-b1"].until_command("normal", inc)
    assert normal["doors"] == ["b1-d1", "b1-d2"]
    await scene.until_acked(inc)

    await _refused(
        scene,
        caplog,
        inc,
        [(inc, ("ack", "mfs-near")), (inc, ("false_alarm", "duty-room")), (inc, ("resolve", "x"))],
    )

    # Still running: the next alarm in the zone opens a new incident.
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    second = await scene.app.until_alert(lambda a: a["id"] != inc and a["state"] == "dispatched")
    assert second["zone"] == "b1-f3"
    assert second["id"].endswith("-0002") and second["id"][:-4] == inc[:-4]


async def test_false_alarm_verdict_on_a_pre_alarm_closes_it_without_linkage(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway.fire.runtime")
    scene.field.alarm("b2", "smoke", "SD-b2-1-1")
    inc = (await scene.app.until_alert(lambda a: a["state"] == "pre_alarm"))["id"]
    scene.app.act(inc, "false_alarm", by="duty-room")
    closed = await scene.app.until_alert(lambda a: a["state"] == "false_alarm")
    assert closed["closed_by"] == "duty-room"
    await scene.settle()
    assert scene.commands() == []
    await _refused(scene, caplog, inc, [(inc, ("confirm", "duty-room")), (inc, ("ack", "mfs-far"))])
