"""Topic grammar of the device contract: `{root}/{site}/{building}/{kind}/{device}/{channel}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from gateway.errors import TopicError

DEVICE_KINDS: Final = frozenset(
    {"smoke", "heat", "callpoint", "access", "camera", "screen", "voice"}
)
INBOUND_CHANNELS: Final = frozenset({"telemetry", "event", "status", "ack", "frame"})
OUTBOUND_CHANNELS: Final = frozenset({"cmd", "config"})
# Second-level names the gateway itself publishes under; never building ids.
RESERVED_BUILDINGS: Final = frozenset({"alerts", "state", "gateway"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_valid_name(name: str) -> bool:
    """True when `name` may be a site, building or device id."""
    return _NAME.fullmatch(name) is not None


class DeviceTopic(NamedTuple):
    """A parsed device topic.

    A named tuple rather than a dataclass: it keys caches on the ingest hot path, and a
    tuple's hash runs in C.
    """

    site: str
    building: str
    kind: str
    device: str
    channel: str

    def key(self) -> tuple[str, str, str]:
        """The device's identity within a site: (building, kind, device)."""
        return (self.building, self.kind, self.device)


@dataclass(frozen=True, slots=True)
class FireActionTopic:
    """`{root}/{site}/alerts/fire/{incident}/action`: a person acting on an incident."""

    site: str
    incident: str


def parse_topic(topic: str, root: str, site: str) -> DeviceTopic | FireActionTopic | None:
    """Parse an inbound topic; None for the gateway's own outbound traffic (`cmd`, `config`).

    Raises TopicError naming the offending segment for anything the contract rejects.
    """
    parts = topic.split("/")
    if len(parts) != 6:
        raise TopicError(f"topic {topic!r}: expected 6 segments, got {len(parts)}")
    t_root, t_site, building, kind, device, channel = parts
    if t_root != root:
        raise TopicError(f"topic {topic!r}: root {t_root!r} is not {root!r}")
    if t_site != site:
        raise TopicError(f"topic {topic!r}: site {t_site!r} is not this gateway's site {site!r}")
    if building == "alerts":
        if kind == "fire" and channel == "action" and is_valid_name(device):
            return FireActionTopic(site=site, incident=device)
        raise TopicError(f"topic {topic!r}: only alerts/fire/{{incident}}/action is inbound")
    if building in RESERVED_BUILDINGS:
        raise TopicError(f"topic {topic!r}: {building!r} is reserved for the gateway's output")
    if not is_valid_name(building):
        raise TopicError(f"topic {topic!r}: building {building!r} is not [A-Za-z0-9_-]{{1,64}}")
    if kind not in DEVICE_KINDS:
        raise TopicError(f"topic {topic!r}: unknown device kind {kind!r}")
    if not is_valid_name(device):
        raise TopicError(f"topic {topic!r}: device {device!r} is not [A-Za-z0-9_-]{{1,64}}")
    if channel in OUTBOUND_CHANNELS:
        return None
    if channel not in INBOUND_CHANNELS:
        raise TopicError(f"topic {topic!r}: unknown channel {channel!r}")
    return DeviceTopic(site, building, kind, device, channel)


def device_topic(root: str, site: str, building: str, kind: str, device: str, channel: str) -> str:
    """Build a device topic (used for commands and config)."""
    return f"{root}/{site}/{building}/{kind}/{device}/{channel}"


def alert_topic(root: str, site: str, alert_type: str) -> str:
    """`{root}/{site}/alerts/{type}`."""
    return f"{root}/{site}/alerts/{alert_type}"
