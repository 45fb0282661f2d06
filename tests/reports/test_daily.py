"""The daily report of a simulated day: every format's numbers equal the generator's truth."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest

from gateway.devices.alerts import Alert
from gateway.devices.registry import DeviceRecord
from gateway.headcount.records import FlowRecord, OccupancyRecord
from gateway.reports import daily_report, day_bounds
from gateway.reports.tables import TABLE_TITLES
from gateway.spool import Spool
from tests.fire.helpers import SITE, records
from tests.reports.conftest import config_for, store
from tests.reports.test_bundle import Scene

TZ = timezone(timedelta(hours=8))
DAY = date(2026, 11, 23)
CHECKPOINTS = ("cp-b1", "cp-n")
TARGETS = ("b1", "b2", "site")


@dataclass
class Truth:
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarms: dict[str, int] = field(default_factory=dict)
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    health: dict[str, dict[str, int]] = field(default_factory=dict)


def simulate_day(spool: Spool) -> Truth:
    """One day (and bits of the days around it) stored as the gateway stores it."""
    start, end = day_bounds(DAY, TZ)
    truth = Truth()
    rng = np.random.default_rng(7)
    scene = Scene()
    e, clock = scene.engine, scene.clock
    clock.advance((start - 600_000 - clock.wall_ms()) / 1000)  # 23:50 the day before

    def incident(alarms: list[tuple[str, str, str]], on_scene_s: float, counted: bool) -> None:
        t0 = clock.wall_ms()
        for building, kind, device in alarms:
            scene.run(e.on_alarm(_alarm(scene, building, kind, device)))
            clock.advance(10)
        (inc,) = e.incidents(open_only=True)
        clock.advance(on_scene_s - 10 * len(alarms))
        scene.run(e.tick())
        scene.run(e.act(inc.id, "on_scene", "mfs-near"))
        clock.advance(90)
        scene.run(e.act(inc.id, "resolve", "mfs-near"))
        if counted:
            for building, _, _ in alarms:
                truth.alarms[building] = truth.alarms.get(building, 0) + 1
            truth.incidents[inc.id] = {
                "on_scene_s": on_scene_s,
                "within_deadline": "yes" if on_scene_s <= 300 else "no",
                "breach": "yes" if on_scene_s > 300 else "no",
                "opened_at": t0,
            }

    incident([("b1", "smoke", "SD-6"), ("b1", "smoke", "SD-7")], 200, counted=False)
    clock.advance((start + 9 * 3600_000 - clock.wall_ms()) / 1000)
    incident([("b1", "smoke", "SD-1"), ("b1", "smoke", "SD-2")], 171.5, counted=True)
    clock.advance(5 * 3600)
    incident([("b2", "callpoint", "CP-21")], 412.25, counted=True)
    clock.advance((end - 180_000 - clock.wall_ms()) / 1000)  # 23:57, closed after midnight
    incident([("b1", "smoke", "SD-4"), ("b1", "smoke", "SD-5")], 250, counted=True)

    lines = list(scene.lines)
    for cp in CHECKPOINTS:
        acc = {"in": 0, "out": 0, "granted": 0, "denied": 0}
        for minute in range(-60, 24 * 60 + 60):
            ts = start + minute * 60_000
            p_in, p_out, den = (int(x) for x in rng.integers(0, [30, 25, 3]))
            rec = FlowRecord(SITE, cp, "1m", ts, p_in, p_out, p_in, den, 0, 0, 0, 0, False)
            lines.append((ts, rec.line()))
            lines.append(
                (ts, FlowRecord(SITE, cp, "5m", ts, 99, 99, 0, 0, 0, 0, 0, 0, False).line())
            )
            if 0 <= minute < 24 * 60:
                for key, v in (("in", p_in), ("out", p_out), ("granted", p_in), ("denied", den)):
                    acc[key] += v
        truth.flows[cp] = acc
    for target in TARGETS:
        walk = np.cumsum(rng.integers(-20, 22, 24 * 60 + 120)) + 500
        for i, value in enumerate(walk):
            ts = start + (i - 60) * 60_000
            lines.append((ts, OccupancyRecord(SITE, target, ts, int(value), 0, False).line()))
        truth.peaks[target] = int(walk[60 : 60 + 24 * 60].max())
    noon = start + 12 * 3600_000
    troubles = [  # (building, kind, device, type, state, trouble, in the day)
        ("b1", "smoke", "SD-3", "device_offline", "raised", "", True),
        ("b1", "smoke", "SD-3", "device_offline", "cleared", "", True),
        ("b1", "smoke", "SD-3", "device_offline", "raised", "", True),
        ("b1", "smoke", "SD-1", "trouble", "raised", "low_battery", True),
        ("b1", "access", "AC-b1", "trouble", "event", "tamper", True),
        ("b2", "smoke", "SD-21", "trouble", "raised", "fault", True),
        ("b2", "smoke", "SD-22", "trouble", "raised", "fault", False),
    ]
    for k, (b, kind, dev, type_, state, trouble, today) in enumerate(troubles):
        ts = noon + k * 1000 if today else start - 5000
        detail = {"trouble": trouble} if trouble else {"reason": "heartbeat"}
        lines.append((ts, Alert(type_, ts, b, kind, dev, state, detail).line(SITE)))
    truth.health = {
        "b1": {"offline_events": 2, "troubles": 2, "low_battery": 1, "faults": 0,
               "devices_with_alerts": 3},
        "b2": {"offline_events": 0, "troubles": 1, "low_battery": 0, "faults": 1,
               "devices_with_alerts": 1},
    }  # fmt: skip
    store(spool, lines, records(scene.actions))
    return truth


def _alarm(scene: Scene, building: str, kind: str, device: str) -> Any:
    from gateway.forward.lineproto import message_line
    from tests.fire.helpers import msg

    m = msg(building, kind, device, event="alarm", ts_ms=scene.clock.wall_ms())
    scene.lines.append((m.ts_ms, message_line(m, scene.index.place(building, kind, device))))
    return m


class _Tables(HTMLParser):
    """The report page's tables, keyed by the heading before each."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._heading: str | None = None
        self._text: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("h2", "td", "th"):
            self._text = []
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or [])
        if tag == "h2":
            self._heading = next(k for k, v in TABLE_TITLES.items() if v == text)
            self.tables[self._heading] = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None and self._heading:
            self.tables[self._heading].append(self._row)
        if tag in ("h2", "td", "th"):
            self._text = None


