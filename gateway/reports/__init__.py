"""Reports for people: incident evidence bundles and the daily report (docs/reports.md)."""

from gateway.reports.bundle import build_bundle, incident_bundle, write_bundle
from gateway.reports.cli import (
    SOURCES,
    build_day,
    daily_report,
    export_incident,
    history_source,
    parse_day,
)
from gateway.reports.daily import DailyReport, build_daily, day_bounds
from gateway.reports.history import History, LiveSpool, SpoolFile, merge_points
from gateway.reports.incidents import rebuild_incident, rebuild_incidents
from gateway.reports.influx import InfluxV1History
from gateway.reports.lineparse import LineProtocolError, Point, parse_line, parse_lines
from gateway.reports.render import FORMATS, ReportError, render
from gateway.reports.tables import tables

__all__ = [
    "FORMATS",
    "SOURCES",
    "DailyReport",
    "History",
    "InfluxV1History",
    "LineProtocolError",
    "LiveSpool",
    "Point",
    "ReportError",
    "SpoolFile",
    "build_bundle",
    "build_daily",
    "build_day",
    "daily_report",
    "day_bounds",
    "export_incident",
    "history_source",
    "incident_bundle",
    "merge_points",
    "parse_day",
    "parse_line",
    "parse_lines",
    "rebuild_incident",
    "rebuild_incidents",
    "render",
    "tables",
    "write_bundle",
]
