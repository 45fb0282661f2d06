"""Forwarding with the spool's history: report points stay readable after InfluxDB has them,
and the forwarder sends every line exactly once (history is never re-sent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.forward.influx_v1 import InfluxV1Writer
from gateway.spool.store import Spool
from tests.forward.test_forwarder import (
    TS,
    RecordingWriter,
    Sleeper,
    commit,
    eventually,
    make,
    running,
    telemetry,
)
from tests.servers import InfluxDBServer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def spool(tmp_path: Path, clock: ManualClock) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", 64 * 1024**2, 24.0, "normal", clock=clock)
    yield s
    s.close()


async def test_forwarded_report_points_stay_in_history_and_are_sent_once(
    spool: Spool, clock: ManualClock, influxdb: InfluxDBServer, influx_db: str
) -> None:
    writer = RecordingWriter(InfluxV1Writer(influxdb.url, influx_db))
    flows = [
        f"checkpoint_flow,checkpoint=cp-{i},site=shazui,window=1m in={i}i,out=1i {TS + i}"
        for i in range(5)
    ]
    occupancy = [
        f"occupancy,building=site,site=shazui occupancy={40 + i}i {TS + i}" for i in range(3)
    ]
    commit(spool, telemetry(20))
    commit(spool, flows + occupancy, cls=1)
    sleeper = Sleeper()
    fwd, _ = make(spool, writer, clock, sleeper, batch_lines=4)
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
        await eventually(lambda: sleeper.idle_waits >= 1, "forwarder idle")
        fwd.notify()  # wake it on an empty outbox: nothing is sent again
        await eventually(lambda: sleeper.idle_waits >= 2, "forwarder idle again")
    await writer.aclose()

    assert sorted(writer.accepted) == sorted(telemetry(20) + flows + occupancy)
    assert len(writer.accepted) == 28  # each line once
    assert spool.lines("checkpoint_flow", 0, 2**62, 100) == flows
    assert spool.lines("occupancy", 0, 2**62, 100) == occupancy
    assert spool.lines("smoke", 0, 2**62, 100) == []  # telemetry is InfluxDB's only
    stats = spool.stats()
    assert (stats.rows, stats.history_rows, stats.forwarded_total) == (0, 8, 28)
    stored = influxdb.query(influx_db, "SELECT occupancy FROM occupancy")
    assert [r["occupancy"] for r in stored] == [40, 41, 42]
