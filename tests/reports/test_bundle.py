"""Evidence bundles of an incident driven through a real FireEngine and stored in a real Spool."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from gateway.decode.message import DeviceMessage
from gateway.errors import SpoolError
from gateway.fire import Action, FireEngine, IncidentError
from gateway.forward.lineproto import message_line
from gateway.reports import LiveSpool, export_incident, incident_bundle
from gateway.site import SiteIndex
from gateway.spool import Spool
from tests.fire.helpers import ack, commands, make_engine, msg, records, site_model
from tests.reports.conftest import config_for, store

FILES = {"incident.json", "timeline.json", "sources.json", "commands.json", "escalations.json",
         "response.json", "report.html", "README.txt"}  # fmt: skip


class Scene:
    """An incident run step by step; remembers what the clock and the devices did."""

    def __init__(self) -> None:
        self.engine, self.clock = make_engine()
        self.index = SiteIndex(site_model())
        self.actions: list[Action] = []
        self.lines: list[tuple[int, str]] = []
        self.sent_ms: dict[str, int] = {}
        self.ack_delays: dict[str, int] = {}

    def alarm(self, device: str, building: str = "b1") -> DeviceMessage:
        m = msg(building, "smoke", device, event="alarm", ts_ms=self.clock.wall_ms())
        self.lines.append((m.ts_ms, message_line(m, self.index.place(building, "smoke", device))))
        return m

    def run(self, new: list[Action]) -> list[Action]:
        self.actions += new
        for c in commands(new):
            self.sent_ms.setdefault(c.payload["cmd_id"], self.clock.wall_ms())
        return new

    def answer(self, cmds: list[Any], after_s: float) -> None:
        self.clock.advance(after_s)
        for c in cmds:
            cmd_id = c.payload["cmd_id"]
            self.ack_delays[cmd_id] = self.clock.wall_ms() - self.sent_ms[cmd_id]
        self.run(self.engine.on_messages([ack(c) for c in cmds]))


def run_incident(scene: Scene) -> tuple[str, dict[str, float]]:
    """alarm → second detector (confirm, dispatch) → acks → ack → on scene → resolve."""
    e, clock = scene.engine, scene.clock
    t0 = clock.wall_ms()
    scene.run(e.on_alarm(scene.alarm("SD-1")))
    clock.advance(20)
    confirm = scene.run(e.on_alarm(scene.alarm("SD-2")))
    (inc,) = e.incidents(open_only=True)
    cmds = commands(confirm)
    scene.answer(cmds[: len(cmds) // 2], 1.5)
    scene.answer(cmds[len(cmds) // 2 :], 2.25)
    clock.advance(30)
    scene.run(e.act(inc.id, "ack", "mfs-near"))
    t_ack = clock.wall_ms()
    clock.advance(120)
    scene.run(e.act(inc.id, "on_scene", "mfs-near"))
    t_scene = clock.wall_ms()
    clock.advance(60)
    closing = scene.run(e.act(inc.id, "resolve", "mfs-near"))
    t_close = clock.wall_ms()
    scene.answer(commands(closing), 0.7)
    expected = {
        "confirmed": 20.0,
        "dispatched": 20.0,
        "acknowledged": (t_ack - t0) / 1000,
        "on_scene": (t_scene - t0) / 1000,
        "resolved": (t_close - t0) / 1000,
    }
    return inc.id, expected


def read_zip(path_or_bytes: Path | bytes) -> dict[str, Any]:
    src = path_or_bytes if isinstance(path_or_bytes, Path) else io.BytesIO(path_or_bytes)
    with zipfile.ZipFile(src) as zf:
        out: dict[str, Any] = {}
        for name in zf.namelist():
            base = name.split("/", 1)[1]
            data = zf.read(name)
            out[base] = json.loads(data) if base.endswith(".json") else data.decode()
    return out


@pytest.fixture
def stored(spool: Spool) -> tuple[Scene, str, dict[str, float]]:
    scene = Scene()
    other = msg("b2", "smoke", "SD-1", event="alarm", ts_ms=scene.clock.wall_ms() + 5000)
    scene.lines.append((other.ts_ms, message_line(other, None)))  # same id, other building
    inc_id, expected = run_incident(scene)
    store(spool, scene.lines, records(scene.actions))
    return scene, inc_id, expected


def test_bundle_has_every_file_and_the_clocks_response_times(
    spool: Spool, stored: tuple[Scene, str, dict[str, float]], tmp_path: Path
) -> None:
    scene, inc_id, expected = stored
    path = export_incident(config_for(spool.path), inc_id, tmp_path / "out")
    assert path == tmp_path / "out"  # a path that is not a folder is the zip itself
    files = read_zip(path)
    assert set(files) == FILES
    assert "none" in files["README.txt"].lower()
    response = files["response.json"]
    got = {s["name"]: s["after_s"] for s in response["steps"] if s["after_s"] is not None}
    assert got == expected
    assert response["on_scene_after_s"] == expected["on_scene"]
    assert response["within_deadline"] is (expected["on_scene"] <= 300)
    live = scene.engine.incident(inc_id).alert(0)
    assert {**files["incident.json"], "ts": 0} == live
    assert [{k: v for k, v in r.items() if k != "after_s"} for r in files["timeline.json"]] == [
        r.to_dict() for r in scene.engine.timeline(inc_id)
    ]


def test_every_command_has_its_ack_and_delay(
    spool: Spool, stored: tuple[Scene, str, dict[str, float]], tmp_path: Path
) -> None:
    scene, inc_id, _ = stored
    files = read_zip(export_incident(config_for(spool.path), inc_id, tmp_path / "b.zip"))
    sent = {c.payload["cmd_id"] for c in commands(scene.actions)}
    rows = {r["cmd_id"]: r for r in files["commands.json"]}
    assert set(rows) == sent == set(scene.ack_delays)
    for cmd_id, delay in scene.ack_delays.items():
        assert rows[cmd_id]["ack_delay_ms"] == delay
        assert rows[cmd_id]["ok"] is True
    assert "mfs-near" in json.dumps(files["escalations.json"])  # the dispatch
    assert all(r["kind"] in ("dispatch", "escalation") for r in files["escalations.json"])


def test_sources_hold_the_source_devices_alarm_readings_only(
    spool: Spool, stored: tuple[Scene, str, dict[str, float]], tmp_path: Path
) -> None:
    _, inc_id, _ = stored
    files = read_zip(export_incident(config_for(spool.path), inc_id, tmp_path / "c.zip"))
    sources = {s["device"]: s for s in files["sources.json"]}
    assert set(sources) == {"SD-1", "SD-2"}
    for device, src in sources.items():
        (reading,) = src["readings"]  # SD-1 of building b2 is not this detector
        assert reading["tags"]["building"] == "b1" and reading["event"] == "alarm"
        assert reading["tags"]["zone"] == "b1-f3"
        assert src["audit"][0]["data"]["device"] == device


def test_api_bundle_from_live_objects_matches_the_cli_export(
    spool: Spool, stored: tuple[Scene, str, dict[str, float]], tmp_path: Path
) -> None:
    scene, inc_id, _ = stored
    engine: FireEngine = scene.engine
    alert = engine.incident(inc_id).alert(scene.clock.wall_ms())
    timeline = [r.to_dict() for r in engine.timeline(inc_id)]
    live = read_zip(incident_bundle(alert, timeline, LiveSpool(spool), 300.0))
    exported = read_zip(export_incident(config_for(spool.path), inc_id, tmp_path / "d.zip"))
    for name in FILES - {"incident.json", "report.html"}:
        assert live[name] == exported[name], name
    assert inc_id in live["report.html"] and "<table>" in live["report.html"]


def test_unknown_incident_and_missing_spool_are_clear_errors(spool: Spool, tmp_path: Path) -> None:
    with pytest.raises(IncidentError, match=r"inc-20990101-0001.*no audit records"):
        export_incident(config_for(spool.path), "inc-20990101-0001", tmp_path)
    with pytest.raises(SpoolError, match="no such file"):
        export_incident(config_for(tmp_path / "nope.db"), "inc-1", tmp_path)
