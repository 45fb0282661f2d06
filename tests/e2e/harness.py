"""Run the real gateway as a child process against the test servers, and watch it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.servers import free_port, wait_until

SMALL_SITE = """
[gateway]
id = "gw-test"
site = "shazui"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
client_id = "{client_id}"

[influx]
api = "{api}"
url = "{influx_url}"
database = "{database}"
bucket = "{database}"
org = "test"
backoff_min_s = 0.1
backoff_max_s = 0.5

[spool]
path = "{spool}"

[ingest]
# Tests publish thousands of messages from a handful of devices: no per-device limit here
# (tests/ingest/test_ratelimit.py and the flood fault test cover the limiter).
device_rate_per_s = 1000000.0
device_burst = 1000000.0

[api]
bind = "127.0.0.1:{api_port}"

[site]
name = "沙嘴测试"
card_salt = "test-salt"

[[site.buildings]]
id = "b01"
floors = 3
  [[site.buildings.zones]]
  id = "b01-f1"
  floor = 1
  smoke = ["SD-b01-1-1", "SD-b01-1-2"]
  heat = ["HD-b01-1-1"]
  callpoints = ["CP-b01-1"]
  [[site.buildings.zones]]
  id = "b01-f2"
  floor = 2
  smoke = ["SD-b01-2-1"]

[[site.buildings]]
id = "b02"
screens = ["SCR-b02"]
voice = ["VT-b02"]
access = ["AC-b02"]
  [[site.buildings.zones]]
  id = "b02-f1"
  floor = 1
  smoke = ["SD-b02-1-1"]

[[site.fire_teams]]
id = "mfs-1"
tier = 0
position_m = [10.0, 0.0]

[[site.fire_teams]]
id = "street-1"
tier = 1

[[site.checkpoints]]
id = "cp-n01"
building = "gates"
doors = ["cp-n01-d1"]
access = ["AC-cp-n01"]
cameras = ["CAM-cp-n01"]
leads_to = ["b01", "b02"]
"""


def write_config(
    tmp: Path,
    mqtt_port: int,
    *,
    api: str = "v1",
    influx_url: str = "http://127.0.0.1:1",
    database: str = "none",
    client_id: str = "gw-test",
) -> tuple[Path, int]:
    """Write a small site config; returns (path, api_port)."""
    api_port = free_port()
    text = SMALL_SITE.format(
        mqtt_port=mqtt_port,
        client_id=client_id,
        api=api,
        influx_url=influx_url,
        database=database,
        spool=tmp / "spool.db",
        api_port=api_port,
    )
    path = tmp / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path, api_port


class GatewayProcess:
    """`python -m gateway run` in a child process, with its status read over the API."""

    def __init__(self, config: Path, api_port: int, log: Path, *overrides: str) -> None:
        self.config = config
        self.api_port = api_port
        self.log = log
        self.overrides = overrides
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "gateway", "run", "--config", str(self.config)]
        for item in self.overrides:
            args += ["--set", item]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
        wait_until(self._up, 20.0, what=f"gateway API on {self.api_port} (log {self.log})")

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"gateway exited {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            )
        try:
            return bool(self.status()["mqtt_connected"])
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.api_port}/api/v1/status", timeout=2
        ) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def wait_committed(self, n: int, timeout_s: float = 30.0) -> None:
        wait_until(
            lambda: self.status()["committed"] >= n, timeout_s, what=f"{n} messages committed"
        )


def influx_count(influxdb: Any, db: str, measurement: str) -> int:
    """Number of points in a measurement (rows of `SELECT *`: fields may differ per point)."""
    return len(influxdb.query(db, f'SELECT * FROM "{measurement}"'))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def publish_all(
    port: int,
    items: list[tuple[str, bytes]],
    *,
    client_id: str = "test-publisher",
    rate_per_s: float | None = None,
    timeout_s: float = 60.0,
) -> None:
    """Publish every (topic, payload) at QoS 1 and wait until the broker acknowledged all."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        start = time.monotonic()
        for i, (topic, payload) in enumerate(items):
            if rate_per_s:
                delay = start + i / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            infos.append(client.publish(topic, payload, qos=1))
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge every publish in time"
    finally:
        client.disconnect()
        client.loop_stop()


def telemetry(
    device: str, ts_ms: int, smoke: float = 0.1, building: str = "b01"
) -> tuple[str, bytes]:
    """A canonical smoke telemetry message."""
    payload = {"ts": ts_ms, "smoke": smoke, "temp": 24.5, "battery": 87, "rssi": -71}
    return (f"community/shazui/{building}/smoke/{device}/telemetry", json.dumps(payload).encode())
