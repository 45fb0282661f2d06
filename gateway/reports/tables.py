"""The daily report as tables: the one source every format (HTML, CSV, XLSX) renders."""

from __future__ import annotations

from gateway.reports.daily import Cell, DailyReport, Table

TABLE_TITLES = {
    "summary": "概要 Summary",
    "device_health": "设备状况 Device health",
    "incidents": "火警事件 Incidents",
    "alarms": "报警 Alarms",
    "flows": "出入口人流 Checkpoint flows",
    "occupancy": "在场人数峰值 Peak occupancy",
}


def _yes_no(value: bool | None) -> Cell:
    return None if value is None else ("yes" if value else "no")


def summary_rows(r: DailyReport) -> list[list[Cell]]:
    """Key figures of the day."""
    site_peak = next((o.peak for o in r.occupancy if o.target == "site"), None)
    return [
        ["site", r.site],
        ["date", r.day.isoformat()],
        ["timezone", str(r.tz)],
        ["devices", sum(b.devices for b in r.buildings)],
        ["offline_events", sum(b.offline_events for b in r.buildings)],
        ["troubles", sum(b.troubles for b in r.buildings)],
        ["alarms", len(r.alarms)],
        ["incidents", len(r.incidents)],
        ["incidents_within_deadline", sum(1 for i in r.incidents if i.within_deadline)],
        ["incidents_breached", sum(1 for i in r.incidents if i.breach)],
        ["deadline_s", r.deadline_s],
        ["people_in", sum(f.people_in for f in r.flows)],
        ["people_out", sum(f.people_out for f in r.flows)],
        ["peak_occupancy_site", site_peak],
    ]


def tables(r: DailyReport) -> dict[str, Table]:
    """Every table of the report by name, columns first (the names CSV and XLSX use)."""
    return {
        "summary": (["key", "value"], summary_rows(r)),
        "device_health": (
            ["building", "devices", "online", "offline", "offline_events", "troubles",
             "low_battery", "faults", "devices_with_alerts"],
            [[b.building, b.devices, b.online, b.offline, b.offline_events, b.troubles,
              b.low_battery, b.faults, b.devices_with_alerts] for b in r.buildings],
        ),
        "incidents": (
            ["id", "building", "zone", "floor", "drill", "state", "opened", "confirmed_s",
             "dispatched_s", "acknowledged_s", "on_scene_s", "closed_s", "deadline_s",
             "within_deadline", "breach", "escalations", "sources"],
            [[i.id, i.building, i.zone, i.floor, _yes_no(i.drill), i.state,
              r.local(i.opened_at), i.confirmed_s, i.dispatched_s, i.acknowledged_s,
              i.on_scene_s, i.closed_s, r.deadline_s, _yes_no(i.within_deadline),
              _yes_no(i.breach), i.escalations, i.sources] for i in r.incidents],
        ),
        "alarms": (
            ["time", "building", "kind", "device", "zone", "event"],
            [[r.local(a.ts_ms), a.building, a.kind, a.device, a.zone, a.event]
             for a in r.alarms],
        ),
        "flows": (
            ["checkpoint", "in", "out", "net", "granted", "denied", "windows",
             "uncertain_windows"],
            [[f.checkpoint, f.people_in, f.people_out, f.net, f.granted, f.denied, f.windows,
              f.uncertain_windows] for f in r.flows],
        ),
        "occupancy": (
            ["target", "peak", "peak_at", "samples"],
            [[o.target, o.peak, r.local(o.peak_at), o.samples] for o in r.occupancy],
        ),
    }  # fmt: skip
