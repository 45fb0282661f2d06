"""Fault-suite fixtures: the session report and a terminal summary of every fault's numbers."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import GatewayProcess, write_config
from tests.faults.report import FaultReport
from tests.servers import InfluxDBServer, MosquittoServer

_REPORTS: list[FaultReport] = []  # the session's report, for the terminal summary hook


@pytest.fixture(scope="session")
def fault_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultReport]:
    """Where each fault test records its numbers (JSON under the pytest tmp dir)."""
    report = FaultReport(tmp_path_factory.mktemp("faults") / "faults.json")
    _REPORTS.append(report)
    yield report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for report in _REPORTS:
        if not report.results:
            continue
        terminalreporter.section("fault suite: messages sent / stored / lost / duplicated")
        for line in report.summary():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(JSON: {report.path})")


@pytest.fixture
def start_gateway(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str
) -> Iterator[Callable[..., GatewayProcess]]:
    """`start_gateway(broker, *overrides)`: the real gateway writing to this test's database.

    Overrides are `--set SECTION.KEY=VALUE` items; the process is terminated at the end.
    """
    started: list[GatewayProcess] = []

    def make(broker: MosquittoServer, *overrides: str) -> GatewayProcess:
        cfg, api_port = write_config(
            tmp_path,
            broker.port,
            api="v1",
            influx_url=influxdb.url,
            database=influx_db,
            client_id=f"gw-fault-{os.getpid()}-{random.randrange(10**9)}",
        )
        gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log", *overrides)
        started.append(gw)  # before start(): a gateway that never became ready is still ours
        gw.start()
        return gw

    yield make
    for gw in started:
        if gw.proc is not None and gw.proc.poll() is None:
            gw.terminate()
