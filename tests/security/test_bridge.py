"""The upstream bridge (deploy/mosquitto/bridge.conf) between two real Mosquitto brokers.

The local broker runs the rendered bridge; the central one requires the site's account.
A subscriber on the central broker keeps a persistent session so that it misses nothing
across the central broker's restart.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.bridge import render_bridge
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.provision import hash_password
from tests.e2e.harness import write_config
from tests.security.mqtt import MqttUser
from tests.servers import HOST, MosquittoServer, free_port

BASE = "community/shazui"
ARRIVE_S = 20.0  # bridge reconnect (restart_timeout 1..2 s) plus delivery, generously


class CentralSubscriber:
    """A persistent-session subscriber on the central broker that reconnects by itself."""

    def __init__(self, port: int) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="district-console", protocol=paho.MQTTv5
        )
        self.client.username_pw_set("district", "district-pw")
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_connect = self._on_connect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(HOST, port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: object) -> None:
        client.subscribe(f"{BASE}/#", qos=1)

    def wait_for(self, topic_prefix: str, n: int, timeout_s: float) -> list[tuple[str, bytes]]:
        """The first `n` messages whose topic starts with `topic_prefix`, within a deadline."""
        got: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{len(got)}/{n} messages under {topic_prefix} in {timeout_s} s"
                )
            try:
                topic, payload = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic.startswith(topic_prefix):
                got.append((topic, payload))
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[MosquittoServer, MosquittoServer]]:
    """(local with the bridge, central requiring the site's account)."""
    (tmp_path / "central").mkdir()
    central = MosquittoServer(tmp_path / "central")
    passwd = tmp_path / "central" / "passwd"
    passwd.write_text(
        f"site-shazui:{hash_password('bridge-pw')}\ndistrict:{hash_password('district-pw')}\n"
    )
    conf = central.config_path.read_text().replace("allow_anonymous true", "allow_anonymous false")
    central.config_path.write_text(conf + f"password_file {passwd}\n")
    central.start()
    cfg_path, _ = write_config(tmp_path, free_port())
    bridge = render_bridge(
        load_config(cfg_path), f"{HOST}:{central.port}", "site-shazui", "bridge-pw", 1, 2
    )
    (tmp_path / "local").mkdir()
    local = MosquittoServer(tmp_path / "local")
    local.config_path.write_text(local.config_path.read_text() + bridge)
    local.start()
    try:
        yield local, central
    finally:
        local.stop()
        central.stop()


def alert(i: int) -> bytes:
    return json.dumps({"id": f"inc-{i}", "state": "confirmed", "building": "b01"}).encode()


def publish_local(local: MosquittoServer, items: list[tuple[str, bytes]]) -> None:
    gw = MqttUser(local.port, None, client_id="gateway-stand-in")
    try:
        for topic, payload in items:
            assert gw.publish(topic, payload) < 0x80  # 0x10: accepted, no subscriber yet
    finally:
        gw.close()


def test_fire_alert_reaches_central_and_outage_backlog_arrives_after(
    brokers: tuple[MosquittoServer, MosquittoServer],
) -> None:
    local, central = brokers
    sub = CentralSubscriber(central.port)
    try:
        # The bridge announces itself (retained) once connected.
        assert sub.wait_for(f"{BASE}/gateway/bridge", 1, ARRIVE_S)[-1][1] == b"1"
        publish_local(local, [(f"{BASE}/alerts/fire", alert(0))])
        assert sub.wait_for(f"{BASE}/alerts/", 1, ARRIVE_S) == [(f"{BASE}/alerts/fire", alert(0))]
        # Telemetry and commands stay on site.
        publish_local(local, [(f"{BASE}/b01/smoke/SD-b01-1-1/telemetry", b"{}")])

        central.stop()
        during = [(f"{BASE}/alerts/fire", alert(i)) for i in range(1, 21)]
        during.append((f"{BASE}/state/occupancy/cp-n01", b'{"occupancy": 12}'))
        publish_local(local, during)
        time.sleep(0.5)  # the bridge's first reconnect attempt fails while central is down
        central.start()

        got = sub.wait_for(f"{BASE}/alerts/", 20, ARRIVE_S)
        assert got == during[:20], "alerts lost, duplicated or reordered across the outage"
        assert sub.wait_for(f"{BASE}/state/", 1, ARRIVE_S) == during[20:]
        leftovers = []
        while not sub.messages.empty():
            leftovers.append(sub.messages.get_nowait()[0])
        assert not [t for t in leftovers if "/b01/" in t], f"telemetry was bridged: {leftovers}"
    finally:
        sub.close()


def test_render_rejects_what_mosquitto_would_misread(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, 1883)[0])
    with pytest.raises(ConfigError, match="host:port"):
        render_bridge(cfg, "central.example", "u", "p")
    with pytest.raises(ConfigError, match="password"):
        render_bridge(cfg, "central.example:8883", "u", "two words")
    text = render_bridge(cfg, "a:1883, b:1883", "u", "p")
    assert "address a:1883 b:1883" in text and f"topic {BASE}/alerts/# out 1" in text
    assert "${" not in text
