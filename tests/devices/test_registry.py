"""Device supervision, driven by a hand-moved clock."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.devices.registry import DeviceRegistry
from gateway.ingest.topic import DeviceTopic
from gateway.site import Building, SiteIndex, SiteModel, Zone


@dataclass(frozen=True)
class _Profile:
    heartbeat_s: float = 60.0
    battery_low: float = 20.0


def _registry(clock: ManualClock) -> DeviceRegistry:
    site = SiteModel(
        buildings=[Building(id="b1", zones=[Zone(id="b1-f1", floor=1, smoke=["SD-1", "SD-2"])])]
    )
    return DeviceRegistry(SiteIndex(site), lambda kind, dev: _Profile(), clock)


def _msg(
    clock: ManualClock,
    device: str = "SD-1",
    channel: str = "telemetry",
    event: str | None = None,
    building: str = "b1",
    **fields: float | bool | str,
) -> DeviceMessage:
    topic = DeviceTopic("s", building, "smoke", device, channel)
    now = clock.wall_ms()
    return DeviceMessage(topic, now, "device", now, event=event, fields=dict(fields))


def test_silent_detector_goes_offline_after_three_heartbeats() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    reg.observe([_msg(clock, "SD-1"), _msg(clock, "SD-2")])
    clock.advance(179.0)
    reg.observe([_msg(clock, "SD-2")])
    assert reg.check_liveness() == []
    clock.advance(1.5)
    alerts = reg.check_liveness()
    assert [(a.type, a.device, a.state, a.detail["reason"]) for a in alerts] == [
        ("device_offline", "SD-1", "raised", "heartbeat")
    ]
    assert alerts[0].detail["zone"] == "b1-f1"
    assert reg.check_liveness() == []  # raised once
    back = reg.observe([_msg(clock, "SD-1")])
    assert [(a.type, a.state) for a in back] == [("device_offline", "cleared")]


def test_never_heard_provisioned_detector_is_reported_after_grace() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    clock.advance(181.0)
    assert sorted(a.device for a in reg.check_liveness()) == ["SD-1", "SD-2"]


def test_last_will_offline_is_immediate() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    alerts = reg.observe([_msg(clock, channel="status", online=False, state="offline")])
    assert [(a.type, a.state, a.detail["reason"]) for a in alerts] == [
        ("device_offline", "raised", "status")
    ]
    assert reg.devices[("b1", "smoke", "SD-1")].state == "offline"


def test_low_battery_raised_once_and_cleared_with_hysteresis() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    raised = reg.observe([_msg(clock, battery=19.0), _msg(clock, battery=18.0)])
    assert [(a.detail["trouble"], a.state) for a in raised] == [("low_battery", "raised")]
    assert reg.observe([_msg(clock, battery=22.0)]) == []  # inside the hysteresis band
    cleared = reg.observe([_msg(clock, battery=25.0)])
    assert [(a.detail["trouble"], a.state) for a in cleared] == [("low_battery", "cleared")]


def test_fault_and_tamper_events_become_trouble_never_fire() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    alerts = reg.observe(
        [
            _msg(clock, channel="event", event="fault"),
            _msg(clock, channel="event", event="fault"),
            _msg(clock, channel="event", event="tamper"),
            _msg(clock, channel="event", event="fault_clear"),
        ]
    )
    assert [(a.type, a.detail["trouble"], a.state) for a in alerts] == [
        ("trouble", "fault", "raised"),
        ("trouble", "tamper", "event"),
        ("trouble", "fault", "cleared"),
    ]


def test_unknown_device_is_registered_as_unprovisioned_and_reported() -> None:
    clock = ManualClock()
    reg = _registry(clock)
    alerts = reg.observe(
        [_msg(clock, "SD-new", building="b99"), _msg(clock, "SD-new", building="b99")]
    )
    assert [(a.detail["trouble"], a.detail["provisioned"]) for a in alerts] == [
        ("unprovisioned", False)
    ]
    rec = reg.devices[("b99", "smoke", "SD-new")]
    assert rec.provisioned is False and rec.state == "online"
