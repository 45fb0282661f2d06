"""Each confirmation rule, end to end through Mosquitto: alarm in → full linkage out.

The gateway runs in-process on a manual clock; screens, voice terminals, door controllers
and the fire team's app are real MQTT clients (tests/fire_e2e/devices.py).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.fire_e2e.devices import Listener
from tests.fire_e2e.scene import DEADLINE_S, TEXT_B2_F1, TICK_S, VERIFY_S, Scene


async def _pre_alarm(scene: Scene, building: str, kind: str, device: str) -> Any:
    """Raise one alarm that does not confirm; the pre-alarm alert (nothing commanded)."""
    scene.field.alarm(building, kind, device)
    alert = await scene.app.until_alert(lambda a: device in a["sources"], what="pre-alarm")
    assert alert["state"] == "pre_alarm" and alert["team"] is None
    await scene.settle()
    assert scene.commands() == [], "a pre-alarm reached screens, voice or doors"
    return alert


def _confirmed(scene: Scene, incident: str) -> Any:
    """The `confirmed` alert of `incident` (its `reason` names the rule)."""
    (alert,) = [a for a in scene.app.alerts(incident) if a["state"] == "confirmed"]
    return alert


async def test_call_point_confirms_at_once_with_full_linkage(scene: Scene) -> None:
    scene.field.alarm("b2", "callpoint", "CP-b2-1")
    alert = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc = alert["id"]
    got = await scene.expect_linkage(inc, "b2-f1")

    for dev in ("SCR-b2", "SCR-gate-n"):
        assert got[dev]["text"] == TEXT_B2_F1
        assert (got[dev]["priority"], got[dev]["color"], got[dev]["ttl_s"]) == ("fire", "red", 600)
    for dev in ("VT-b2", "AMP-b2"):
        say = got[dev]
        assert (say["text"], say["lang"], say["priority"], say["repeat"]) == (
            TEXT_B2_F1,
            "zh",
            "fire",
            2,
        )
    # The amplifier cannot synthesize: its `say` carries the text as speech (a WAV).
    assert "audio" not in got["VT-b2"]
    wav = base64.b64decode(got["AMP-b2"]["audio"], validate=True)
    assert (wav[:4], wav[8:12]) == (b"RIFF", b"WAVE")
    assert len(wav) > 22050 * 2 * 10, "less than 10 s of 22 kHz 16-bit speech"
    # The stream: opened, confirmed by the call point, the nearest team dispatched.
    states = [(a["state"], a["reason"]) for a in scene.app.alerts(inc)]
    assert states == [("pre_alarm", None), ("confirmed", "callpoint"), ("dispatched", "dispatch")]
    now = scene.clock.wall_ms()
    assert alert["opened_at"] == alert["confirmed_at"] == now
    assert alert["deadline_at"] == now + DEADLINE_S * 1000
    assert (alert["building"], alert["floor"], alert["zone"]) == ("b2", 1, "b2-f1")
    assert (alert["sources"], alert["site"]) == (["CP-b2-1"], scene.site)
    # mfs-far is nearer to b2 than mfs-near (position_m): nearest team first.
    assert (alert["team"], alert["teams"], alert["tier"]) == ("mfs-far", ["mfs-far"], 0)
    assert (alert["escalation"], alert["breach"]) == (0, False)

    # Doors are confirmed by the controllers' acks; the retained alert says so, and a
    # subscriber that comes later gets it as a retained message.
    await scene.app.inbox.until(
        lambda m: m.topic.endswith(inc) and len(m.json()["doors_confirmed"]) == 2,
        what="doors confirmed on the retained alert",
    )
    late = Listener(scene.port, f"{scene.prefix}/alerts/fire/{inc}")
    try:
        (msg,) = await late.inbox.until(lambda m: True, what="retained alert")
        retained = msg.json()
        assert msg.retain
        assert (retained["id"], retained["state"]) == (inc, "dispatched")
        assert retained["doors"] == {"b2-d1": "confirmed", "gate-n-d1": "confirmed"}
        assert retained["doors_confirmed"] == ["b2-d1", "gate-n-d1"]
    finally:
        late.close()
    assert [r["data"]["reason"] for r in scene.audit(inc, "state")] == ["callpoint", "dispatch"]


async def test_second_detector_in_zone_confirms_incident(scene: Scene) -> None:
    first = await _pre_alarm(scene, "b1", "smoke", "SD-b1-3-1")
    inc = first["id"]
    scene.field.alarm("b1", "smoke", "SD-b1-3-1")  # the same detector again: not a second one
    await scene.settle()
    assert [a["state"] for a in scene.app.alerts(inc)] == ["pre_alarm"]
    assert scene.commands() == []

    scene.field.alarm("b1", "heat", "HD-b1-3-1")
    got = await scene.expect_linkage(inc, "b1-f3")
    confirmed = _confirmed(scene, inc)
    assert confirmed["reason"] == "second_detector"
    assert confirmed["sources"] == ["SD-b1-3-1", "HD-b1-3-1"]
    assert got["SCR-b1-lobby"]["text"].startswith("1栋3楼发生火警")
    alert = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    assert (alert["id"], alert["team"]) == (inc, "mfs-near")


async def test_camera_fire_confirms_only_above_its_confidence(scene: Scene) -> None:
    inc = (await _pre_alarm(scene, "b1", "smoke", "SD-b1-5-1"))["id"]
    scene.field.event("b1", "camera", "CAM-b1", "fire", zone="b1-f5", confidence=0.5)
    await scene.settle()
    assert [a["state"] for a in scene.app.alerts(inc)] == ["pre_alarm"]
    assert scene.commands() == []

    scene.field.event("b1", "camera", "CAM-b1", "smoke", zone="b1-f5", confidence=0.9)
    await scene.expect_linkage(inc, "b1-f5")
    confirmed = _confirmed(scene, inc)
    assert confirmed["reason"] == "camera"
    assert confirmed["sources"] == ["SD-b1-5-1", "CAM-b1"]
    (source,) = [r for r in scene.audit(inc, "source") if r["by"] == "CAM-b1"]
    assert source["data"]["confidence"] == 0.9


async def test_operator_confirms_through_the_action_topic(scene: Scene) -> None:
    inc = (await _pre_alarm(scene, "b1", "smoke", "SD-b1-5-1"))["id"]
    scene.app.act(inc, "confirm", by="duty-room")
    await scene.expect_linkage(inc, "b1-f5")
    assert _confirmed(scene, inc)["reason"] == "operator"
    (confirm,) = [r for r in scene.audit(inc, "state") if r["data"]["to"] == "confirmed"]
    assert confirm["by"] == "duty-room"


async def test_verify_window_running_out_confirms_at_its_time(scene: Scene) -> None:
    opened = await _pre_alarm(scene, "b1", "smoke", "SD-b1-5-1")
    inc = opened["id"]
    await scene.advance(VERIFY_S - TICK_S)
    await scene.settle()
    assert [a["state"] for a in scene.app.alerts(inc)] == ["pre_alarm"]
    assert scene.commands() == []

    await scene.advance(TICK_S)
    await scene.expect_linkage(inc, "b1-f5")
    confirmed = _confirmed(scene, inc)
    assert confirmed["reason"] == "verify_timeout"
    assert confirmed["confirmed_at"] == opened["opened_at"] + VERIFY_S * 1000
    (rec,) = [r for r in scene.audit(inc, "state") if r["data"]["to"] == "confirmed"]
    assert (rec["by"], rec["ts"]) == ("timer", opened["opened_at"] + VERIFY_S * 1000)
