"""Reports with InfluxDB v1 configured: the outbox is drained by the real forwarder, and the
day's report, from the spool's history or from InfluxDB, still shows what was published."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.config import GatewayConfig, GatewaySection, InfluxSection, SpoolSection
from gateway.devices.registry import DeviceRecord
from gateway.forward.forwarder import Forwarder
from gateway.forward.influx_v1 import InfluxV1Writer
from gateway.forward.lineproto import encode_point
from gateway.metrics import GatewayMetrics
from gateway.reports import (
    InfluxV1History,
    ReportError,
    SpoolFile,
    build_day,
    daily_report,
    day_bounds,
    history_source,
    parse_line,
)
from gateway.spool import Spool
from tests.fire.helpers import SITE, site_model
from tests.reports.test_daily import DAY, TZ, Truth, read_formats, simulate_day
from tests.reports.test_daily import (
    test_each_format_shows_the_simulated_days_truth as check_truth,
)
from tests.servers import InfluxDBServer

DAY_MS = 86_400_000
SNAPSHOT = [
    DeviceRecord("b1", "smoke", f"SD-{i}", True, 60, 20, state=s)
    for i, s in enumerate(["online"] * 5 + ["offline"] * 2)
] + [DeviceRecord("b2", "smoke", "SD-21", True, 60, 20, state="online")]


def v1_config(path: Path, url: str, database: str) -> GatewayConfig:
    return GatewayConfig(
        gateway=GatewaySection(id="gw-test", site=SITE),
        influx=InfluxSection(api="v1", url=url, database=database),
        spool=SpoolSection(path=path),
        site=site_model(),
    )


@contextlib.asynccontextmanager
async def forwarding(spool: Spool, writer: InfluxV1Writer) -> AsyncIterator[Forwarder]:
    fwd = Forwarder(spool, writer, GatewayMetrics(), SystemClock(), batch_lines=2000)
    task = asyncio.create_task(fwd.run())
    try:
        yield fwd
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await writer.aclose()


async def drain(spool: Spool, writer: InfluxV1Writer, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with forwarding(spool, writer):
        while spool.stats().rows:
            assert time.monotonic() < deadline, "the forwarder did not drain the outbox"
            await asyncio.sleep(0.05)


@dataclass
class Forwarded:
    cfg: GatewayConfig
    truth: Truth
    spool: Spool
    before: object  # the report built while every point was still in the outbox


@pytest.fixture
async def forwarded(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str
) -> AsyncIterator[Forwarded]:
    """A simulated day committed as the gateway commits it, then forwarded to InfluxDB 1.x."""
    spool = Spool(tmp_path / "spool.db", 64 * 1024**2, 24 * 30, "normal")
    cfg = v1_config(spool.path, influxdb.url, influx_db)
    truth = simulate_day(spool)
    before = build_day(cfg, DAY, tz=TZ, devices=SNAPSHOT, source="spool")
    assert spool.stats().rows > 10_000
    await drain(spool, InfluxV1Writer(influxdb.url, influx_db))
    yield Forwarded(cfg, truth, spool, before)
    spool.close()


async def test_report_after_the_outbox_is_forwarded_still_shows_the_days_truth(
    forwarded: Forwarded, tmp_path: Path
) -> None:
    stats = forwarded.spool.stats()
    assert stats.rows == 0 and stats.history_rows > 10_000
    cfg = forwarded.cfg
    after = build_day(cfg, DAY, tz=TZ, devices=SNAPSHOT, source="spool")
    assert after == forwarded.before
    assert after.flows and after.occupancy and after.alarms and after.incidents
    paths = daily_report(cfg, DAY, tmp_path / "rep", tz=TZ, devices=SNAPSHOT, source="spool")
    formats = read_formats(paths)
    for fmt in ("html", "csv", "xlsx"):
        check_truth((forwarded.truth, formats), fmt)


async def test_report_read_from_influxdb_v1_equals_the_embedded_history_report(
    forwarded: Forwarded,
) -> None:
    cfg = forwarded.cfg
    from_influx = build_day(cfg, DAY, tz=TZ, devices=SNAPSHOT, source="influx")
    from_spool = build_day(cfg, DAY, tz=TZ, devices=SNAPSHOT, source="spool")
    assert from_influx == from_spool
    assert sum(f.people_in for f in from_influx.flows) == sum(
        a["in"] for a in forwarded.truth.flows.values()
    )
    assert {o.target: o.peak for o in from_influx.occupancy} == forwarded.truth.peaks


async def test_influx_reader_reads_back_what_the_writer_stored(
    influxdb: InfluxDBServer, influx_db: str
) -> None:
    t = 1_795_475_306_000
    lines = [
        encode_point(
            "alert",
            {"site": "s", "building": "1栋, A=", "type": "crowding", "metric": "occupancy"},
            {"state": 'raised "now"', "value": 12.0, "limit": 10.0, "n": 3},
            t + i % 5,
        )
        for i in range(7)
    ]
    lines += [
        encode_point(
            "alert",
            {"site": "s", "building": "b2", "device": f"SD-{i}", "type": "trouble"},
            {"state": "raised", "ok": i % 2 == 0},
            t + i,
        )
        for i in range(6)
    ]
    writer = InfluxV1Writer(influxdb.url, influx_db)
    assert (await writer.write(lines)).status == "ok"
    await writer.aclose()
    reader = InfluxV1History(influxdb.url, influx_db, chunk_points=2)

    got = await asyncio.to_thread(reader.points, "alert", t + 1, t + 5)

    # The same series and time is one point in InfluxDB: the last write of t+1..t+4 wins.
    want = {}
    for line in lines:
        p = parse_line(line)
        if t + 1 <= p.ts_ms < t + 5:
            want[(frozenset(p.tags.items()), p.ts_ms)] = p
    assert sorted(got, key=repr) == sorted(want.values(), key=repr)
    assert [p.ts_ms for p in got] == sorted(p.ts_ms for p in got)
    assert all(type(p.fields["value"]) is float for p in got if "value" in p.fields)
    small = InfluxV1History(influxdb.url, influx_db, max_points=3)
    with pytest.raises(ReportError, match="more than 3 points"):
        await asyncio.to_thread(small.points, "alert", t, t + 10)
    assert await asyncio.to_thread(reader.points, "nothing_here", t, t + 10) == []


def test_auto_source_reads_the_spool_while_its_history_holds_the_day(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", 1 << 30, 1)
    spool.close()
    cfg = v1_config(spool.path, "http://127.0.0.1:1", "db")
    start, _ = day_bounds(DAY, TZ)
    with SpoolFile(spool.path) as f:
        assert history_source(cfg, "auto", start, f, now_ms=start + 30 * DAY_MS) is f
        old = history_source(cfg, "auto", start, f, now_ms=start + 36 * DAY_MS)
        assert isinstance(old, InfluxV1History)
        assert isinstance(history_source(cfg, "influx", start, f), InfluxV1History)
        assert history_source(cfg, "spool", start, f, now_ms=start + 99 * DAY_MS) is f
        none = cfg.model_copy(update={"influx": InfluxSection(api="none")})
        assert history_source(none, "auto", start, f, now_ms=start + 99 * DAY_MS) is f
        with pytest.raises(ReportError, match='api = "v1"'):
            history_source(none, "influx", start, f)


def test_unreachable_influxdb_is_a_clear_report_error(tmp_path: Path) -> None:
    Spool(tmp_path / "spool.db", 1 << 30, 1).close()
    cfg = v1_config(tmp_path / "spool.db", "http://127.0.0.1:1", "db")
    with pytest.raises(ReportError, match=r"127\.0\.0\.1:1.*cannot reach.*--source spool"):
        build_day(cfg, DAY, tz=TZ, source="influx")
    with pytest.raises(ReportError, match="report source 'flux'"):
        build_day(cfg, DAY, tz=TZ, source="flux")
