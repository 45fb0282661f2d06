"""Fault 4: the spool's disk fills up (a real small tmpfs), then space comes back."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import GatewayProcess, now_ms, publish_all
from tests.faults.load import get_json, smoke_telemetry, wait_settled
from tests.faults.report import FaultReport, FaultResult
from tests.servers import InfluxDBServer, MosquittoServer, wait_until

N = 12_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root); skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_spool_refuses_says_so_on_readyz_and_recovers_without_loss(
    small_disk: Path,
    mosquitto: MosquittoServer,
    start_gateway: Callable[..., GatewayProcess],
    influxdb: InfluxDBServer,
    influx_db: str,
    fault_report: FaultReport,
) -> None:
    t0 = time.monotonic()
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (3 * 1024 * 1024))  # leaves ~1 MiB for the spool
    gw = start_gateway(mosquitto, f"spool.path={small_disk / 'spool.db'}")
    influxdb.stop()
    try:
        base = now_ms() - 1_800_000
        items = [smoke_telemetry("SD-b01-2-1", base + i, i) for i in range(N)]
        publish_all(mosquitto.port, items, client_id="fault-disk-dev")

        def refused() -> bool:
            code, body = get_json(gw.api_port, "/readyz")
            return code == 503 and body["checks"]["spool_writable"] is False

        wait_until(refused, 30, what="/readyz reporting spool_writable false")
        _, ready = get_json(gw.api_port, "/readyz")
        assert gw.proc is not None and gw.proc.poll() is None, "the gateway died on a full disk"
        committed_when_full = gw.status()["committed"]
        assert committed_when_full < N
        os.unlink(ballast)  # the operator frees space
    finally:
        influxdb.start()
    wait_until(lambda: get_json(gw.api_port, "/readyz")[0] == 200, 30, what="ready again")
    s = wait_settled(influxdb, influx_db, N, timeout_s=60, quiet_s=15)
    fault_report.record(
        FaultResult(
            "spool_disk_full_tmpfs",
            N,
            s.points,
            s.lost(N),
            s.duplicated,
            time.monotonic() - t0,
            {
                "committed_when_full": committed_when_full,
                "spool_error": str(ready.get("spool_error"))[:60],
            },
        )
    )
    if s.lost(N):
        pytest.fail(
            f"lost {s.lost(N)} after the disk came back; status {gw.status()}; log:\n"
            + "\n".join(gw.log.read_text().splitlines()[-15:])
        )
    assert ready["spool_error"] and "full" in ready["spool_error"]
    assert (s.lost(N), s.duplicated) == (0, 0)
