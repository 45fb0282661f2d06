"""The MQTT link: TLS and passwords, MQTT 3.1.1, last will, alerts published to people."""

from __future__ import annotations

import json
import queue
import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.certs import start_tls_broker
from tests.e2e.harness import GatewayProcess, now_ms, publish_all, telemetry, write_config
from tests.servers import HOST, MosquittoServer, wait_until

SITE = "community/shazui"


class Recorder:
    """A real MQTT client that records what it receives, as a screen or a duty phone would."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{random.randrange(10**9)}"
        )
        self._client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self._client.connect(HOST, port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()

    def wait_for(self, predicate: object, timeout_s: float = 15.0) -> tuple[str, bytes, bool]:
        assert callable(predicate)
        seen = []
        try:
            while True:
                item = self.messages.get(timeout=timeout_s)
                seen.append(item)
                if predicate(item):
                    return item
        except queue.Empty:
            raise AssertionError(f"not received within {timeout_s} s; got {seen}") from None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[GatewayProcess]:
    cfg, api_port = write_config(
        tmp_path, mosquitto.port, api="none", client_id=f"gw-link-{random.randrange(10**9)}"
    )
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    yield gw
    gw.terminate()


def test_gateway_status_is_retained_and_last_will_says_offline(
    gateway: GatewayProcess, mosquitto: MosquittoServer
) -> None:
    rec = Recorder(mosquitto.port, f"{SITE}/gateway/status")
    try:
        _, payload, retained = rec.wait_for(lambda m: m[1].startswith(b"{"))
        assert json.loads(payload)["state"] == "online" and retained
        gateway.kill9()
        rec.wait_for(lambda m: m[1] == b"offline")
    finally:
        rec.close()


def test_trouble_and_offline_alerts_are_published_for_people(
    gateway: GatewayProcess, mosquitto: MosquittoServer
) -> None:
    rec = Recorder(mosquitto.port, f"{SITE}/alerts/#")
    try:
        ts = now_ms()
        publish_all(
            mosquitto.port,
            [
                telemetry("SD-b01-1-1", ts),
                (f"{SITE}/b01/smoke/SD-b01-1-1/status", b"offline"),
                (
                    f"{SITE}/b01/smoke/SD-b01-1-2/telemetry",
                    json.dumps({"ts": ts, "smoke": 0.1, "battery": 9}).encode(),
                ),
            ],
        )
        _, raw, _ = rec.wait_for(lambda m: m[0].endswith("/alerts/device_offline"))
        offline = json.loads(raw)
        assert (offline["device"], offline["state"], offline["reason"]) == (
            "SD-b01-1-1",
            "raised",
            "status",
        )
        assert offline["zone"] == "b01-f1" and offline["floor"] == 1
        _, raw, _ = rec.wait_for(lambda m: m[0].endswith("/alerts/trouble"))
        trouble = json.loads(raw)
        assert (trouble["device"], trouble["trouble"], trouble["battery"]) == (
            "SD-b01-1-2",
            "low_battery",
            9,
        )
    finally:
        rec.close()


def test_unprovisioned_device_is_stored_and_its_alarm_reaches_the_lane(
    gateway: GatewayProcess, mosquitto: MosquittoServer
) -> None:
    alarm = json.dumps({"ts": now_ms(), "event": "alarm", "smoke": 4.1}).encode()
    publish_all(mosquitto.port, [(f"{SITE}/b77/smoke/SD-new/event", alarm)])
    gateway.wait_committed(1)
    status = gateway.status()
    assert [(a["building"], a["device"]) for a in status["alarms"]] == [("b77", "SD-new")]
    assert status["devices"]["online"] == 1


def test_mqtt_311_works_as_well_as_5(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-v311")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log", "mqtt.protocol='3.1.1'")
    gw.start()
    try:
        ts = now_ms()
        publish_all(mosquitto.port, [telemetry("SD-b01-1-1", ts + i) for i in range(100)])
        gw.wait_committed(100)
        assert gw.status()["spool"]["dead_letters"] == 0
    finally:
        assert gw.terminate() == 0


def test_tls_and_password_from_config(tmp_path: Path) -> None:
    broker, certs = start_tls_broker(tmp_path, {"gateway": "s3cret", "device": "dev"})
    try:
        (tmp_path / "mqtt.pass").write_text("s3cret\n")
        cfg, api_port = write_config(tmp_path, broker.port, api="none", client_id="gw-tls")
        gw = GatewayProcess(
            cfg,
            api_port,
            tmp_path / "gateway.log",
            "mqtt.username='gateway'",
            f"mqtt.password_file='{tmp_path / 'mqtt.pass'}'",
            f"mqtt.tls_ca='{certs / 'ca.crt'}'",
        )
        gw.start()  # waits until connected over TLS with the password
        try:
            device = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-device")
            device.username_pw_set("device", "dev")
            device.tls_set(ca_certs=str(certs / "ca.crt"))
            device.connect(HOST, broker.port)
            device.loop_start()
            topic, payload = telemetry("SD-b01-1-1", now_ms())
            device.publish(topic, payload, qos=1).wait_for_publish(10)
            device.disconnect()
            device.loop_stop()
            wait_until(lambda: gw.status()["committed"] == 1, 15, what="message over TLS")
        finally:
            assert gw.terminate() == 0
    finally:
        broker.stop()


def test_a_replayed_backlog_stays_within_the_inbox_bound_and_is_not_taken_for_a_flood(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-backlog")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log", "mqtt.receive_maximum=100")
    gw.start()
    assert gw.terminate() == 0  # the broker now keeps the gateway's session
    # An hour of 4 detectors (one reading each 4 s) queued while the gateway was down: the
    # broker replays it at line speed, 1,000 messages per device in well under a second.
    t0 = now_ms() - 3_600_000
    items = [telemetry(f"SD-b01-1-{i % 4 + 1}", t0 + 1000 * i) for i in range(4000)]
    publish_all(mosquitto.port, items)
    gw.start()
    try:
        gw.wait_committed(len(items))
        status = gw.status()
        metrics = urllib.request.urlopen(f"http://{HOST}:{api_port}/metrics", timeout=5).read()
    finally:
        assert gw.terminate() == 0
    # The inbox holds at most receive_maximum, plus what one 64 KiB socket read carries.
    per_read = 65536 // min(len(t) + len(p) + 5 for t, p in items) + 1
    assert 100 <= status["queued_peak"] <= 100 + per_read, status["queued_peak"]
    limited = [
        line for line in metrics.decode().splitlines()
        if line.startswith("gateway_rate_limited_messages_total")
    ]  # fmt: skip
    assert limited and all(float(line.split()[-1]) == 0 for line in limited), limited
    assert status["spool"]["dead_letters"] == 0
