"""Fault 2: InfluxDB down for 10 minutes of (event-time) traffic, then back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.e2e.harness import GatewayProcess, now_ms, publish_all
from tests.faults.load import smoke_telemetry, stored
from tests.faults.report import FaultReport, FaultResult
from tests.servers import InfluxDBServer, MosquittoServer, wait_until

N = 6000  # 10 minutes of event time at one message per 100 ms
STEP_MS = 100
BATCH_LINES = 500  # small database writes, so the order of writing can be watched


def test_influxdb_outage_backlog_drains_oldest_first_and_complete(
    mosquitto: MosquittoServer,
    start_gateway: Callable[..., GatewayProcess],
    influxdb: InfluxDBServer,
    influx_db: str,
    fault_report: FaultReport,
) -> None:
    t0 = time.monotonic()
    gw = start_gateway(mosquitto, f"influx.batch_lines={BATCH_LINES}")
    base = now_ms() - 7_200_000
    items = [smoke_telemetry("SD-b01-2-1", base + i * STEP_MS, i) for i in range(N)]
    influxdb.stop()
    try:
        publish_all(mosquitto.port, items, client_id="fault-outage-dev")
        gw.wait_committed(N)
        assert gw.status()["spool"]["rows"] >= N
    finally:
        influxdb.start()
    # Watch the database while the backlog drains: oldest first means that what is visible
    # is always a prefix 0..k of the sequence, never a later message before an earlier one.
    snapshots: list[tuple[int, int | None]] = []
    drain_rates: list[float] = []
    stop = threading.Event()

    def watch_rate() -> None:
        while not stop.is_set():
            fwd = gw.status()["forwarder"]
            drain_rates.append(float(fwd["drain_lines_per_s"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_rate, daemon=True)
    watcher.start()
    drain_t0 = time.monotonic()
    try:
        while True:
            # One result set per snapshot: two aggregates in one InfluxQL query may see
            # different moments of an ongoing write.
            seqs = {int(r["seq"]) for r in influxdb.query(influx_db, 'SELECT "seq" FROM "smoke"')}
            snapshots.append((len(seqs), max(seqs) if seqs else None))
            if len(seqs) >= N or time.monotonic() - drain_t0 > 60:
                break
    finally:
        drain_s = time.monotonic() - drain_t0
        stop.set()
        watcher.join(5)
    wait_until(lambda: gw.status()["spool"]["rows"] == 0, 20, what="spool drained")
    s = stored(influxdb, influx_db)
    out_of_order = [(n, hi) for n, hi in snapshots if n and hi != n - 1]
    partial = sorted({n for n, _ in snapshots if 0 < n < N})
    fault_report.record(
        FaultResult(
            "influxdb_outage_10min",
            N,
            s.points,
            s.lost(N),
            s.duplicated,
            time.monotonic() - t0,
            {
                "event_time_s": N * STEP_MS / 1000,
                "drain_s": round(drain_s, 2),
                "drain_lines_per_s_max": round(max(drain_rates, default=0.0)),
                "partial_snapshots": len(partial),
            },
        )
    )
    assert (s.lost(N), s.duplicated) == (0, 0)
    assert not out_of_order, (
        f"a later message became visible before an earlier one: {out_of_order[:5]}"
    )
    assert max(drain_rates, default=0.0) > 0, "forwarder.drain_lines_per_s never reported"
