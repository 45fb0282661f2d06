"""The daily report's data: one model of a day, and the tables every format is made from.

A day is `[00:00, 24:00)` of a date in a time zone (the street office's local day).
Sources: the device registry's snapshot (optional), stored `alert` points (device
troubles and offline), `*_event` alarms, `checkpoint_flow` 1-minute windows, `occupancy`
samples, and the incidents rebuilt from the fire audit. Renderers (`render.py`) take only
`tables(report)` and the chart series, so HTML, CSV and XLSX always show the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Final, Protocol

from gateway.fire import report as fire_report
from gateway.reports.history import History
from gateway.reports.incidents import IncidentData
from gateway.site import SiteIndex, SiteModel

Cell = str | int | float | bool | None
Table = tuple[list[str], list[list[Cell]]]
ALARM_EVENTS: Final = {
    "smoke_event": ("alarm",),
    "heat_event": ("alarm",),
    "callpoint_event": ("alarm",),
    "camera_event": ("fire", "smoke"),
}
FLOW_WINDOW: Final = "1m"  # the windows that tile the day exactly once


class DeviceLike(Protocol):
    """What the report reads of a registry record (`gateway.devices.registry.DeviceRecord`)."""

    building: str
    kind: str
    device: str
    state: str


@dataclass(frozen=True, slots=True)
class BuildingHealth:
    """A building's devices: now (registry snapshot, if given) and the day's alerts."""

    building: str
    devices: int
    online: int | None
    offline: int | None
    offline_events: int
    troubles: int
    low_battery: int
    faults: int
    devices_with_alerts: int


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One stored alarm event (detector, call point, camera fire/smoke)."""

    ts_ms: int
    building: str
    kind: str
    device: str
    zone: str
    event: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident opened that day; times in seconds after the first alarm."""

    id: str
    building: str
    zone: str
    floor: int | None
    drill: bool
    state: str
    opened_at: int
    confirmed_s: float | None
    dispatched_s: float | None
    acknowledged_s: float | None
    on_scene_s: float | None
    closed_s: float | None
    within_deadline: bool | None
    breach: bool
    escalations: int
    sources: int


@dataclass(frozen=True, slots=True)
class FlowRow:
    """A checkpoint's day: sums of its 1-minute windows, and per hour for the chart."""

    checkpoint: str
    people_in: int
    people_out: int
    granted: int
    denied: int
    windows: int
    uncertain_windows: int
    hourly_in: list[int] = field(default_factory=list)
    hourly_out: list[int] = field(default_factory=list)

    @property
    def net(self) -> int:
        """In minus out."""
        return self.people_in - self.people_out


