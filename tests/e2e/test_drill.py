"""`community-gateway drill` against a running gateway, with simulated devices and a team."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.sim.responder import DeviceResponder, TeamApp, TeamTiming
from tests.e2e.harness import GatewayProcess, write_config
from tests.servers import MosquittoServer


def test_drill_runs_the_chain_marks_commands_and_writes_a_report(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-drill")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    devices = DeviceResponder("127.0.0.1", mosquitto.port, "community", "shazui")
    team = TeamApp("127.0.0.1", mosquitto.port, "community", "shazui", TeamTiming(0.3, 0.6, 0.9))
    devices.start()
    team.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "gateway", "drill", "--config", str(cfg),
             "--building", "b02", "--zone", "b02-f1", "--by", "duty-room",
             "--timeout", "20", "--out", str(tmp_path / "reports")],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "resolved" in run.stdout
        (report,) = (tmp_path / "reports").glob("drill-*.md")
        text = report.read_text(encoding="utf-8")
        assert "消防演练报告" in text
        assert "| SCR-b02 | show |" in text and "| VT-b02 | say |" in text
        assert "no ack" not in text  # every command was acknowledged by the devices
        assert report.with_suffix(".html").exists()
        assert devices.commands >= 2
        incidents = gw.status()["incidents"]
        assert incidents[-1]["drill"] is True and incidents[-1]["state"] == "resolved"
    finally:
        team.stop()
        devices.stop()
        assert gw.terminate() == 0


def test_drill_of_an_unknown_zone_is_refused_with_a_clear_message(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-drill2")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "gateway", "drill", "--config", str(cfg),
             "--building", "b02", "--zone", "nowhere"],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 2
        assert "no zone 'nowhere'" in run.stderr and "Traceback" not in run.stderr
    finally:
        assert gw.terminate() == 0
