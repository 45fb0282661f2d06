"""Storms through the broker: many detectors, or one detector toggling, make one incident.

And the bulk lane loses nothing while the alarm lane is busy: every telemetry message
published during the storm is committed to the spool.
"""

from __future__ import annotations

import asyncio
import json

from gateway.decode.message import SpoolClass
from tests.fire_e2e.scene import STORM, Scene

TELEMETRY_PER_DETECTOR = 10


def _telemetry(scene: Scene, device: str, ts_ms: int) -> tuple[str, bytes]:
    body = {"ts": ts_ms, "smoke": 0.02, "temp": 24.5, "battery": 90, "rssi": -70}
    return scene.field.topic("b2", "smoke", device, "telemetry"), json.dumps(body).encode()


def _alarm(scene: Scene, building: str, device: str, event: str, ts_ms: int) -> tuple[str, bytes]:
    body = {"ts": ts_ms, "event": event}
    return scene.field.topic(building, "smoke", device, "event"), json.dumps(body).encode()


def _stored_telemetry(scene: Scene, since_ms: int) -> set[tuple[str, int]]:
    """(device, ts) of every smoke telemetry point in the spool."""
    assert scene.gw is not None
    points = set()
    for line in scene.gw.spool.history("smoke,", since_ms, 1_000_000):
        tags = line.split(" ", 1)[0].split(",")[1:]
        device = next(t.split("=", 1)[1] for t in tags if t.startswith("device="))
        points.add((device, int(line.rsplit(" ", 1)[1])))
    return points


async def test_200_detector_storm_is_one_incident_one_linkage_and_no_lost_telemetry(
    scene: Scene,
) -> None:
    assert scene.gw is not None
    t0 = scene.clock.wall_ms()
    items, sent = [], set()
    for i, device in enumerate(STORM):
        items.append(_alarm(scene, "b2", device, "alarm", t0 + i))
        for k in range(TELEMETRY_PER_DETECTOR):
            ts = t0 + 1000 + k * 1000 + i  # distinct per device and reading
            items.append(_telemetry(scene, device, ts))
            sent.add((device, ts))
    await asyncio.to_thread(scene.field.publish_all, items)

    alert = await scene.app.until_alert(lambda a: a["state"] == "dispatched", what="storm fire")
    inc = alert["id"]
    assert alert["zone"] == "b2-f9"
    await scene.expect_linkage(inc, "b2-f9")
    await scene.until_acked(inc)
    deadline = asyncio.get_running_loop().time() + 15
    while len(_stored_telemetry(scene, t0)) < len(sent):
        assert asyncio.get_running_loop().time() < deadline, "telemetry not all committed"
        await asyncio.sleep(0.05)
    await scene.settle()

    assert {a["id"] for a in scene.app.alerts()} == {inc}, "more than one incident"
    (snapshot,) = scene.gw.fire.engine.incidents()
    assert sorted(snapshot.sources) == sorted(STORM)
    assert sorted(r["by"] for r in scene.audit(inc, "source")) == sorted(STORM)
    # Confirmed once, dispatched once: one set of linkage commands (expect_linkage).
    assert [a["state"] for a in scene.app.alerts(inc)] == ["pre_alarm", "confirmed", "dispatched"]
    # Nothing lost: every telemetry point and every alarm is in the spool, exactly once.
    assert _stored_telemetry(scene, t0) == sent
    assert len(scene.gw.spool.history("smoke,", t0, 1_000_000)) == len(sent)
    assert scene.gw.spool.stats().rows_by_class.get(SpoolClass.ALARM) == len(STORM)
    assert scene.gw.pipeline.committed_total >= len(items)


async def test_detector_flooding_alarm_and_clear_is_one_incident(scene: Scene) -> None:
    assert scene.gw is not None
    t0 = scene.clock.wall_ms()
    flood = [
        _alarm(scene, "b1", "SD-b1-5-1", "alarm" if i % 2 == 0 else "clear", t0 + i)
        for i in range(600)
    ]
    await asyncio.to_thread(scene.field.publish_all, flood)
    alert = await scene.app.until_alert(lambda a: a["state"] == "pre_alarm")
    inc = alert["id"]
    deadline = asyncio.get_running_loop().time() + 15
    while scene.gw.spool.stats().rows_by_class.get(SpoolClass.ALARM, 0) < 300:
        assert asyncio.get_running_loop().time() < deadline, "flood not all committed"
        await asyncio.sleep(0.05)
    await scene.settle()

    # One incident, still a pre-alarm (one detector, and a clear never closes it), one
    # source and one clear on record, one alert, nothing commanded.
    assert [(a["id"], a["state"]) for a in scene.app.alerts()] == [(inc, "pre_alarm")]
    assert [r["by"] for r in scene.audit(inc, "source")] == ["SD-b1-5-1"]
    assert [r["by"] for r in scene.audit(inc, "clear")] == ["SD-b1-5-1"]
    assert len(scene.audit(inc)) == 3  # opened, source, clear
    assert scene.commands() == []
    (snapshot,) = scene.gw.fire.engine.incidents(open_only=True)
    assert (snapshot.id, snapshot.state) == (inc, "pre_alarm")

    # A second detector confirms the same incident: one set of linkage commands.
    scene.field.alarm("b1", "smoke", "SD-b1-5-2")
    await scene.expect_linkage(inc, "b1-f5")
    assert {a["id"] for a in scene.app.alerts()} == {inc}
