"""Writers against real servers: InfluxDB 1.x (v1 /write) and VictoriaMetrics (v2 /api/v2/write)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.forward.influx_v1 import InfluxV1Writer
from gateway.forward.influx_v2 import InfluxV2Writer
from gateway.forward.writer import WriteOutcome, make_writer, outcome_for_status
from tests.servers import InfluxDBServer, VictoriaMetricsServer, free_port

TS = 1_795_475_306_083


@pytest.fixture
async def v1(influxdb: InfluxDBServer, influx_db: str) -> AsyncIterator[InfluxV1Writer]:
    writer = InfluxV1Writer(influxdb.url, influx_db, timeout_s=5.0)
    try:
        yield writer
    finally:
        await writer.aclose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "rejected"),
        (413, "rejected"),
        (422, "rejected"),
        (401, "retry"),
        (403, "retry"),
        (404, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_only_bad_line_statuses_reject(status: int, expected: str) -> None:
    outcome = outcome_for_status(status, "why")
    assert outcome == WriteOutcome(expected, "why", f"http_{status}")  # type: ignore[arg-type]


async def test_v1_points_land_with_measurement_tags_fields_and_time(
    v1: InfluxV1Writer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    lines = [
        f"smoke,building=b12,device=SD-1,site=shazui smoke=0.12,battery=87i {TS}",
        f'smoke_event,building=b12,device=SD-1,event=alarm,site=shazui n=1i,msg="a b" {TS + 1}',
    ]
    assert await v1.write(lines) == WriteOutcome("ok")
    rows = influxdb.query(influx_db, "SELECT * FROM smoke, smoke_event")
    # One query over two measurements: columns of the other one come back as null.
    by_measurement = {
        r.pop("_measurement"): {k: v for k, v in r.items() if v is not None} for r in rows
    }
    assert by_measurement["smoke"] == {
        "time": TS,
        "building": "b12",
        "device": "SD-1",
        "site": "shazui",
        "smoke": 0.12,
        "battery": 87,
    }
    assert by_measurement["smoke_event"]["time"] == TS + 1
    assert by_measurement["smoke_event"]["msg"] == "a b"
    assert by_measurement["smoke_event"]["event"] == "alarm"


async def test_v1_bad_line_is_rejected_with_the_servers_message(v1: InfluxV1Writer) -> None:
    outcome = await v1.write(["this is not line protocol"])
    assert outcome.status == "rejected"
    assert outcome.reason == "http_400"
    assert "unable to parse" in outcome.message


async def test_v1_missing_database_is_retried_not_rejected(influxdb: InfluxDBServer) -> None:
    writer = InfluxV1Writer(influxdb.url, "no_such_db_here")
    try:
        outcome = await writer.write([f"m x=1 {TS}"])
    finally:
        await writer.aclose()
    assert outcome.status == "retry"
    assert outcome.reason == "http_404"
    assert "database not found" in outcome.message


async def test_v1_unreachable_server_is_retry() -> None:
    writer = InfluxV1Writer(f"http://127.0.0.1:{free_port()}", "db")
    try:
        outcome = await writer.write([f"m x=1 {TS}"])
    finally:
        await writer.aclose()
    assert (outcome.status, outcome.reason) == ("retry", "connect")
    assert "127.0.0.1" in outcome.message


async def test_v1_hung_server_times_out_as_retry(silent_port: int) -> None:
    writer = InfluxV1Writer(f"http://127.0.0.1:{silent_port}", "db", timeout_s=0.3)
    try:
        outcome = await asyncio.wait_for(writer.write([f"m x=1 {TS}"]), timeout=10)
    finally:
        await writer.aclose()
    assert (outcome.status, outcome.reason) == ("retry", "timeout")


async def test_v1_empty_write_does_not_touch_the_server() -> None:
    writer = InfluxV1Writer(f"http://127.0.0.1:{free_port()}", "db")
    assert await writer.write([]) == WriteOutcome("ok")
    await writer.aclose()


async def test_v1_ensure_database_creates_it(influxdb: InfluxDBServer) -> None:
    name = f"ensure_{free_port()}"
    writer = InfluxV1Writer(influxdb.url, name)
    try:
        assert await writer.ensure_database() is True
        assert await writer.ensure_database() is True  # idempotent
        assert await writer.write([f"m x=1 {TS}"]) == WriteOutcome("ok")
    finally:
        await writer.aclose()
        influxdb.drop_database(name)


async def test_v1_ensure_database_failure_is_a_warning_that_says_what_and_where(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    writer = InfluxV1Writer(url, "community")
    try:
        assert await writer.ensure_database() is False
    finally:
        await writer.aclose()
    [record] = [r for r in caplog.records if r.name == "gateway.forward.influx_v1"]
    assert record.levelname == "WARNING"
    assert f"cannot create InfluxDB database 'community' at {url}" in record.getMessage()


async def test_v2_points_land_in_victoria_metrics(
    victoria_metrics: VictoriaMetricsServer, vm_prefix: str
) -> None:
    writer = InfluxV2Writer(victoria_metrics.url, "community", "community", token="t")
    lines = [
        f"{vm_prefix}smoke,building=b12,device=SD-1,site=shazui smoke=0.12,battery=87i {TS}",
        f"{vm_prefix}smoke,building=b12,device=SD-1,site=shazui smoke=0.5,battery=86i {TS + 60}",
    ]
    try:
        assert await writer.write(lines) == WriteOutcome("ok")
    finally:
        await writer.aclose()
    series = victoria_metrics.export(f'{{__name__=~"{vm_prefix}smoke_.*"}}')
    got = {s["metric"]["__name__"]: (s["values"], s["timestamps"]) for s in series}
    assert got == {
        f"{vm_prefix}smoke_smoke": ([0.12, 0.5], [TS, TS + 60]),
        f"{vm_prefix}smoke_battery": ([87, 86], [TS, TS + 60]),
    }
    assert {k: series[0]["metric"][k] for k in ("building", "device", "site")} == {
        "building": "b12",
        "device": "SD-1",
        "site": "shazui",
    }


async def test_v2_unreachable_server_is_retry() -> None:
    writer = InfluxV2Writer(f"http://127.0.0.1:{free_port()}", "o", "b")
    try:
        outcome = await writer.write([f"m x=1 {TS}"])
    finally:
        await writer.aclose()
    assert (outcome.status, outcome.reason) == ("retry", "connect")


async def test_v2_http_error_is_classified(influxdb: InfluxDBServer) -> None:
    # InfluxDB 1.6 has no /api/v2/write: a 404, which must be retried, never dead-lettered.
    writer = InfluxV2Writer(influxdb.url, "o", "b")
    try:
        outcome = await writer.write([f"m x=1 {TS}"])
    finally:
        await writer.aclose()
    assert (outcome.status, outcome.reason) == ("retry", "http_404")


async def test_v2_hung_server_times_out_as_retry(silent_port: int) -> None:
    writer = InfluxV2Writer(f"http://127.0.0.1:{silent_port}", "o", "b", timeout_s=0.3)
    try:
        outcome = await asyncio.wait_for(writer.write([f"m x=1 {TS}"]), timeout=10)
    finally:
        await writer.aclose()
    assert (outcome.status, outcome.reason) == ("retry", "timeout")


def test_make_writer_follows_influx_api(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    base = '[gateway]\nid = "gw1"\nsite = "shazui"\n'
    assert make_writer(parse_config(base)) is None
    v1 = make_writer(
        parse_config(base + '[influx]\napi = "v1"\nurl = "http://127.0.0.1:9/"\ndatabase = "d"\n')
    )
    assert isinstance(v1, InfluxV1Writer)
    assert (v1.url, v1.database) == ("http://127.0.0.1:9", "d")
    v2 = make_writer(
        parse_config(base + f'[influx]\napi = "v2"\nbucket = "b"\ntoken_file = "{token}"\n')
    )
    assert isinstance(v2, InfluxV2Writer)
    assert (v2.bucket, v2.org) == ("b", "community")
