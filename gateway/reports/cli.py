"""The report commands: `community-gateway incident export ID`, `community-gateway report`.

Both read the spool file read-only (`SpoolFile`), so they run beside a live gateway. The
daily report's points come from the spool (outbox and history) or from InfluxDB 1.x
(`source`, see `history_source`); incidents always come from the spool's fire audit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Final

from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.fire import IncidentError
from gateway.reports.bundle import write_bundle
from gateway.reports.daily import DailyReport, DeviceLike, build_daily, day_bounds
from gateway.reports.history import History, SpoolFile
from gateway.reports.incidents import rebuild_incident, rebuild_incidents
from gateway.reports.influx import InfluxV1History
from gateway.reports.render import FORMATS, ReportError, render

SOURCES: Final = ("auto", "spool", "influx")
_DAY_MS: Final = 86_400_000


def export_incident(cfg: GatewayConfig, incident_id: str, out: Path) -> Path:
    """Write the evidence bundle of one incident as a zip; `out` is a file or a folder."""
    with SpoolFile(cfg.spool.path) as spool:
        records = spool.incident_records([incident_id])
        if not records:
            raise IncidentError(
                f"incident {incident_id!r}: no audit records in {cfg.spool.path}"
                " (check the id, e.g. inc-20260101-0001)"
            )
        alert, timeline = rebuild_incident(
            records, incident_id, cfg.fire, cfg.site, cfg.gateway.site, cfg.mqtt.root
        )
        return write_bundle(alert, timeline, spool, cfg.fire.deadline_s, _out_path(out))


def parse_day(text: str) -> date:
    """`YYYY-MM-DD`, `today` or `yesterday` (local); ReportError otherwise."""
    if text in ("today", "yesterday"):
        return date.today() - timedelta(days=text == "yesterday")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"--date {text!r}: expected YYYY-MM-DD, today or yesterday") from None


def daily_report(
    cfg: GatewayConfig,
    day: date | str,
    out_dir: Path,
    formats: Sequence[str] = ("html", "csv", "xlsx"),
    *,
    tz: tzinfo | None = None,
    devices: Iterable[DeviceLike] | None = None,
    source: str = "auto",
) -> list[Path]:
    """Write the day's report in each format to `out_dir`; returns the files.

    `tz`: the day's time zone (default: this machine's local zone). `devices`: a registry
    snapshot for the current online/offline counts (the CLI has none: left empty).
    `source`: where the points come from (`history_source`).
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ReportError(f"report formats {bad or formats}: use some of {', '.join(FORMATS)}")
    report = build_day(cfg, day, tz=tz, devices=devices, source=source)
    out = _out_path(out_dir, folder=True)
    paths = []
    for fmt in formats:
        data, _, name = render(report, fmt)
        paths.append(_write(out / name, data))
    return paths


def build_day(
    cfg: GatewayConfig,
    day: date | str,
    *,
    tz: tzinfo | None = None,
    devices: Iterable[DeviceLike] | None = None,
    source: str = "auto",
    now_ms: int | None = None,
) -> DailyReport:
    """The day's report data (the CLI and the API render it): incidents from the spool's
    audit, points from `history_source(cfg, source, …)`."""
    if source not in SOURCES:
        raise ReportError(f"report source {source!r}: use one of {', '.join(SOURCES)}")
    if isinstance(day, str):
        day = parse_day(day)
    zone = tz or datetime.now().astimezone().tzinfo or UTC
    start, end = day_bounds(day, zone)
    with SpoolFile(cfg.spool.path) as spool:
        points = history_source(cfg, source, start, spool, now_ms)
        # Whole histories of the day's incidents: one closed after midnight keeps its close.
        ids = _opened_ids(spool.audit_records(start, end))
        incidents = rebuild_incidents(
            spool.incident_records(ids), cfg.fire, cfg.site, cfg.gateway.site, cfg.mqtt.root
        )
        report = build_daily(
            cfg.gateway.site,
            cfg.site,
            day,
            zone,
            points,
            incidents,
            cfg.fire.deadline_s,
            devices,
        )
    return report


def history_source(
    cfg: GatewayConfig, source: str, since_ms: int, spool: History, now_ms: int | None = None
) -> History:
    """Where a report starting at `since_ms` reads its points.

    `spool`: the spool (outbox and history). `influx`: InfluxDB 1.x (`[influx] api = "v1"`).
    `auto`: the spool while its history still holds `since_ms` (younger than
    `spool.history_days`, or everything when nothing is forwarded); InfluxDB v1 for older
    days; the spool again without a v1 database (v2: Flux only, see docs/reports.md).
    """
    if source == "influx":
        return InfluxV1History.from_config(cfg)
    if source == "auto" and cfg.influx.api == "v1":
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        if since_ms < now - cfg.spool.history_days * _DAY_MS:
            return InfluxV1History.from_config(cfg)
    return spool


def _opened_ids(records: list[str]) -> list[str]:
    ids = []
    for text in records:
        try:
            rec = json.loads(text)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("kind") == "opened":
            ids.append(str(rec.get("incident")))
    return ids


def _write(path: Path, data: bytes) -> Path:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise GatewayError(f"cannot write {path}: {exc.strerror}") from exc
    return path


def _out_path(out: Path, folder: bool = False) -> Path:
    out = Path(out)
    target = out if folder or out.is_dir() else out.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GatewayError(f"cannot create the output folder {target}: {exc.strerror}") from exc
    return out
