"""`/api/v1/occupancy/history` after a restart: the in-memory ring is gone, the stored
samples (forwarded to InfluxDB, kept in the spool's history) still answer."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from gateway.api.live import columns, stored_rows
from gateway.reports import Point
from tests.e2e.harness import GatewayProcess, now_ms, publish_all, write_config
from tests.servers import InfluxDBServer, MosquittoServer, wait_until


def _history(port: int, minutes: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/occupancy/history?minutes={minutes}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _crossings(n: int) -> list[tuple[str, bytes]]:
    """People counted in by cp-n01's camera (where a camera counts, swipes only authorize)."""
    t = now_ms()
    body = {"event": "line_crossing", "checkpoint": "cp-n01", "in": 3, "out": 1, "period_s": 5}
    return [
        (
            "community/shazui/gates/camera/CAM-cp-n01/event",
            json.dumps({**body, "ts": t + i}).encode(),
        )
        for i in range(n)
    ]


def test_occupancy_history_after_a_restart_returns_the_samples_from_before(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    cfg, port = write_config(
        tmp_path,
        mosquitto.port,
        api="v1",
        influx_url=influxdb.url,
        database=influx_db,
        client_id="gw-occupancy-history",
    )
    overrides = ("headcount.occupancy_interval_s=1",)
    first = GatewayProcess(cfg, port, tmp_path / "gateway.log", *overrides)
    first.start()
    try:
        publish_all(mosquitto.port, _crossings(4), client_id="occ-history-dev")

        def site_samples() -> list[dict[str, Any]]:
            return influxdb.query(
                influx_db, "SELECT occupancy FROM occupancy WHERE building = 'site'"
            )

        wait_until(
            lambda: sum(r["occupancy"] > 0 for r in site_samples()) >= 3,
            30,
            what="occupancy samples with people inside forwarded to InfluxDB",
        )
    finally:
        assert first.terminate() == 0
    before = {r["time"]: r["occupancy"] for r in site_samples()}
    restarted_at = now_ms()

    second = GatewayProcess(cfg, port, tmp_path / "gateway.log", *overrides)
    second.start()
    try:
        got = _history(port, 10)
    finally:
        second.terminate()

    site = dict(zip(got["ts"], got["targets"]["site"], strict=True))
    cp = dict(zip(got["ts"], got["checkpoints"]["cp-n01"]["occupancy"], strict=True))
    assert {ts: site.get(ts) for ts in before} == before  # every stored sample, same value
    assert {ts: cp.get(ts) for ts in before} == before  # cp-n01 shows the site's occupancy
    assert max(before.values()) > 0
    assert got["ts"] == sorted(got["ts"])
    assert any(ts >= restarted_at for ts in got["ts"])  # and the new ring's own samples
    assert set(got["checkpoints"]["cp-n01"]) == {"occupancy", "in_1m", "out_1m"}


def test_stored_rows_pair_occupancy_samples_with_the_minute_that_closed() -> None:
    t = 1_795_475_280_000  # a minute boundary
    points = {
        "occupancy": [
            Point("occupancy", {"building": "b1"}, {"occupancy": 7}, t + 60_000),
            Point("occupancy", {"building": "site"}, {"occupancy": 9}, t + 60_000),
            Point("occupancy", {"building": "site"}, {"occupancy": 11}, t + 120_000),
        ],
        "checkpoint_flow": [
            Point(
                "checkpoint_flow", {"checkpoint": "cp-a", "window": "1m"}, {"in": 3, "out": 1}, t
            ),
            Point(
                "checkpoint_flow", {"checkpoint": "cp-a", "window": "5m"}, {"in": 9, "out": 9}, t
            ),
        ],
    }

    class Stored:
        def points(self, measurement: str, since_ms: int, until_ms: int) -> list[Point]:
            return [p for p in points[measurement] if since_ms <= p.ts_ms < until_ms]

    rows = stored_rows(Stored(), {"cp-a": "b1", "cp-b": "site"}, t, t + 180_000)

    assert columns(rows) == {
        "ts": [t + 60_000, t + 120_000],
        "targets": {"b1": [7, None], "site": [9, 11]},
        "checkpoints": {
            "cp-a": {"occupancy": [7, None], "in_1m": [3, None], "out_1m": [1, None]},
            "cp-b": {"occupancy": [9, 11], "in_1m": [None, None], "out_1m": [None, None]},
        },
    }
