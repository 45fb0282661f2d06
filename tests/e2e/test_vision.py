"""Camera frames over MQTT → the gateway's vision → head-count and fire, end to end."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import cv2

from tests.e2e.harness import GatewayProcess, publish_all, write_config
from tests.servers import MosquittoServer, wait_until
from tests.vision.scenes import Blob, render, true_crossings

CAMERA_TOPIC = "community/shazui/gates/camera/CAM-cp-n01/frame"
VISION = """
[vision]
event_min_interval_s = 60

[[vision.cameras]]
id = "CAM-cp-n01"
source = "mqtt"
fps = 30
queue_max = 100
checkpoint = "cp-n01"
zone = "b01-f1"
line = { a = [0.0, 0.5], b = [1.0, 0.5], inside = [0.5, 1.0] }
"""


def _jpegs(blobs: list[Blob], n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        ok, jpeg = cv2.imencode(".jpg", render(blobs, i), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append((CAMERA_TOPIC, jpeg.tobytes()))
    return out


def _get(gw: GatewayProcess, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.api_port}{path}", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_frames_become_headcount_crossings_and_a_flame_a_fire_incident(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-vision")
    cfg.write_text(cfg.read_text(encoding="utf-8") + VISION, encoding="utf-8")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    try:
        walkers = [Blob((200, 60), (0, 22)), Blob((420, 80), (0, 20)), Blob((320, 420), (0, -22))]
        n = 24
        expected_in, expected_out = true_crossings(walkers, n, 240.0)
        assert (expected_in, expected_out) == (2, 1)
        publish_all(mosquitto.port, _jpegs(walkers, n), rate_per_s=10)

        def site_occupancy() -> object:
            return _get(gw, "/api/v1/occupancy")["occupancy"].get("site")  # type: ignore[union-attr]

        wait_until(lambda: site_occupancy() == expected_in - expected_out, 20, what="crossings")
        flame = [Blob((320, 200), (4, 0), radius=26, color=(0, 110, 255))]
        publish_all(mosquitto.port, _jpegs(flame, 8), rate_per_s=10)
        wait_until(lambda: _get(gw, "/api/v1/incidents"), 20, what="a fire incident")
        (incident,) = _get(gw, "/api/v1/incidents")  # type: ignore[misc]
        assert incident["zone"] == "b01-f1" and incident["state"] == "pre_alarm"
        assert incident["sources"] == ["CAM-cp-n01"]
        time.sleep(0.2)
        status = _get(gw, "/api/v1/status")
        assert status["spool"]["dead_letters"] == 0  # type: ignore[index]
        vision = status["vision"]
        # Every walker frame was analysed (the counts above need them); the last flame frames
        # may still be in flight.
        assert 24 <= vision["frames"] <= 32  # type: ignore[index]
        assert 0 < vision["gate_pass_fraction"] < 1  # type: ignore[index]
    finally:
        assert gw.terminate() == 0
