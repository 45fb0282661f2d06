"""Load for the fault tests: a device-like publisher and InfluxDB accounting by sequence number."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.harness import GatewayProcess
from tests.servers import InfluxDBServer

SITE = "community/shazui"


def smoke_telemetry(device: str, ts_ms: int, seq: int, building: str = "b01") -> tuple[str, bytes]:
    """Canonical smoke telemetry carrying `seq` (an extra numeric field) to count by."""
    body = {"ts": ts_ms, "smoke": 0.1, "temp": 24.5, "battery": 87, "rssi": -71, "seq": seq}
    return f"{SITE}/{building}/smoke/{device}/telemetry", json.dumps(body).encode()


class Publisher:
    """A device-side client with a persistent session (clean session off, fixed client id).

    paho keeps every QoS 1 message until the broker's PUBACK and re-sends the unacknowledged
    ones after it reconnects, as a device's MQTT stack does.
    """

    def __init__(self, port: int, client_id: str) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.acked_at: dict[int, float] = {}  # mid -> monotonic time of the broker's PUBACK
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.infos: list[paho.MQTTMessageInfo] = []
        self.times: list[float] = []  # monotonic time of each publish call
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, topic: str, payload: bytes) -> None:
        self.times.append(time.monotonic())
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked_at[mid] = time.monotonic()

    def ack_time(self, i: int) -> float | None:
        """When the broker acknowledged message i (None: never). Mids are unique below 65,535
        messages; a message re-sent after a reconnect keeps its mid."""
        return self.acked_at.get(self.infos[i].mid)

    def stream(self, make: Callable[[int], tuple[str, bytes]], rate_per_s: float) -> None:
        """Publish make(0), make(1), ... at `rate_per_s` in a thread until `stop_stream`."""

        def loop() -> None:
            start = time.monotonic()
            i = 0
            while not self._stop.is_set():
                delay = start + i / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.publish(*make(i))
                i += 1

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop_stream(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def sent(self) -> int:
        return len(self.infos)

    def wait_acked(self, timeout_s: float) -> int:
        """Wait for the broker's PUBACK of everything published; returns how many are missing.

        A message published while the broker was down has `rc = NO_CONN` but stays in paho's
        queue and goes out on reconnect; `_published` is set when its PUBACK arrives, which
        is what counts here (`is_published()` raises for such messages).
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            missing = sum(not i._published for i in self.infos)
            if not missing:
                return 0
            time.sleep(0.05)
        return sum(not i._published for i in self.infos)

    def close(self) -> None:
        self.stop_stream()
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Stored:
    """InfluxDB's view of one series of numbered messages."""

    points: int
    distinct: int
    min_seq: int | None
    max_seq: int | None

    def lost(self, sent: int) -> int:
        return sent - self.distinct

    @property
    def duplicated(self) -> int:
        return self.points - self.distinct


def stored(
    influxdb: InfluxDBServer, db: str, where: str = "", measurement: str = "smoke"
) -> Stored:
    """Count points and distinct `seq` values (a replayed message stored twice shows as both)."""
    cond = f" WHERE {where}" if where else ""
    rows = influxdb.query(
        db,
        f'SELECT count("seq") AS n, count(distinct("seq")) AS d, min("seq") AS lo,'
        f' max("seq") AS hi FROM "{measurement}"{cond}',
    )
    if not rows or rows[0].get("n") is None:  # no point yet (InfluxDB may answer nulls)
        return Stored(0, 0, None, None)
    r: dict[str, Any] = rows[0]
    return Stored(int(r["n"]), int(r["d"]), int(r["lo"]), int(r["hi"]))


def get_json(port: int, path: str) -> tuple[int, Any]:
    """GET the gateway API; returns (status, JSON body) for 2xx and 5xx alike."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def get_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return str(r.read().decode())


def log_tail(gw: GatewayProcess, lines: int = 30) -> str:
    return "\n".join(gw.log.read_text(errors="replace").splitlines()[-lines:])


def wait_settled(
    influxdb: InfluxDBServer, db: str, sent: int, timeout_s: float = 60.0, quiet_s: float = 5.0
) -> Stored:
    """Wait until every message is in InfluxDB, or nothing new arrived for `quiet_s`.

    Returns the last count, so a test can report how many were lost before asserting.
    """
    deadline = time.monotonic() + timeout_s
    last = stored(influxdb, db)
    changed = time.monotonic()
    while last.distinct < sent and time.monotonic() < deadline:
        time.sleep(0.1)
        now = stored(influxdb, db)
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed > quiet_s:
            break
    return last


def stored_seqs(influxdb: InfluxDBServer, db: str, measurement: str = "smoke") -> list[int]:
    """Every stored `seq` value (one per point)."""
    return [int(r["seq"]) for r in influxdb.query(db, f'SELECT "seq" FROM "{measurement}"')]
