"""The publisher against a real Mosquitto, checked by a plain paho subscriber."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GatewayConfig, parse_config
from gateway.sim import PublishError, SimMessage, TrafficModel, publish, simulate
from gateway.sim.wire import PublishConnection
from gateway.sitegen import generate_site_toml
from tests.certs import start_tls_broker
from tests.servers import HOST, MosquittoServer, free_port, wait_until

T0 = 1_795_475_306_083
_sites = itertools.count(1)


def site_config(port: int, *overrides: str) -> GatewayConfig:
    """A small generated site with a site id no other test uses on the shared broker."""
    text = generate_site_toml(
        "urban-village",
        site_id=f"pub{next(_sites)}",
        buildings=4,
        entrances=2,
        profiles_dir=Path("/nonexistent"),
    )
    return parse_config(text, overrides=[f"mqtt.port={port}", *overrides])


@contextmanager
def subscriber(port: int, topic_filter: str) -> Iterator[list[tuple[str, bytes]]]:
    """Collect (topic, payload) of everything published under `topic_filter`, QoS 1."""
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append((msg.topic, msg.payload))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe(topic_filter, qos=1)
    client.connect(HOST, port)
    client.loop_start()
    try:
        assert subscribed.wait(10), "no SUBACK from the broker"
        yield got
    finally:
        client.disconnect()
        client.loop_stop()


def test_every_message_is_acked_and_received_in_order(mosquitto: MosquittoServer) -> None:
    cfg = site_config(mosquitto.port)
    msgs = list(TrafficModel(cfg).messages(3000, T0, 1000.0))
    with subscriber(mosquitto.port, f"community/{cfg.gateway.site}/#") as got:
        report = publish(HOST, mosquitto.port, msgs, None, qos=1)
        wait_until(lambda: len(got) >= len(msgs), 15, what="all messages at the subscriber")
    assert (report.sent, report.acked, report.rejected) == (3000, 3000, 0)
    assert got == [(m.topic, m.payload) for m in msgs]
    assert report.sent_ns.shape == (3000,) and report.sent_ns.dtype == np.int64
    assert np.all(np.diff(report.sent_ns) >= 0)
    assert abs(report.sent_ns[0] - time.time_ns()) < 60 * 10**9  # wall clock, not monotonic
    assert report.elapsed_s > 0 and report.rate_per_s > 0


def test_publishing_is_paced_to_the_rate(mosquitto: MosquittoServer) -> None:
    cfg = site_config(mosquitto.port)
    msgs = list(TrafficModel(cfg).messages(200, T0, 400.0))
    report = publish(HOST, mosquitto.port, msgs, 400.0, qos=1)
    span_s = (report.sent_ns[-1] - report.sent_ns[0]) / 1e9
    assert report.acked == 200
    assert 0.45 <= span_s <= 2.0  # 199 intervals of 2.5 ms
    assert report.elapsed_s >= 0.45


def test_mqtt_311_brokers_are_supported(mosquitto: MosquittoServer) -> None:
    cfg = site_config(mosquitto.port, "mqtt.protocol='3.1.1'")
    msgs = list(TrafficModel(cfg).messages(300, T0, 1000.0))
    with subscriber(mosquitto.port, f"community/{cfg.gateway.site}/#") as got:
        report = publish(HOST, mosquitto.port, msgs, None, protocol="3.1.1")
        wait_until(lambda: len(got) >= 300, 15, what="MQTT 3.1.1 messages at the subscriber")
    assert report.acked == 300
    assert got == [(m.topic, m.payload) for m in msgs]
    assert simulate(cfg, rate_per_s=400.0, duration_s=0.25, progress=False).acked == 100


def test_qos0_counts_written_messages(mosquitto: MosquittoServer) -> None:
    cfg = site_config(mosquitto.port)
    msgs = list(TrafficModel(cfg).messages(500, T0, 1000.0))
    with subscriber(mosquitto.port, f"community/{cfg.gateway.site}/#") as got:
        report = publish(HOST, mosquitto.port, iter(msgs), None, qos=0)
        wait_until(lambda: len(got) >= 500, 15, what="QoS 0 messages at the subscriber")
    assert report.sent == report.acked == 500


def test_simulate_plays_the_site_to_the_configured_broker(
    mosquitto: MosquittoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = site_config(mosquitto.port, 'mqtt.host="127.0.0.1"')
    with subscriber(mosquitto.port, f"community/{cfg.gateway.site}/#") as got:
        report = simulate(cfg, rate_per_s=500.0, duration_s=0.5, seed=3, progress=True)
        wait_until(lambda: len(got) >= 250, 15, what="simulated traffic at the subscriber")
    assert report.sent == report.acked == 250
    expected = list(TrafficModel(cfg, seed=3).messages(250, 0, 500.0))
    assert [t for t, _ in got] == [m.topic for m in expected]
    # Same stream as the model's, apart from wall-clock timestamps (and status heartbeats,
    # which carry the shipped profiles' config hashes).
    tails = [p.split(b",", 1)[1] for t, p in got if not t.endswith("/status")]
    assert tails == [m.payload.split(b",", 1)[1] for m in expected if m.channel != "status"]
    assert "acked 250" in capsys.readouterr().err


def test_unreachable_broker_is_a_publish_error() -> None:
    port = free_port()
    with pytest.raises(PublishError, match=f"cannot connect to MQTT broker 127.0.0.1:{port}"):
        publish(HOST, port, [], None)


def test_bad_rate_or_duration_is_a_publish_error() -> None:
    with pytest.raises(PublishError, match="must be > 0"):
        publish(HOST, 1, [], 0.0)
    cfg = site_config(1)
    with pytest.raises(PublishError, match="both must be > 0"):
        simulate(cfg, rate_per_s=100.0, duration_s=0.0, progress=False)


def test_tls_and_password_and_a_wrong_password_is_refused(tmp_path: Path) -> None:
    broker, certs = start_tls_broker(tmp_path, {"sim": "pw", "watcher": "w"})
    try:
        cfg = site_config(broker.port)
        msgs = list(TrafficModel(cfg).messages(2000, T0, 1000.0))
        got: list[str] = []
        watcher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        watcher.username_pw_set("watcher", "w")
        watcher.tls_set(ca_certs=str(certs / "ca.crt"))
        watcher.on_message = lambda _c, _u, msg: got.append(msg.topic)
        watcher.connect(HOST, broker.port)
        watcher.subscribe(f"community/{cfg.gateway.site}/#", qos=1)
        watcher.loop_start()
        try:
            time.sleep(0.5)
            for protocol in ("5", "3.1.1"):
                report = publish(
                    HOST, broker.port, msgs[:1000] if protocol == "5" else msgs[1000:], None,
                    protocol=protocol, username="sim", password="pw", tls_ca=certs / "ca.crt",
                )  # fmt: skip
                assert (report.acked, report.rejected) == (1000, 0)
            wait_until(lambda: len(got) >= 2000, 15, what="messages over TLS at the watcher")
            assert got == [m.topic for m in msgs]
        finally:
            watcher.disconnect()
            watcher.loop_stop()
        with pytest.raises(PublishError, match="refused the connection: not authorized"):
            publish(HOST, broker.port, msgs, None, username="sim", password="nope",
                    tls_ca=certs / "ca.crt")  # fmt: skip
        with pytest.raises(PublishError, match=f"MQTT broker {HOST}:{broker.port}"):
            publish(HOST, broker.port, msgs, None, username="sim", password="pw")  # no TLS
    finally:
        broker.stop()


def test_the_brokers_receive_maximum_bounds_the_window(tmp_path: Path) -> None:
    # Mosquitto sends max_inflight_messages to MQTT 5 clients as Receive Maximum.
    server = MosquittoServer(tmp_path)
    text = server.config_path.read_text().replace(
        "max_inflight_messages 0", "max_inflight_messages 7"
    )
    server.config_path.write_text(text)
    server.start()
    try:
        conn = PublishConnection(HOST, server.port, "rm-probe")
        assert conn.receive_maximum == 7
        conn.close()
        cfg = site_config(server.port)
        msgs = list(TrafficModel(cfg).messages(500, T0, 1000.0))
        assert publish(HOST, server.port, msgs, None, max_pending=1000).acked == 500
    finally:
        server.stop()


def test_a_puback_with_a_failure_reason_counts_as_rejected() -> None:
    # Mosquitto 2.0 drops the connection right after a 0x87 PUBACK (an ACL denial), so a
    # scripted peer plays the broker: CONNACK, then PUBACKs success, "no subscribers"
    # (0x10) and "not authorized" (0x87).
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]

    def broker() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)  # CONNECT
            conn.sendall(b"\x20\x03\x00\x00\x00")  # CONNACK, success, no properties
            got = b""
            while got.count(b"\x32") < 3:  # three QoS 1 PUBLISH headers ("2" is in no topic)
                got += conn.recv(1024)
            conn.sendall(b"\x40\x02\x00\x01" + b"\x40\x03\x00\x02\x10" + b"\x40\x03\x00\x03\x87")
            conn.recv(1024)  # DISCONNECT

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    try:
        msgs = [
            SimMessage(
                f"c/s/b/smoke/d{i}/telemetry", b"{}", "smoke", "telemetry", "b", f"d{i}", i, False
            )
            for i in range(3)
        ]
        report = publish(HOST, port, msgs, None)
        assert (report.sent, report.acked, report.rejected) == (3, 2, 1)
    finally:
        thread.join(5)
        listener.close()