@dataclass(frozen=True, slots=True)
class OccupancyRow:
    """A building's (or `site`'s) peak occupancy of the day and its hourly peaks."""

    target: str
    peak: int
    peak_at: int
    samples: int
    hourly_peak: list[int | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DailyReport:
    """Everything the daily report shows, in one model."""

    site: str
    day: date
    tz: tzinfo
    start_ms: int
    end_ms: int
    deadline_s: float
    buildings: list[BuildingHealth]
    alarms: list[AlarmRow]
    incidents: list[IncidentRow]
    flows: list[FlowRow]
    occupancy: list[OccupancyRow]

    @property
    def hours(self) -> int:
        """Hours in the day (23 or 25 on a daylight-saving change)."""
        return -(-(self.end_ms - self.start_ms) // 3_600_000)

    def local(self, ts_ms: int) -> str:
        """A timestamp as local `YYYY-MM-DD HH:MM:SS`."""
        return datetime.fromtimestamp(ts_ms / 1000, self.tz).strftime("%Y-%m-%d %H:%M:%S")


def day_bounds(day: date, tz: tzinfo) -> tuple[int, int]:
    """The day's start and end (exclusive) in ms since the epoch."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def build_daily(
    site_id: str,
    site: SiteModel,
    day: date,
    tz: tzinfo,
    history: History,
    incidents: Iterable[IncidentData],
    deadline_s: float,
    devices: Iterable[DeviceLike] | None = None,
) -> DailyReport:
    """Gather one day's report from the history, the incidents and (optionally) the registry."""
    start, end = day_bounds(day, tz)
    hours = -(-(end - start) // 3_600_000)

    def mine(tags: dict[str, str]) -> bool:
        return tags.get("site", site_id) == site_id

    alerts = [p for p in history.points("alert", start, end) if mine(p.tags)]
    alarms: list[AlarmRow] = []
    for measurement, events in ALARM_EVENTS.items():
        for p in history.points(measurement, start, end):
            if mine(p.tags) and p.tags.get("event") in events:
                alarms.append(
                    AlarmRow(
                        p.ts_ms,
                        p.tags.get("building", ""),
                        measurement.removesuffix("_event"),
                        p.tags.get("device", ""),
                        p.tags.get("zone", ""),
                        p.tags.get("event", ""),
                    )
                )
    alarms.sort(key=lambda a: (a.ts_ms, a.building, a.device))
    flows = _flows(history.points("checkpoint_flow", start, end), site, mine, start, hours)
    occ = _occupancy(history.points("occupancy", start, end), site, mine, start, hours)
    rows = [
        _incident_row(a, t, deadline_s) for a, t in incidents if start <= int(a["opened_at"]) < end
    ]
    rows.sort(key=lambda r: (r.opened_at, r.id))
    return DailyReport(
        site_id,
        day,
        tz,
        start,
        end,
        deadline_s,
        _health(site, alerts, devices),
        alarms,
        rows,
        flows,
        occ,
    )


def _health(
    site: SiteModel, alerts: list[Any], devices: Iterable[DeviceLike] | None
) -> list[BuildingHealth]:
    count: dict[str, int] = defaultdict(int)
    states: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if devices is None:
        for building, _, _ in SiteIndex(site).places:
            count[building] += 1
    else:
        for rec in devices:
            count[rec.building] += 1
            states[rec.building][rec.state] += 1
    offline_events: dict[str, int] = defaultdict(int)
    troubles: dict[str, int] = defaultdict(int)
    low: dict[str, set[str]] = defaultdict(set)
    faults: dict[str, set[str]] = defaultdict(set)
    noisy: dict[str, set[str]] = defaultdict(set)
    for p in alerts:
        kind, building = p.tags.get("type"), p.tags.get("building", "")
        state, dev = p.fields.get("state"), f"{p.tags.get('kind')}/{p.tags.get('device')}"
        if kind not in ("device_offline", "trouble") or state == "cleared":
            continue
        noisy[building].add(dev)
        if kind == "device_offline":
            offline_events[building] += 1
            continue
        troubles[building] += 1
        trouble = p.fields.get("trouble")
        if trouble == "low_battery":
            low[building].add(dev)
        elif trouble == "fault":
            faults[building].add(dev)
    order = [b.id for b in site.buildings]
    order += sorted((set(count) | set(noisy)) - set(order))
    return [
        BuildingHealth(
            b,
            count[b],
            None if devices is None else states[b]["online"],
            None if devices is None else states[b]["offline"],
            offline_events[b],
            troubles[b],
            len(low[b]),
            len(faults[b]),
            len(noisy[b]),
        )
        for b in order
    ]


def _flows(points: list[Any], site: SiteModel, mine: Any, start: int, hours: int) -> list[FlowRow]:
    sums: dict[str, dict[str, int]] = {}
    hourly: dict[str, tuple[list[int], list[int]]] = {}
    for cp in [c.id for c in site.checkpoints]:
        sums[cp] = defaultdict(int)
        hourly[cp] = ([0] * hours, [0] * hours)
    for p in points:
        if not mine(p.tags) or p.tags.get("window") != FLOW_WINDOW:
            continue
        cp = p.tags.get("checkpoint", "")
        acc = sums.setdefault(cp, defaultdict(int))
        h_in, h_out = hourly.setdefault(cp, ([0] * hours, [0] * hours))
        for key in ("in", "out", "granted", "denied"):
            acc[key] += p.field_int(key)
        acc["windows"] += 1
        acc["uncertain"] += p.fields.get("uncertain") is True
        hour = min((p.ts_ms - start) // 3_600_000, hours - 1)
        h_in[hour] += p.field_int("in")
        h_out[hour] += p.field_int("out")
    return [
        FlowRow(
            cp,
            acc["in"],
            acc["out"],
            acc["granted"],
            acc["denied"],
            acc["windows"],
            acc["uncertain"],
            hourly[cp][0],
            hourly[cp][1],
        )
        for cp, acc in sums.items()
    ]


def _occupancy(
    points: list[Any], site: SiteModel, mine: Any, start: int, hours: int
) -> list[OccupancyRow]:
    best: dict[str, tuple[int, int, int]] = {}  # target -> (peak, at, samples)
    hourly: dict[str, list[int | None]] = {}
    for p in points:
        if not mine(p.tags) or "occupancy" not in p.fields:
            continue
        target, value = p.tags.get("building", ""), p.field_int("occupancy")
        peak, at, n = best.get(target, (value, p.ts_ms, 0))
        if value > peak:
            peak, at = value, p.ts_ms
        best[target] = (peak, at, n + 1)
        series = hourly.setdefault(target, [None] * hours)
        hour = min((p.ts_ms - start) // 3_600_000, hours - 1)
        old = series[hour]
        series[hour] = value if old is None else max(old, value)
    order = [b.id for b in site.buildings] + ["site"]
    targets = [t for t in order if t in best] + sorted(set(best) - set(order))
    return [OccupancyRow(t, *best[t], hourly[t]) for t in targets]


def _incident_row(
    alert: dict[str, Any], timeline: list[dict[str, Any]], deadline_s: float
) -> IncidentRow:
    steps = {s.name: s for s in fire_report.milestones(alert, timeline, {"on_scene": deadline_s})}
    closed = steps["resolved"].after_s
    if closed is None:
        closed = steps["false_alarm"].after_s
    return IncidentRow(
        id=str(alert["id"]),
        building=str(alert["building"]),
        zone=str(alert["zone"]),
        floor=alert.get("floor"),
        drill=bool(alert.get("drill")),
        state=str(alert["state"]),
        opened_at=int(alert["opened_at"]),
        confirmed_s=steps["confirmed"].after_s,
        dispatched_s=steps["dispatched"].after_s,
        acknowledged_s=steps["acknowledged"].after_s,
        on_scene_s=steps["on_scene"].after_s,
        closed_s=closed,
        within_deadline=steps["on_scene"].ok,
        breach=bool(alert.get("breach")),
        escalations=sum(1 for r in timeline if r["kind"] == "escalation"),
        sources=sum(1 for r in timeline if r["kind"] == "source"),
    )
