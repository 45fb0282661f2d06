"""Device registry and supervision: liveness from heartbeats and last wills, batteries, faults.

A silent smoke detector is a safety problem: every provisioned device is expected to speak
within 3 × its profile's heartbeat interval, or it is reported offline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage
from gateway.devices.alerts import Alert
from gateway.site import SiteIndex

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3
BATTERY_CLEAR_MARGIN = 5.0
ONE_SHOT_TROUBLES = {
    "tamper": "tamper",
    "door_forced": "door_forced",
    "door_held_open": "door_held_open",
}


class SupervisionProfile(Protocol):
    """What supervision needs of a firmware profile."""

    @property
    def heartbeat_s(self) -> float: ...

    @property
    def battery_low(self) -> float: ...


@dataclass(slots=True)
class DeviceRecord:
    """What the gateway knows about one device right now."""

    building: str
    kind: str
    device: str
    provisioned: bool
    heartbeat_s: float
    battery_low: float
    zone: str | None = None
    floor: int | None = None
    state: str = "unknown"  # unknown | online | offline
    last_seen_mono: float = 0.0
    last_seen_ms: int | None = None
    battery: float | None = None
    fw: str | None = None
    troubles: set[str] = field(default_factory=set)


class DeviceRegistry:
    """Tracks every device and turns what it sees into trouble and offline alerts."""

    def __init__(
        self,
        site: SiteIndex,
        profile_for: Callable[[str, str], SupervisionProfile],
        clock: Clock,
    ) -> None:
        self._site = site
        self._profile_for = profile_for
        self._clock = clock
        self.devices: dict[tuple[str, str, str], DeviceRecord] = {}
        now = clock.monotonic()
        for (building, kind, device), place in site.places.items():
            rec = self._new_record(building, kind, device, provisioned=True)
            rec.zone, rec.floor = place.zone, place.floor
            rec.last_seen_mono = now  # grace period from start-up
            self.devices[(building, kind, device)] = rec

    def _new_record(self, building: str, kind: str, device: str, provisioned: bool) -> DeviceRecord:
        profile = self._profile_for(kind, device)
        return DeviceRecord(
            building, kind, device, provisioned, profile.heartbeat_s, profile.battery_low
        )

    def observe(self, messages: Iterable[DeviceMessage]) -> list[Alert]:
        """Update liveness and troubles from a batch of messages; return alerts to publish."""
        now = self._clock.monotonic()
        alerts: list[Alert] = []
        devices = self.devices
        for msg in messages:
            t = msg.topic
            key = (t.building, t.kind, t.device)
            rec = devices.get(key)
            if rec is None:
                rec = self._new_record(t.building, t.kind, t.device, provisioned=False)
                devices[key] = rec
                log.warning("unprovisioned device %s/%s/%s: stored, not in the site model", *key)
                alerts.append(self._alert("trouble", rec, msg.ts_ms, "event", "unprovisioned"))
            rec.last_seen_mono = now
            rec.last_seen_ms = msg.received_ms
            fields = msg.fields
            if t.channel == "status" and fields.get("online") is False:
                if rec.state != "offline":
                    rec.state = "offline"
                    alerts.append(self._offline(rec, msg.ts_ms, "raised", "status"))
                continue
            if rec.state == "offline":
                alerts.append(self._offline(rec, msg.ts_ms, "cleared", "seen"))
            rec.state = "online"
            if "fw" in fields:
                rec.fw = str(fields["fw"])
            battery = fields.get("battery")
            # A repeated reading cannot change the low-battery state: skip the check.
            if (type(battery) is float or type(battery) is int) and battery != rec.battery:
                self._battery(rec, float(battery), msg.ts_ms, alerts)
            if msg.event is not None and t.channel == "event":
                self._event(rec, msg, alerts)
        return alerts

    def _battery(self, rec: DeviceRecord, battery: float, ts_ms: int, alerts: list[Alert]) -> None:
        rec.battery = battery
        if battery < rec.battery_low and "low_battery" not in rec.troubles:
            rec.troubles.add("low_battery")
            alerts.append(self._alert("trouble", rec, ts_ms, "raised", "low_battery"))
        elif battery >= rec.battery_low + BATTERY_CLEAR_MARGIN and "low_battery" in rec.troubles:
            rec.troubles.discard("low_battery")
            alerts.append(self._alert("trouble", rec, ts_ms, "cleared", "low_battery"))

    def _event(self, rec: DeviceRecord, msg: DeviceMessage, alerts: list[Alert]) -> None:
        event = msg.event
        if event == "fault" and "fault" not in rec.troubles:
            rec.troubles.add("fault")
            alerts.append(self._alert("trouble", rec, msg.ts_ms, "raised", "fault"))
        elif event == "fault_clear" and "fault" in rec.troubles:
            rec.troubles.discard("fault")
            alerts.append(self._alert("trouble", rec, msg.ts_ms, "cleared", "fault"))
        elif event == "low_battery" and "low_battery" not in rec.troubles:
            rec.troubles.add("low_battery")
            alerts.append(self._alert("trouble", rec, msg.ts_ms, "raised", "low_battery"))
        elif event in ONE_SHOT_TROUBLES:
            door = msg.tags.get("door")
            extra = {"door": door} if door else {}
            alerts.append(self._alert("trouble", rec, msg.ts_ms, "event", event, **extra))

    def check_liveness(self) -> list[Alert]:
        """Mark devices silent for 3 heartbeats offline; call about once a second."""
        now = self._clock.monotonic()
        wall = self._clock.wall_ms()
        alerts = []
        for rec in self.devices.values():
            if (
                rec.state != "offline"
                and now - rec.last_seen_mono > MISSED_HEARTBEATS * rec.heartbeat_s
            ):
                rec.state = "offline"
                alerts.append(self._offline(rec, wall, "raised", "heartbeat"))
        return alerts

    def counts(self) -> dict[str, int]:
        """Devices per state (unknown, online, offline)."""
        out = {"unknown": 0, "online": 0, "offline": 0}
        for rec in list(self.devices.values()):  # one C call: safe while the committer adds
            out[rec.state] += 1
        return out

    def _offline(self, rec: DeviceRecord, ts_ms: int, state: str, reason: str) -> Alert:
        detail: dict[str, object] = {"reason": reason, "last_seen": rec.last_seen_ms}
        return self._with_place(
            Alert("device_offline", ts_ms, rec.building, rec.kind, rec.device, state, detail), rec
        )

    def _alert(
        self, type_: str, rec: DeviceRecord, ts_ms: int, state: str, trouble: str, **extra: object
    ) -> Alert:
        detail: dict[str, object] = {"trouble": trouble, **extra}
        if trouble == "low_battery" and rec.battery is not None:
            detail["battery"] = rec.battery
        return self._with_place(
            Alert(type_, ts_ms, rec.building, rec.kind, rec.device, state, detail), rec
        )

    @staticmethod
    def _with_place(alert: Alert, rec: DeviceRecord) -> Alert:
        if rec.zone is not None:
            alert.detail["zone"] = rec.zone
        if rec.floor is not None:
            alert.detail["floor"] = rec.floor
        if not rec.provisioned:
            alert.detail["provisioned"] = False
        return alert
