"""The gateway's HTTP API over a running gateway: health, occupancy correction, incidents."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import GatewayProcess, now_ms, publish_all, write_config
from tests.servers import MosquittoServer, wait_until


@pytest.fixture
def gw(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[GatewayProcess]:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-api")
    proc = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    proc.start()
    yield proc
    proc.terminate()


def _call(gw: GatewayProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{gw.api_port}{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_readiness_and_metrics(gw: GatewayProcess) -> None:
    assert _call(gw, "GET", "/healthz") == (200, {"status": "ok"})
    code, ready = _call(gw, "GET", "/readyz")
    assert code == 200 and ready["checks"]["mqtt_connected"] is True
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.api_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "gateway_alarm_lane_latency_seconds_bucket" in text
    assert "gateway_mqtt_connected 1.0" in text


def test_occupancy_correction_is_applied_and_bad_input_refused(gw: GatewayProcess) -> None:
    code, body = _call(gw, "POST", "/api/v1/occupancy/site", {"value": 40, "by": "duty-room"})
    assert (code, body["occupancy"]) == (200, 40)
    assert _call(gw, "GET", "/api/v1/occupancy")[1]["occupancy"]["site"] == 40
    code, body = _call(gw, "POST", "/api/v1/occupancy/b99", {"value": 1, "by": "x"})
    assert code == 404 and "b99" in body["detail"]
    assert _call(gw, "POST", "/api/v1/occupancy/site", {"value": -1, "by": "x"})[0] == 422


def test_incident_actions_through_the_api(gw: GatewayProcess, mosquitto: MosquittoServer) -> None:
    alarm = {"ts": now_ms(), "event": "alarm"}
    publish_all(
        mosquitto.port,
        [("community/shazui/b01/callpoint/CP-b01-1/event", json.dumps(alarm).encode())],
    )
    wait_until(lambda: _call(gw, "GET", "/api/v1/incidents")[1], 10, what="an incident")
    incident = _call(gw, "GET", "/api/v1/incidents")[1][0]
    assert incident["state"] == "dispatched" and incident["team"] == "mfs-1"
    iid = incident["id"]
    code, after = _call(
        gw, "POST", f"/api/v1/incidents/{iid}/actions", {"action": "ack", "by": "mfs-1"}
    )
    assert (code, after["state"]) == (200, "acknowledged")
    code, err = _call(
        gw, "POST", f"/api/v1/incidents/{iid}/actions", {"action": "confirm", "by": "x"}
    )
    assert code == 409 and "acknowledged" in err["detail"]
    assert _call(gw, "GET", "/api/v1/incidents/inc-nope")[0] == 404
    code, doc = _call(gw, "GET", f"/api/v1/incidents/{iid}")
    kinds = [r["kind"] for r in doc["timeline"]]
    assert kinds[0] == "opened" and "dispatch" in kinds  # b01 has no terminals to command
