"""`community-gateway incident export` and `report` read the spool of a running gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.e2e.harness import GatewayProcess, now_ms, publish_all, write_config
from tests.servers import MosquittoServer, wait_until


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_incident_bundle_and_daily_report_from_a_running_gateway(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-reports")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    try:
        alarm = json.dumps({"ts": now_ms(), "event": "alarm"}).encode()
        publish_all(mosquitto.port, [("community/shazui/b01/callpoint/CP-b01-1/event", alarm)])
        wait_until(lambda: gw.status()["incidents"], 10, what="an incident")
        incident = gw.status()["incidents"][0]["id"]
        wait_until(lambda: gw.status()["spool"]["rows"] > 3, 10, what="audit committed")
        run = _cli("incident", "export", incident, "--config", str(cfg), "--out", str(tmp_path))
        assert run.returncode == 0, run.stderr
        with zipfile.ZipFile(tmp_path / f"{incident}.zip") as z:
            names = {n.split("/", 1)[-1]: n for n in z.namelist()}  # files sit in {id}/
            assert {"incident.json", "timeline.json", "report.html"} <= set(names)
            assert json.loads(z.read(names["incident.json"]))["id"] == incident
        run = _cli("report", "--config", str(cfg), "--date", "today", "--out", str(tmp_path / "r"))
        assert run.returncode == 0, run.stderr
        assert len(list((tmp_path / "r").iterdir())) == 3
        bad = _cli("incident", "export", "inc-nope", "--config", str(cfg), "--out", str(tmp_path))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
    finally:
        assert gw.terminate() == 0
