"""Shared fixtures: real servers on free 127.0.0.1 ports, stopped by PID at the end.

Session servers are shared by every test; a test that stops one (outage tests) must
`start()` it again, and the per-test fixtures below restart it if a test forgot.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from tests.servers import (
    InfluxDBServer,
    MosquittoServer,
    VictoriaMetricsServer,
    start_influxdb,
    start_mosquitto,
    start_victoria_metrics,
)

_names = itertools.count(1)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One Mosquitto for the session (`.host`, `.port`, `.pid`, `.stop()`, `.start()`)."""
    server = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mosquitto_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], MosquittoServer]]:
    """Start extra independent brokers for one test: `broker = mosquitto_factory()`."""
    started: list[MosquittoServer] = []

    def make() -> MosquittoServer:
        server = start_mosquitto(tmp_path_factory.mktemp("mosquitto-extra"))
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDBServer]:
    """One InfluxDB 1.x for the session (`.url`, `.query()`, `.stop()`, `.start()`, ...)."""
    server = start_influxdb(tmp_path_factory.mktemp("influxdb"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxdb: InfluxDBServer) -> Iterator[str]:
    """A fresh, empty database on the session InfluxDB; dropped after the test."""
    if not influxdb.running:
        influxdb.start()
    name = f"t{os.getpid()}_{next(_names)}"
    influxdb.create_database(name)
    try:
        yield name
    finally:
        if influxdb.running:
            influxdb.drop_database(name)


@pytest.fixture(scope="session")
def victoria_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VictoriaMetricsServer]:
    """One VictoriaMetrics for the session (`.url`, `.export()`, `.flush()`, ...)."""
    server = start_victoria_metrics(tmp_path_factory.mktemp("victoria-metrics"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vm_prefix(victoria_metrics: VictoriaMetricsServer) -> str:
    """A measurement prefix no other test uses, so a test sees only its own series."""
    if not victoria_metrics.running:
        victoria_metrics.start()
    return f"t{os.getpid()}_{next(_names)}_"
