"""Incidents rebuilt from stored audit records, for reports (the gateway need not run).

The fire engine's own `restore` replays the records on a fresh engine, so a report shows
exactly the incident the gateway had: same states, times, teams and escalations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gateway.clock import ManualClock
from gateway.config import FireSection
from gateway.fire import FireEngine, IncidentError
from gateway.site import SiteIndex, SiteModel

IncidentData = tuple[dict[str, Any], list[dict[str, Any]]]  # (alert object, timeline records)


def rebuild_incidents(
    records: Iterable[str | dict[str, Any]],
    settings: FireSection,
    site: SiteModel,
    site_id: str,
    root: str = "community",
) -> list[IncidentData]:
    """Every incident the records open, as `(alert, timeline)`, oldest first.

    Records of incidents opened before the first record given are skipped (no `opened`).
    Unreadable JSON is skipped too: a report shows what can be read.
    """
    parsed: list[dict[str, Any]] = []
    for item in records:
        if isinstance(item, str):
            try:
                obj = json.loads(item)
            except ValueError:
                continue
        else:
            obj = item
        if isinstance(obj, dict):
            parsed.append(obj)
    last_ts = max((int(r.get("ts", 0)) for r in parsed if isinstance(r.get("ts"), int)), default=0)
    clock = ManualClock(wall_ms=last_ts)
    engine = FireEngine(settings, SiteIndex(site), site_id, root, clock, keep_closed=10**9)
    engine.restore(parsed)
    out: list[IncidentData] = []
    for inc in engine.incidents():
        timeline = [r.to_dict() for r in engine.timeline(inc.id)]
        ts = max((int(r["ts"]) for r in timeline), default=inc.opened_at)
        out.append((inc.alert(ts), timeline))
    return out


def rebuild_incident(
    records: Iterable[str | dict[str, Any]],
    incident_id: str,
    settings: FireSection,
    site: SiteModel,
    site_id: str,
    root: str = "community",
) -> IncidentData:
    """One incident from its audit records; IncidentError when they do not open it."""
    for alert, timeline in rebuild_incidents(records, settings, site, site_id, root):
        if alert["id"] == incident_id:
            return alert, timeline
    raise IncidentError(
        f"incident {incident_id!r}: no audit records in the spool (check the id, e.g."
        " inc-20260101-0001; records older than the spool's history are gone)"
    )