def _dicts(rows: list[list[Any]]) -> list[dict[str, Any]]:
    head = [str(c) for c in rows[0]]
    return [dict(zip(head, row, strict=True)) for row in rows[1:]]


def read_formats(paths: list[Path]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each format's tables as rows of {column: value}."""
    by_ext = {p.name.split(".", 1)[1]: p for p in paths}
    parser = _Tables()
    parser.feed(by_ext["html"].read_text())
    out = {"html": {k: _dicts(v) for k, v in parser.tables.items() if v}}
    with zipfile.ZipFile(by_ext["csv.zip"]) as zf:
        texts = {n.removesuffix(".csv"): zf.read(n).decode("utf-8-sig") for n in zf.namelist()}
    out["csv"] = {n: _dicts(list(csv.reader(io.StringIO(t)))) for n, t in texts.items()}
    wb = openpyxl.load_workbook(by_ext["xlsx"])
    out["xlsx"] = {ws.title: _dicts([list(r) for r in ws.iter_rows(values_only=True)]) for ws in wb}
    return out


def num(value: Any) -> float:
    return float(value)


@pytest.fixture
def report_files(spool: Spool, tmp_path: Path) -> tuple[Truth, dict[str, Any]]:
    truth = simulate_day(spool)
    snapshot = [
        DeviceRecord("b1", "smoke", f"SD-{i}", True, 60, 20, state=s)
        for i, s in enumerate(["online"] * 5 + ["offline"] * 2)
    ] + [DeviceRecord("b2", "smoke", "SD-21", True, 60, 20, state="online")]
    paths = daily_report(config_for(spool.path), DAY, tmp_path / "rep", tz=TZ, devices=snapshot)
    assert len(paths) == 3 and all(p.stat().st_size > 0 for p in paths)
    return truth, read_formats(paths)


@pytest.mark.parametrize("fmt", ["html", "csv", "xlsx"])
def test_each_format_shows_the_simulated_days_truth(
    report_files: tuple[Truth, dict[str, Any]], fmt: str
) -> None:
    truth, formats = report_files
    t = formats[fmt]
    flows = {r["checkpoint"]: r for r in t["flows"]}
    for cp, acc in truth.flows.items():
        for key, value in acc.items():
            assert num(flows[cp][key]) == value, (cp, key)
        assert num(flows[cp]["windows"]) == 24 * 60
    peaks = {r["target"]: num(r["peak"]) for r in t["occupancy"]}
    assert peaks == truth.peaks
    incidents = {r["id"]: r for r in t["incidents"]}
    assert set(incidents) == set(truth.incidents)
    for inc_id, want in truth.incidents.items():
        row = incidents[inc_id]
        assert num(row["on_scene_s"]) == want["on_scene_s"]
        assert row["within_deadline"] == want["within_deadline"]
        assert row["breach"] == want["breach"]
        assert row["state"] == "resolved"
    alarms: dict[str, int] = {}
    for r in t["alarms"]:
        alarms[r["building"]] = alarms.get(r["building"], 0) + 1
    assert alarms == truth.alarms
    health = {r["building"]: r for r in t["device_health"]}
    for b, want in truth.health.items():
        assert {k: num(health[b][k]) for k in want} == want
    assert (num(health["b1"]["online"]), num(health["b1"]["offline"])) == (5, 2)
    summary = {r["key"]: r["value"] for r in t["summary"]}
    assert num(summary["people_in"]) == sum(a["in"] for a in truth.flows.values())
    assert num(summary["peak_occupancy_site"]) == truth.peaks["site"]
    assert num(summary["incidents"]) == len(truth.incidents)


def test_html_has_inline_svg_charts_and_no_script(
    report_files: tuple[Truth, dict[str, Any]], tmp_path: Path
) -> None:
    page = next((tmp_path / "rep").glob("*.html")).read_text()
    assert page.count("<svg") == 3 and "<script" not in page


def test_bad_date_and_format_are_clear_errors(spool: Spool, tmp_path: Path) -> None:
    from gateway.reports import ReportError

    with pytest.raises(ReportError, match="YYYY-MM-DD"):
        daily_report(config_for(spool.path), "23/11/2026", tmp_path)
    with pytest.raises(ReportError, match="pdf"):
        daily_report(config_for(spool.path), DAY, tmp_path, ["pdf"])
