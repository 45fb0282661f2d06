"""The test servers themselves: they start, serve, stop by PID and restart with their data."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from tests.servers import (
    InfluxDBServer,
    MosquittoServer,
    VictoriaMetricsServer,
    free_port,
    port_open,
    wait_until,
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its /proc status says Z.
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:\tZ") for line in f)
    except FileNotFoundError:
        return False


def _mqtt_connack(port: int) -> bytes:
    """A raw MQTT 3.1.1 CONNECT, so this test does not depend on any client library."""
    connect = bytes.fromhex("101000044d5154540402003c0004") + b"test"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(connect)
        return s.recv(4)


def test_wait_until_raises_after_deadline() -> None:
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: False, timeout_s=0.05, what="never")


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_mosquitto_restarts_on_same_port(mosquitto: MosquittoServer) -> None:
    assert _mqtt_connack(mosquitto.port) == b"\x20\x02\x00\x00"
    old_pid, port = mosquitto.pid, mosquitto.port
    mosquitto.stop()
    assert not _pid_alive(old_pid)
    assert not port_open(port)
    mosquitto.start()
    assert mosquitto.port == port and mosquitto.pid != old_pid
    assert _mqtt_connack(port) == b"\x20\x02\x00\x00"


def test_mosquitto_factory_gives_independent_brokers(
    mosquitto: MosquittoServer, mosquitto_factory: Callable[[], MosquittoServer]
) -> None:
    extra = mosquitto_factory()
    assert extra.port != mosquitto.port
    assert _mqtt_connack(extra.port) == b"\x20\x02\x00\x00"


def test_influxdb_keeps_data_across_restart(influxdb: InfluxDBServer, influx_db: str) -> None:
    status, body = influxdb.http(
        "POST", "/write", [("db", influx_db), ("precision", "ms")], b"m,t=a x=1i 1700000000000"
    )
    assert status == 204, body
    influxdb.stop()
    assert not port_open(influxdb.port)
    influxdb.start()
    rows = influxdb.query(influx_db, "SELECT * FROM m")
    assert rows == [{"time": 1700000000000, "t": "a", "x": 1, "_measurement": "m"}]


def test_influxdb_query_error_is_reported(influxdb: InfluxDBServer, influx_db: str) -> None:
    with pytest.raises(AssertionError, match="failed"):
        influxdb.query(influx_db, "SELEC nonsense")


def test_victoria_metrics_export_reads_back_writes(
    victoria_metrics: VictoriaMetricsServer, vm_prefix: str
) -> None:
    line = f"{vm_prefix}m,t=a x=2.5 1700000000000".encode()
    status, body = victoria_metrics.http("POST", "/write", [("precision", "ms")], line)
    assert status == 204, body
    series = victoria_metrics.export(f'{{__name__="{vm_prefix}m_x"}}')
    assert series == [
        {
            "metric": {"__name__": f"{vm_prefix}m_x", "t": "a"},
            "values": [2.5],
            "timestamps": [1700000000000],
        }
    ]
