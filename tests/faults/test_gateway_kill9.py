"""Fault 3: the gateway is SIGKILLed at random moments, ≥ 20 times, under continuous load."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from tests.e2e.harness import GatewayProcess, now_ms
from tests.faults.load import Publisher, smoke_telemetry, stored, wait_settled
from tests.faults.report import FaultReport, FaultResult
from tests.servers import InfluxDBServer, MosquittoServer

KILLS = 20
DEVICES = ["SD-b01-1-1", "SD-b01-1-2", "SD-b01-2-1"]


def test_repeated_gateway_kill9_loses_and_duplicates_nothing(
    mosquitto: MosquittoServer,
    start_gateway: Callable[..., GatewayProcess],
    influxdb: InfluxDBServer,
    influx_db: str,
    fault_report: FaultReport,
) -> None:
    t0 = time.monotonic()
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    gw = start_gateway(mosquitto)
    base = now_ms() - 5_400_000
    pub = Publisher(mosquitto.port, f"fault-kill9-dev-{seed}")

    def make(i: int) -> tuple[str, bytes]:
        return smoke_telemetry(DEVICES[i % 3], base + i, i)

    try:
        pub.stream(make, rate_per_s=600.0)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.0, 0.8))  # a random moment of the gateway's life
            gw.kill9()
            gw.start()
        time.sleep(0.5)
        pub.stop_stream()
        assert pub.wait_acked(30) == 0
        sent = pub.sent
        wait_settled(influxdb, influx_db, sent)
    finally:
        pub.close()
    s = stored(influxdb, influx_db)
    per_device = {d: stored(influxdb, influx_db, f"\"device\" = '{d}'").points for d in DEVICES}
    expected = {d: len(range(k, sent, 3)) for k, d in enumerate(DEVICES)}
    fault_report.record(
        FaultResult(
            "gateway_kill9_x20",
            sent,
            s.points,
            s.lost(sent),
            s.duplicated,
            time.monotonic() - t0,
            {"kills": KILLS, "seed": seed},
        )
    )
    assert (s.lost(sent), s.duplicated) == (0, 0)
    assert per_device == expected
    assert gw.terminate() == 0
