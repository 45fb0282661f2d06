"""An incident's evidence bundle: one zip with everything that happened, as JSON and HTML.

Files: `incident.json` (the alert object), `timeline.json` (every audit record),
`sources.json` (each source device's audit entries and its stored event readings),
`commands.json` (every command, its ack and delay), `escalations.json`, `response.json`
(milestones against the deadline), `report.html` (printable) and `README.txt`.
docs/reports.md describes each.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from gateway.fire import report
from gateway.reports.history import History

LOOKBACK_S: Final = 600.0  # device readings this long before the incident opened are kept
AFTER_S: Final = 60.0  # and this long after it closed
SOURCE_KINDS_BY_BUILDING: Final = frozenset({"smoke", "heat", "callpoint"})
_README: Final = (
    "Incident evidence bundle / 火警证据包\n\n"
    "incident.json     the incident's alert object (final state)\n"
    "timeline.json     every audit record, with after_s from the first alarm\n"
    "sources.json      every source device: its audit entries and stored event readings\n"
    "commands.json     every linkage command: ack, delay, retries\n"
    "escalations.json  dispatches and escalations\n"
    "response.json     response times against the deadline\n"
    "report.html       printable report\n\n"
    "Camera snapshots: none. The gateway does not store camera frames yet.\n"
)


def _after_s(ts: int, opened: int) -> float:
    return round((ts - opened) / 1000, 3)


def command_table(alert: dict[str, Any], timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every command with its first ack (time, delay, ok, error), retries and give-up."""
    opened = int(alert["opened_at"])
    rows: dict[str, dict[str, Any]] = {}
    for rec in timeline:
        data, kind = rec["data"], rec["kind"]
        cmd_id = data.get("cmd_id")
        if kind == "command" and cmd_id:
            rows[cmd_id] = {
                "cmd_id": cmd_id,
                "building": data.get("building"),
                "kind": data.get("kind"),
                "device": data.get("device"),
                "action": data.get("action"),
                "topic": data.get("topic"),
                "sent_at": int(rec["ts"]),
                "sent_after_s": _after_s(int(rec["ts"]), opened),
                "ack_at": None,
                "ack_delay_ms": None,
                "ok": None,
                "error": None,
                "retries": 0,
                "failed": False,
                "payload": data.get("payload"),
            }
        elif cmd_id in rows:
            row = rows[cmd_id]
            if kind == "ack" and row["ack_at"] is None:
                row["ack_at"] = int(rec["ts"])
                row["ack_delay_ms"] = int(rec["ts"]) - row["sent_at"]
                row["ok"] = bool(data.get("ok"))
                row["error"] = data.get("error")
            elif kind == "retry":
                row["retries"] += 1
            elif kind == "command_failed":
                row["failed"] = True
    return list(rows.values())


def response_times(
    alert: dict[str, Any], timeline: list[dict[str, Any]], deadline_s: float
) -> dict[str, Any]:
    """Milestones from the first alarm, and whether the team was on scene by the deadline."""
    steps = report.milestones(alert, timeline, {"on_scene": deadline_s})
    on_scene = next(s for s in steps if s.name == "on_scene")
    return {
        "opened_at": alert["opened_at"],
        "deadline_s": deadline_s,
        "deadline_at": alert.get("deadline_at"),
        "breach": bool(alert.get("breach")),
        "on_scene_after_s": on_scene.after_s,
        "within_deadline": on_scene.ok,
        "steps": [{**asdict(s), "ok": s.ok} for s in steps],
    }


def source_readings(
    alert: dict[str, Any], timeline: list[dict[str, Any]], history: History | None
) -> list[dict[str, Any]]:
    """Each source device: its `source`/`clear` audit entries and its stored event points."""
    opened = int(alert["opened_at"])
    end = alert.get("closed_at") or max((int(r["ts"]) for r in timeline), default=opened)
    since, until = opened - int(LOOKBACK_S * 1000), int(end) + int(AFTER_S * 1000) + 1
    devices: dict[str, dict[str, Any]] = {}
    for rec in timeline:
        device = rec["data"].get("device")
        if rec["kind"] == "source" and device not in devices:
            devices[device] = {"device": device, "kind": rec["data"].get("kind"), "audit": []}
        if rec["kind"] in ("source", "clear") and device in devices:
            devices[device]["audit"].append(rec)
    cache: dict[str, list[Any]] = {}
    for item in devices.values():
        kind = str(item["kind"])
        readings: list[dict[str, Any]] = []
        if history is not None:
            measurement = f"{kind}_event"
            if measurement not in cache:
                cache[measurement] = history.points(measurement, since, until)
            for p in cache[measurement]:
                if p.tags.get("device") != item["device"]:
                    continue
                if kind in SOURCE_KINDS_BY_BUILDING and p.tags.get("building") != alert["building"]:
                    continue  # device ids are unique per building, not per site
                readings.append(
                    {
                        "ts": p.ts_ms,
                        "after_s": _after_s(p.ts_ms, opened),
                        "measurement": p.measurement,
                        "event": p.tags.get("event"),
                        "tags": p.tags,
                        "fields": p.fields,
                    }
                )
        item["readings"] = readings
    return list(devices.values())


def build_bundle(
    alert: dict[str, Any],
    timeline: list[dict[str, Any]],
    history: History | None,
    deadline_s: float,
) -> dict[str, bytes]:
    """The bundle's files by name (what the API zips or serves)."""
    opened = int(alert["opened_at"])
    timed = [{**r, "after_s": _after_s(int(r["ts"]), opened)} for r in timeline]
    escalations = [r for r in timed if r["kind"] in ("dispatch", "escalation")]
    limits = {"on_scene": deadline_s}
    title = f"{alert['id']} report"
    page = report.html_page(report.markdown(alert, timeline, limits), title)
    docs: dict[str, Any] = {
        "incident.json": alert,
        "timeline.json": timed,
        "sources.json": source_readings(alert, timeline, history),
        "commands.json": command_table(alert, timeline),
        "escalations.json": escalations,
        "response.json": response_times(alert, timeline, deadline_s),
    }
    files = {
        name: json.dumps(doc, ensure_ascii=False, indent=2).encode() for name, doc in docs.items()
    }
    files["report.html"] = page.encode()
    files["README.txt"] = _README.encode()
    return files


def zip_bytes(files: dict[str, bytes], folder: str) -> bytes:
    """The files as a zip (deflated), under one folder named after the incident."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return buf.getvalue()


def incident_bundle(
    alert: dict[str, Any],
    timeline: list[dict[str, Any]],
    history: History | None,
    deadline_s: float,
) -> bytes:
    """The zip of `build_bundle` (for `GET /api/v1/incidents/{id}/bundle`)."""
    return zip_bytes(build_bundle(alert, timeline, history, deadline_s), str(alert["id"]))


def write_bundle(
    alert: dict[str, Any],
    timeline: list[dict[str, Any]],
    history: History | None,
    deadline_s: float,
    out: Path,
) -> Path:
    """Write the zip to `out` (a folder gets `{id}.zip` inside); returns the file."""
    out = Path(out)
    path = out / f"{alert['id']}.zip" if out.is_dir() else out
    path.write_bytes(incident_bundle(alert, timeline, history, deadline_s))
    return path
