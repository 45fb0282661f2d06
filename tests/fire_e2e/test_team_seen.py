"""A camera recognises the dispatched team at the building: on scene, through the broker.

The camera publishes `team_seen` (the contract's own payload, or a vendor face match
through its profile) on `…/camera/{device}/event`; the gateway decodes it, the fire
engine moves the incident to `on_scene`, the alert is published (stream and retained
topic) and the record is in the spool, so a restart keeps it and no timer escalates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.site import SiteModel
from tests.fire_e2e.scene import ARRIVE_S, DEADLINE_S, Scene
from tests.servers import MosquittoServer

# The scene's gate cp-n (leads to b2) gets a Hikvision-style camera that does face matching.
GATE_CAMERA = "HIK-gate-n"


@pytest.fixture
async def gate_scene(tmp_path: Path, mosquitto: MosquittoServer) -> AsyncIterator[Scene]:
    """The fire scene, with a face-matching camera (profile camera/hik-pc) at gate cp-n."""
    if not mosquitto.running:
        mosquitto.start()
    scene = Scene(mosquitto.port, tmp_path / "scene")
    try:
        site = scene.cfg.site.model_dump()
        for cp in site["checkpoints"]:
            if cp["id"] == "cp-n":
                cp["cameras"] = [GATE_CAMERA]
        site["profile_rules"].append({"kind": "camera", "prefix": "HIK-", "model": "hik-pc"})
        scene.cfg = scene.cfg.model_copy(update={"site": SiteModel.model_validate(site)})
        await scene.start()
        yield scene
    finally:
        try:
            await scene.stop()
        finally:
            scene.close()


async def _on_scene(scene: Scene, inc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `on_scene` alert on the stream and on the incident's retained topic."""
    alert = await scene.app.until_alert(
        lambda a: a["id"] == inc and a["state"] == "on_scene", what="on_scene alert"
    )
    retained_topic = f"{scene.app.stream}/{inc}"
    (kept, *_) = await scene.app.inbox.until(
        lambda m: m.topic == retained_topic and m.json()["state"] == "on_scene",
        what="retained on_scene alert",
    )
    return alert, kept.json()


def _on_scene_records(scene: Scene, inc: str) -> list[dict[str, Any]]:
    return [r for r in scene.audit(inc, "state") if r["data"]["to"] == "on_scene"]


async def test_camera_sees_the_team_at_the_building_and_the_incident_goes_on_scene(
    scene: Scene,
) -> None:
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    opened = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc = opened["id"]
    assert opened["team"] == "mfs-near"
    await scene.until_acked(inc)
    await scene.advance(30.0)

    # Below the default threshold (0.8), a team never alerted, and a bad payload: nothing.
    scene.field.event("b1", "camera", "CAM-b1", "team_seen", team="mfs-near", confidence=0.5)
    scene.field.event("b1", "camera", "CAM-b1", "team_seen", team="street", confidence=0.99)
    scene.field.event("b1", "camera", "CAM-b1", "team_seen", confidence=0.99, member="E0042")
    await scene.settle()
    assert _on_scene_records(scene, inc) == []
    assert scene.gw is not None
    (dead,) = [d for d in scene.gw.spool.dead_letters() if "/camera/CAM-b1/" in d.topic]
    assert "missing required field 'team'" in dead.reason
    assert b"E0042" not in dead.payload, "a person's id must not reach the dead letters"

    scene.field.event(
        "b1", "camera", "CAM-b1", "team_seen", team="mfs-near", confidence=0.93, member="E0042"
    )
    alert, kept = await _on_scene(scene, inc)
    for doc in (alert, kept):
        assert (doc["on_scene_by"], doc["reason"], doc["escalation"]) == ("mfs-near", "camera", 0)
    assert alert["on_scene_at"] == opened["confirmed_at"] + 30_000
    await scene.settle()
    (rec,) = _on_scene_records(scene, inc)
    assert rec["by"] == "mfs-near"
    assert {k: rec["data"][k] for k in ("reason", "device", "confidence")} == {
        "reason": "camera",
        "device": "CAM-b1",
        "confidence": 0.93,
    }
    # The member id is personal data: stored only as its salted hash.
    lines = scene.gw.spool.history("camera", 0, 1000)
    (line,) = [ln for ln in lines if "team_seen" in ln and "confidence=0.93" in ln]
    assert "team=mfs-near" in line and "member_hash=" in line and "E0042" not in line

    # A restart replays the camera's on_scene from the spool; no timer escalates after it.
    await scene.stop()
    gw = await scene.start()
    restored = gw.fire.engine.incident(inc)
    assert (restored.state, restored.on_scene_by, restored.reason) == (
        "on_scene",
        "mfs-near",
        "camera",
    )
    await scene.advance(DEADLINE_S + ARRIVE_S)
    await scene.settle()
    assert scene.audit(inc, "escalation") == []


async def test_vendor_face_match_at_the_gate_leading_to_the_building_counts(
    gate_scene: Scene,
) -> None:
    scene = gate_scene
    scene.field.alarm("b2", "callpoint", "CP-b2-1")
    opened = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc = opened["id"]
    assert opened["team"] == "mfs-far"  # the nearer tier-0 team of b2
    await scene.until_acked(inc)

    when = datetime.fromtimestamp(scene.clock.wall_ms() / 1000, UTC).isoformat()
    scene.field.publish(
        scene.field.topic("gates", "camera", GATE_CAMERA, "event"),
        {
            "channelID": 1,
            "dateTime": when,
            "eventType": "FaceMatch",
            "faceMatch": {"faceLibName": "mfs-far", "similarity": 91.0, "employeeNo": "E7"},
        },
    )
    alert, kept = await _on_scene(scene, inc)
    assert (alert["on_scene_by"], kept["on_scene_by"]) == ("mfs-far", "mfs-far")
    await scene.settle()
    (rec,) = _on_scene_records(scene, inc)
    assert (rec["data"]["device"], rec["data"]["checkpoint"]) == (GATE_CAMERA, "cp-n")
    assert rec["data"]["confidence"] == pytest.approx(0.91)
    await scene.advance(DEADLINE_S)
    await scene.settle()
    assert scene.audit(inc, "escalation") == []
