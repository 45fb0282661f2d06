"""The canonical device message every vendor payload is decoded into."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, Literal

from gateway.ingest.topic import DeviceTopic

FieldValue = float | int | bool | str
FIRE_DETECTOR_KINDS: Final = frozenset({"smoke", "heat", "callpoint"})
CAMERA_FIRE_EVENTS: Final = frozenset({"fire", "smoke"})


class SpoolClass(IntEnum):
    """Priority class in the spool: only TELEMETRY may ever be evicted."""

    TELEMETRY = 0
    EVENT = 1
    ALARM = 2


@dataclass(slots=True)
class DeviceMessage:
    """One decoded message from one device, in the units and names of CONTRACT.md.

    `fields` become InfluxDB fields (strings become string fields), `tags` extra tags
    beyond site/building/device (e.g. `door`, `dir`, `checkpoint`, `zone`, `floor`).
    """

    topic: DeviceTopic
    ts_ms: int
    ts_source: Literal["device", "gateway"]
    received_ms: int
    event: str | None = None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_alarm(self) -> bool:
        """True for what takes the alarm lane: detector/call point `alarm`, camera fire/smoke."""
        if self.topic.channel != "event" or self.event is None:
            return False
        kind = self.topic.kind
        if kind in FIRE_DETECTOR_KINDS:
            return self.event == "alarm"
        return kind == "camera" and self.event in CAMERA_FIRE_EVENTS

    @property
    def spool_class(self) -> SpoolClass:
        """Alarms and discrete events are kept forever; telemetry, status and acks may go."""
        if self.is_alarm:
            return SpoolClass.ALARM
        if self.topic.channel == "event":
            return SpoolClass.EVENT
        return SpoolClass.TELEMETRY


def may_be_alarm(kind: str, channel: str) -> bool:
    """Cheap pre-check on the topic alone: messages that might be alarms skip the batch."""
    return channel == "event" and (kind in FIRE_DETECTOR_KINDS or kind == "camera")
