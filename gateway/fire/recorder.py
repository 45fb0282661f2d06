"""The alarm lane's hook: records and logs every alarm the moment it arrives."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage
from gateway.site import SiteIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlarmSeen:
    """One alarm as the hook saw it."""

    building: str
    kind: str
    device: str
    event: str
    zone: str | None
    ts_ms: int
    hook_mono: float


class AlarmRecorder:
    """Default alarm-lane hook: keeps the latest alarms for the API and logs each one.

    The fire incident engine replaces it; until then an alarm is never silent.
    """

    def __init__(self, site: SiteIndex, clock: Clock, keep: int = 500) -> None:
        self._site = site
        self._clock = clock
        self.recent: collections.deque[AlarmSeen] = collections.deque(maxlen=keep)
        self.total = 0

    def __call__(self, msg: DeviceMessage) -> None:
        t = msg.topic
        place = self._site.place(t.building, t.kind, t.device)
        zone = place.zone if place else msg.tags.get("zone")
        seen = AlarmSeen(
            t.building, t.kind, t.device, msg.event or "", zone, msg.ts_ms, self._clock.monotonic()
        )
        self.recent.append(seen)
        self.total += 1
        log.warning(
            "ALARM %s %s/%s event=%s zone=%s", t.kind, t.building, t.device, msg.event, zone
        )
