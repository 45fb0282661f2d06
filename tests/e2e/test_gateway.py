"""The gateway end to end: real Mosquitto → gateway process → real InfluxDB / VictoriaMetrics."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.e2e.harness import (
    GatewayProcess,
    influx_count,
    now_ms,
    publish_all,
    telemetry,
    write_config,
)
from tests.servers import InfluxDBServer, MosquittoServer, VictoriaMetricsServer, wait_until

SITE = "community/shazui"
CARD = "0012345678"


def _contract_messages(ts: int) -> list[tuple[str, bytes]]:
    def msg(building: str, kind: str, device: str, channel: str, body: object) -> tuple[str, bytes]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return (f"{SITE}/{building}/{kind}/{device}/{channel}", data)

    return [
        msg(
            "b01",
            "smoke",
            "SD-b01-1-1",
            "telemetry",
            {"ts": ts, "smoke": 0.12, "temp": 24.5, "battery": 87, "rssi": -71},
        ),
        msg("b01", "smoke", "SD-b01-1-2", "event", {"ts": ts + 1, "event": "fault"}),
        msg("b01", "heat", "HD-b01-1-1", "event", {"ts": ts + 2, "event": "test", "temp": 31.0}),
        msg("b01", "callpoint", "CP-b01-1", "event", {"ts": ts + 3, "event": "clear"}),
        msg(
            "gates",
            "access",
            "AC-cp-n01",
            "event",
            {
                "ts": ts + 4,
                "event": "swipe",
                "card": CARD,
                "door": "cp-n01-d1",
                "dir": "in",
                "granted": True,
            },
        ),
        msg(
            "gates",
            "access",
            "AC-cp-n01",
            "event",
            {"ts": ts + 5, "event": "door_held_open", "door": "cp-n01-d1"},
        ),
        msg(
            "gates",
            "camera",
            "CAM-cp-n01",
            "event",
            {
                "ts": ts + 6,
                "event": "line_crossing",
                "checkpoint": "cp-n01",
                "in": 3,
                "out": 1,
                "period_s": 5,
            },
        ),
        msg(
            "gates",
            "camera",
            "CAM-cp-n01",
            "event",
            {"ts": ts + 7, "event": "people_count", "zone": "b01-f1", "count": 17},
        ),
        msg("b02", "screen", "SCR-b02", "status", b"online"),
        msg(
            "b02",
            "voice",
            "VT-b02",
            "status",
            {"ts": ts + 8, "state": "online", "fw": "1.4.2", "config_hash": "abc"},
        ),
        msg("b02", "screen", "SCR-b02", "ack", {"cmd_id": "c-1", "ok": True}),
        msg("b02", "voice", "VT-b02", "ack", {"cmd_id": "c-2", "ok": False, "error": "busy"}),
        msg("gates", "camera", "CAM-cp-n01", "frame", b"\xff\xd8\xff\xe0fakejpeg"),
    ]


@pytest.fixture
def gateway_v1(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer, influx_db: str
) -> GatewayProcess:
    cid = f"gw-{os.getpid()}-{random.randrange(10**9)}"
    cfg, api_port = write_config(
        tmp_path,
        mosquitto.port,
        api="v1",
        influx_url=influxdb.url,
        database=influx_db,
        client_id=cid,
    )
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    yield gw
    gw.terminate()


def test_every_contract_kind_and_channel_lands_in_influxdb(
    gateway_v1: GatewayProcess,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
) -> None:
    ts = now_ms()
    items = _contract_messages(ts)
    publish_all(mosquitto.port, items)
    gateway_v1.wait_committed(len(items))
    expected = {
        "smoke": 1,
        "smoke_event": 1,
        "heat_event": 1,
        "callpoint_event": 1,
        "access_event": 2,
        "camera_event": 2,
        "device_status": 2,
        "command_ack": 2,
    }

    def counts() -> dict[str, int]:
        return {m: influx_count(influxdb, influx_db, m) for m in expected}

    try:
        wait_until(lambda: counts() == expected, 20, what="every measurement in InfluxDB")
    except TimeoutError:
        raise AssertionError(f"{counts()} != {expected}: {gateway_v1.status()}") from None
    smoke = influxdb.query(influx_db, 'SELECT * FROM "smoke"')[0]
    assert (smoke["time"], smoke["smoke"], smoke["battery"]) == (ts, 0.12, 87)
    assert (smoke["zone"], smoke["floor"], smoke["building"]) == ("b01-f1", "1", "b01")
    swipe = influxdb.query(influx_db, 'SELECT * FROM "access_event" WHERE "event"=\'swipe\'')[0]
    assert swipe["checkpoint"] == "cp-n01" and swipe["dir"] == "in" and swipe["granted"] is True
    assert len(swipe["card_hash"]) >= 16
    everything = json.dumps([influxdb.query(influx_db, f'SELECT * FROM "{m}"') for m in expected])
    assert CARD not in everything
    trouble = influxdb.query(influx_db, 'SELECT * FROM "alert"')
    assert {(r["type"], r["trouble"]) for r in trouble} >= {
        ("trouble", "fault"),
        ("trouble", "door_held_open"),
    }


def test_bad_input_is_dead_lettered_and_the_loop_keeps_running(
    gateway_v1: GatewayProcess,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
) -> None:
    rng = random.Random(7)
    bad = [
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", bytes(rng.randrange(256) for _ in range(64))),
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", b'{"smoke": "high"}'),
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", b"\xff\xfe not utf-8"),
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", b"[1, 2, 3]"),
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", b"{" * 100_000),
        (f"{SITE}/b01/smoke/SD-b01-1-1/telemetry", b" " * 300_000),
        (f"{SITE}/b01/smoke/SD-b01-1-1/event", b'{"event": "explode"}'),
        (f"{SITE}/b01/toaster/T-1/telemetry", b'{"ts": 1}'),
        (f"{SITE}/b01/smoke/SD-b01-1-1/gossip", b"{}"),
        ("community/elsewhere/b01/smoke/SD-1/telemetry", b"{}"),
    ]
    ts = now_ms()
    good = telemetry("SD-b01-1-2", ts)
    publish_all(mosquitto.port, [*bad, good])
    gateway_v1.wait_committed(len(bad) - 1 + 1)  # the foreign site is not subscribed to
    wait_until(lambda: influx_count(influxdb, influx_db, "smoke") == 1, 20, what="good point")
    status = gateway_v1.status()
    assert status["spool"]["dead_letters"] == len(bad) - 1
    import urllib.request

    with urllib.request.urlopen(
        f"http://127.0.0.1:{gateway_v1.api_port}/api/v1/dead-letters?limit=50", timeout=5
    ) as r:
        letters = json.loads(r.read())
    reasons = " | ".join(d["reason"] for d in letters)
    assert "unknown device kind 'toaster'" in reasons
    assert "unknown channel 'gossip'" in reasons
    assert "smoke" in reasons and "explode" in reasons
    assert gateway_v1.proc is not None and gateway_v1.proc.poll() is None


def test_kill9_mid_stream_then_restart_stores_every_message_exactly_once(
    gateway_v1: GatewayProcess,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
) -> None:
    n = 6000
    base = now_ms() - 3_600_000
    devices = ["SD-b01-1-1", "SD-b01-1-2", "SD-b01-2-1"]
    items = [telemetry(devices[i % 3], base + i, smoke=i / 1000) for i in range(n)]
    import threading

    publisher = threading.Thread(
        target=publish_all,
        args=(mosquitto.port, items),
        kwargs={"rate_per_s": 2000.0, "client_id": "kill9-publisher"},
    )
    publisher.start()
    kills = 0
    for at in (1000, 500):
        wait_until(lambda at=at: gateway_v1.status()["committed"] >= at, 30, what="progress")
        gateway_v1.kill9()
        kills += 1
        gateway_v1.start()
    publisher.join(60)
    wait_until(
        lambda: influx_count(influxdb, influx_db, "smoke") >= n, 60, what=f"{n} points in InfluxDB"
    )
    rows = influxdb.query(influx_db, 'SELECT count("smoke") FROM "smoke" GROUP BY "device"')
    assert sum(int(r["count"]) for r in rows) == n
    assert kills == 2
    assert gateway_v1.terminate() == 0


def test_broker_restart_mid_stream_loses_nothing(
    gateway_v1: GatewayProcess,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
) -> None:
    base = now_ms() - 7_200_000
    first = [telemetry("SD-b01-1-1", base + i) for i in range(1000)]
    second = [telemetry("SD-b01-1-1", base + 10_000 + i) for i in range(1000)]
    publish_all(mosquitto.port, first, client_id="restart-publisher")
    mosquitto.stop()
    mosquitto.start()
    wait_until(lambda: gateway_v1.status()["mqtt_connected"], 30, what="gateway reconnected")
    publish_all(mosquitto.port, second, client_id="restart-publisher")
    wait_until(lambda: influx_count(influxdb, influx_db, "smoke") >= 2000, 60, what="2000 points")
    assert influx_count(influxdb, influx_db, "smoke") == 2000


def test_influxdb_outage_then_back_delivers_everything_once(
    gateway_v1: GatewayProcess,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
) -> None:
    base = now_ms() - 10_800_000
    influxdb.stop()
    try:
        publish_all(mosquitto.port, [telemetry("SD-b01-2-1", base + i) for i in range(3000)])
        gateway_v1.wait_committed(3000)
        assert gateway_v1.status()["spool"]["rows"] >= 3000
    finally:
        influxdb.start()
    wait_until(lambda: influx_count(influxdb, influx_db, "smoke") >= 3000, 60, what="backlog")
    assert influx_count(influxdb, influx_db, "smoke") == 3000
    wait_until(lambda: gateway_v1.status()["spool"]["rows"] == 0, 20, what="spool drained")


def test_v2_path_lands_points_in_victoria_metrics(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
) -> None:
    cfg, api_port = write_config(
        tmp_path,
        mosquitto.port,
        api="v2",
        influx_url=victoria_metrics.url,
        database="test",
        client_id=f"gw-v2-{random.randrange(10**9)}",
    )
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    try:
        ts = now_ms()
        publish_all(
            mosquitto.port, [telemetry("SD-b02-1-1", ts + i, building="b02") for i in range(50)]
        )
        gw.wait_committed(50)

        def landed() -> bool:
            victoria_metrics.flush()
            series = victoria_metrics.export('smoke_smoke{device="SD-b02-1-1"}')
            return sum(len(s.get("values", [])) for s in series) >= 50

        wait_until(landed, 30, what="50 points in VictoriaMetrics")
        series = victoria_metrics.export('smoke_battery{device="SD-b02-1-1"}')
        assert series[0]["metric"]["zone"] == "b02-f1"
        assert sorted(series[0]["timestamps"])[0] == ts
    finally:
        assert gw.terminate() == 0
