"""Faults 5 and 6: device clocks far off, and a device that floods."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.e2e.harness import GatewayProcess, now_ms, publish_all
from tests.faults.load import get_json, get_text, smoke_telemetry, stored, wait_settled
from tests.faults.report import FaultReport, FaultResult
from tests.servers import InfluxDBServer, MosquittoServer, wait_until

DAY_MS = 86_400_000


def test_device_clock_jumps_are_stored_at_gateway_time_with_the_device_value(
    mosquitto: MosquittoServer,
    start_gateway: Callable[..., GatewayProcess],
    influxdb: InfluxDBServer,
    influx_db: str,
    fault_report: FaultReport,
) -> None:
    t0 = time.monotonic()
    gw = start_gateway(mosquitto)
    before = now_ms()
    sent_ts = [before + 10 * 365 * DAY_MS, 315_532_800_000, before + 2 * DAY_MS, before - 1000]
    items = [smoke_telemetry("SD-b01-1-2", ts, i) for i, ts in enumerate(sent_ts)]
    # 20/s: each message gets its own receive millisecond (see docs/faults.md findings)
    publish_all(mosquitto.port, items, client_id="fault-clock-dev", rate_per_s=20.0)
    gw.wait_committed(len(items))
    s = wait_settled(influxdb, influx_db, len(items))
    after = now_ms()
    rows = {int(r["seq"]): r for r in influxdb.query(influx_db, 'SELECT * FROM "smoke"')}
    status = gw.status()
    fault_report.record(
        FaultResult(
            "device_clock_jump",
            len(items),
            s.points,
            s.lost(len(items)),
            s.duplicated,
            time.monotonic() - t0,
            {"flagged": sum(r.get("ts_source") == "gateway" for r in rows.values())},
        )
    )
    assert (s.lost(len(items)), s.duplicated) == (0, 0)
    for seq in (0, 1, 2):  # 10 years ahead, 1980, 2 days ahead: implausible clocks
        row = rows[seq]
        assert before <= row["time"] <= after, (seq, row)
        assert row["ts_source"] == "gateway" and int(row["device_ts_ms"]) == sent_ts[seq]
    assert rows[3]["time"] == sent_ts[3] and rows[3].get("device_ts_ms") is None
    assert status["committed"] == len(items) and status["mqtt_connected"]
    assert all(v >= 0 for v in status["devices"].values() if isinstance(v, int))


def test_flooding_device_is_limited_others_and_its_alarm_pass(
    mosquitto: MosquittoServer,
    start_gateway: Callable[..., GatewayProcess],
    influxdb: InfluxDBServer,
    influx_db: str,
    fault_report: FaultReport,
) -> None:
    t0 = time.monotonic()
    gw = start_gateway(mosquitto, "ingest.device_rate_per_s=50", "ingest.device_burst=100")
    base = now_ms() - 600_000
    flood = [smoke_telemetry("SD-b01-1-1", base + i, i) for i in range(4000)]
    calm = [
        smoke_telemetry(d, base + 100_000 + i, 10_000 + k * 1000 + i, b)
        for k, (d, b) in enumerate([("SD-b01-2-1", "b01"), ("SD-b02-1-1", "b02")])
        for i in range(100)
    ]
    mixed = [x for pair in zip(flood[:200], calm, strict=False) for x in pair]
    mixed += flood[200:]
    publish_all(mosquitto.port, mixed, client_id="fault-flood-dev")
    alarm = json.dumps({"ts": now_ms(), "event": "alarm", "smoke": 3.2}).encode()
    publish_all(
        mosquitto.port,
        [("community/shazui/b01/smoke/SD-b01-1-1/event", alarm)],
        client_id="fault-flood-dev",
    )
    gw.wait_committed(len(mixed) + 1)
    wait_settled(influxdb, influx_db, len(calm), quiet_s=3.0)
    limited = sum(
        float(line.split()[-1])
        for line in get_text(gw.api_port, "/metrics").splitlines()
        if line.startswith("gateway_rate_limited_messages_total")
    )
    calm_stored = stored(influxdb, influx_db, "\"device\" != 'SD-b01-1-1'")
    flood_stored = stored(influxdb, influx_db, "\"device\" = 'SD-b01-1-1'")
    status = gw.status()
    _, incidents = get_json(gw.api_port, "/api/v1/incidents")
    wait_until(lambda: gw.status()["alarms_total"] >= 1, 10, what="the alarm recorded")
    fault_report.record(
        FaultResult(
            "device_flood",
            len(calm),
            calm_stored.points,
            calm_stored.lost(len(calm)),
            calm_stored.duplicated,
            time.monotonic() - t0,
            {
                "flood_sent": len(flood),
                "flood_stored": flood_stored.points,
                "rate_limited": int(limited),
                "alarms": status["alarms_total"],
                "incidents": len(incidents),
            },
        )
    )
    assert (calm_stored.lost(len(calm)), calm_stored.duplicated) == (0, 0)
    assert limited > 0 and flood_stored.points + limited == len(flood)
    assert any(a.get("device") == "SD-b01-1-1" for a in status["alarms"]), status["alarms"]
    assert incidents, "the flooding device's alarm opened no incident"
