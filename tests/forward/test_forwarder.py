"""The forwarder with the real spool: real InfluxDB / VictoriaMetrics, and scripted writers
for the retry, bisection and idle logic (time driven by an injected sleep, never waited)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.forward.forwarder import Forwarder
from gateway.forward.influx_v1 import InfluxV1Writer
from gateway.forward.influx_v2 import InfluxV2Writer
from gateway.forward.writer import LineWriter, WriteOutcome
from gateway.metrics import GatewayMetrics
from gateway.spool.store import OutboxRow, Spool, SpoolRow
from tests.servers import InfluxDBServer, VictoriaMetricsServer

TS = 1_795_475_306_083
IDLE_S = 777.0  # distinct from every backoff delay, so the Sleeper can tell them apart
OK = WriteOutcome("ok")
RETRY = WriteOutcome("retry", "connection refused", "connect")


# ---- helpers -------------------------------------------------------------------------


class Sleeper:
    """The injected sleep: records every delay; backoffs return at once, idle waits block
    until `release()` (or until the forwarder cancels them on notify)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._idle: list[asyncio.Future[None]] = []

    @property
    def backoffs(self) -> list[float]:
        return [d for d in self.delays if d != IDLE_S]

    @property
    def idle_waits(self) -> int:
        return self.delays.count(IDLE_S)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if delay != IDLE_S:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        await fut

    def release(self) -> None:
        for fut in self._idle:
            if not fut.done():
                fut.set_result(None)
        self._idle.clear()


class ScriptedWriter:
    """A LineWriter answering from a script (then `default`), recording what it was sent."""

    def __init__(
        self,
        script: Sequence[WriteOutcome] = (),
        default: WriteOutcome = OK,
        judge: Callable[[Sequence[str]], WriteOutcome] | None = None,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self.script = list(script)
        self.default = default
        self.judge = judge
        self.on_write = on_write
        self.calls: list[list[str]] = []
        self.accepted: list[str] = []

    async def write(self, lines: Sequence[str]) -> WriteOutcome:
        self.calls.append(list(lines))
        if self.on_write:
            self.on_write()
        if self.script:
            outcome = self.script.pop(0)
        elif self.judge:
            outcome = self.judge(lines)
        else:
            outcome = self.default
        if outcome.status == "ok":
            self.accepted.extend(lines)
        return outcome

    async def aclose(self) -> None:
        pass


class RecordingWriter:
    """Wraps a real writer and records the lines it got accepted, in order."""

    def __init__(self, inner: LineWriter) -> None:
        self.inner = inner
        self.accepted: list[str] = []
        self.outcomes: list[WriteOutcome] = []

    async def write(self, lines: Sequence[str]) -> WriteOutcome:
        outcome = await self.inner.write(lines)
        self.outcomes.append(outcome)
        if outcome.status == "ok":
            self.accepted.extend(lines)
        return outcome

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountingSpool:
    """The real spool, counting `next_batch` calls."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.reads = 0

    def next_batch(self, limit: int) -> list[OutboxRow]:
        self.reads += 1
        return self.spool.next_batch(limit)

    def mark_forwarded(self, ids: Sequence[int]) -> None:
        self.spool.mark_forwarded(ids)

    def dead_letter_lines(self, rows: Sequence[tuple[int, str, str]], stage: str) -> None:
        self.spool.dead_letter_lines(rows, stage)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def spool(tmp_path: Path, clock: ManualClock) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", 64 * 1024**2, 24.0, "normal", clock=clock)
    try:
        yield s
    finally:
        s.close()


def commit(spool: Spool, lines: Sequence[str], cls: int = 0, received_ms: int = TS) -> None:
    spool.commit_batch([SpoolRow(cls, TS + i, received_ms, line) for i, line in enumerate(lines)])


def telemetry(n: int, start: int = 0, measurement: str = "smoke") -> list[str]:
    return [
        f"{measurement},building=b12,device=SD-{i % 3},site=shazui smoke={i}i {TS + i}"
        for i in range(start, start + n)
    ]


@contextlib.asynccontextmanager
async def running(forwarder: Forwarder) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(forwarder.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], object], what: str, timeout_s: float = 15.0) -> None:
    """Poll until true; the deadline only bounds a broken test, it times nothing."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s} s")
        await asyncio.sleep(0.01)


def metric(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def make(
    spool: Spool | CountingSpool,
    writer: LineWriter,
    clock: ManualClock,
    sleeper: Sleeper,
    **kwargs: object,
) -> tuple[Forwarder, GatewayMetrics]:
    metrics = GatewayMetrics()
    kwargs.setdefault("jitter", lambda lo, hi: hi)
    fwd = Forwarder(spool, writer, metrics, clock, sleep=sleeper, idle_wait_s=IDLE_S, **kwargs)  # type: ignore[arg-type]
    return fwd, metrics


# ---- against real servers ------------------------------------------------------------


async def test_forwards_to_influxdb_alarms_first_and_empties_the_outbox(
    spool: Spool, clock: ManualClock, influxdb: InfluxDBServer, influx_db: str
) -> None:
    writer = RecordingWriter(InfluxV1Writer(influxdb.url, influx_db))
    commit(spool, telemetry(3))
    alarm = f"smoke_event,building=b12,device=SD-9,event=alarm,site=shazui n=1i {TS + 50}"
    commit(spool, [alarm], cls=2)
    fwd, metrics = make(spool, writer, clock, Sleeper())
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
    await writer.aclose()
    assert writer.accepted == [alarm, *telemetry(3)]
    rows = influxdb.query(influx_db, "SELECT smoke, device FROM smoke")
    assert [(r["time"], r["smoke"], r["device"]) for r in rows] == [
        (TS + i, i, f"SD-{i}") for i in range(3)
    ]
    assert influxdb.query(influx_db, "SELECT n FROM smoke_event WHERE event = 'alarm'") == [
        {"time": TS + 50, "n": 1, "_measurement": "smoke_event"}
    ]
    assert fwd.stats.lines_forwarded == 4
    assert metric(metrics, "gateway_forward_lines_total") == 4


async def test_bad_line_is_dead_lettered_alone_and_good_lines_land(
    spool: Spool, clock: ManualClock, influxdb: InfluxDBServer, influx_db: str
) -> None:
    good = telemetry(7)
    bad = "smoke,building=b12 this is not line protocol"
    commit(spool, [*good[:5], bad, *good[5:]])
    writer = InfluxV1Writer(influxdb.url, influx_db)
    fwd, metrics = make(spool, writer, clock, Sleeper())
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
        await eventually(lambda: fwd.stats.lines_dead_lettered == 1, "dead letter counted")
    await writer.aclose()
    rows = influxdb.query(influx_db, "SELECT smoke FROM smoke")
    assert [r["smoke"] for r in rows] == list(range(7))
    dead = spool.dead_letters()
    assert len(dead) == 1
    assert dead[0].payload == bad.encode()
    assert dead[0].stage == "forward"
    assert "unable to parse" in dead[0].reason
    assert fwd.stats.lines_dead_lettered == 1
    assert metric(metrics, "gateway_dead_letters_total", stage="forward") == 1


async def test_database_outage_is_retried_with_backoff_and_nothing_is_lost(
    spool: Spool, clock: ManualClock, influxdb: InfluxDBServer, influx_db: str
) -> None:
    lines = telemetry(23)
    writer = RecordingWriter(InfluxV1Writer(influxdb.url, influx_db, timeout_s=5.0))
    sleeper = Sleeper()
    fwd, metrics = make(
        spool, writer, clock, sleeper, batch_lines=5, backoff_min_s=0.01, backoff_max_s=0.08
    )
    influxdb.stop()
    try:
        async with running(fwd):
            commit(spool, lines[:10])
            fwd.notify()
            await eventually(lambda: len(sleeper.backoffs) >= 6, "six backoffs")
            commit(spool, lines[10:])
            fwd.notify()
            assert spool.stats().rows == 23
            assert writer.accepted == []
            await asyncio.to_thread(influxdb.start)
            await eventually(lambda: spool.stats().rows == 0, "outbox drained after restart")
            assert fwd.stats.backoff_s == 0.0
    finally:
        if not influxdb.running:
            influxdb.start()
        await writer.aclose()
    assert sleeper.backoffs[:6] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
    assert writer.accepted == lines
    rows = influxdb.query(influx_db, "SELECT smoke FROM smoke")
    assert [r["smoke"] for r in rows] == list(range(23))
    errors = [
        s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "gateway_forward_errors_total"
    ]
    assert sum(errors) == len(sleeper.backoffs)  # one error counted per retry
    assert metric(metrics, "gateway_forward_errors_total", reason="connect") >= 6


async def test_v2_writer_forwards_to_victoria_metrics(
    spool: Spool, clock: ManualClock, victoria_metrics: VictoriaMetricsServer, vm_prefix: str
) -> None:
    lines = telemetry(5, measurement=f"{vm_prefix}smoke")
    commit(spool, lines)
    writer = InfluxV2Writer(victoria_metrics.url, "community", "community")
    fwd, _ = make(spool, writer, clock, Sleeper())
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
    await writer.aclose()
    series = victoria_metrics.export(f'{{__name__="{vm_prefix}smoke_smoke"}}')
    samples = sorted(
        (t, v, s["metric"]["device"])
        for s in series
        for t, v in zip(s["timestamps"], s["values"], strict=True)
    )
    assert samples == [(TS + i, i, f"SD-{i % 3}") for i in range(5)]


# ---- retry, bisection and idle logic (scripted writers, injected sleep) --------------


async def test_backoff_doubles_is_capped_and_resets_after_success(
    spool: Spool, clock: ManualClock
) -> None:
    writer = ScriptedWriter([RETRY] * 9 + [OK] + [RETRY] * 2)
    sleeper = Sleeper()
    fwd, metrics = make(spool, writer, clock, sleeper)
    commit(spool, telemetry(1))
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "first line forwarded")
        commit(spool, telemetry(1, start=1))
        fwd.notify()
        await eventually(lambda: spool.stats().rows == 0, "second line forwarded")
    assert sleeper.backoffs == [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 0.5, 1]
    assert fwd.stats.errors == 11
    assert metric(metrics, "gateway_forward_errors_total", reason="connect") == 11


async def test_backoff_jitter_stays_between_min_and_the_doubling_cap(
    spool: Spool, clock: ManualClock
) -> None:
    writer = ScriptedWriter([RETRY] * 12)
    sleeper = Sleeper()
    fwd, _ = make(spool, writer, clock, sleeper, jitter=random.Random(7).uniform)
    commit(spool, telemetry(1))
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "forwarded")
    caps = [min(60.0, 0.5 * 2**n) for n in range(12)]
    assert len(sleeper.backoffs) == 12
    assert all(0.5 <= d <= cap for d, cap in zip(sleeper.backoffs, caps, strict=True))
    assert len(set(sleeper.backoffs)) > 6  # jittered, not the cap every time


async def test_rejection_bisects_to_the_bad_lines_and_keeps_order(
    spool: Spool, clock: ManualClock
) -> None:
    lines = telemetry(16)
    bad = {lines[2], lines[11]}

    def judge(batch: Sequence[str]) -> WriteOutcome:
        if bad & set(batch):
            return WriteOutcome("rejected", "unable to parse: bad", "http_400")
        return OK

    writer = ScriptedWriter(judge=judge)
    fwd, metrics = make(spool, writer, clock, Sleeper())
    commit(spool, lines)
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
    assert writer.accepted == [line for line in lines if line not in bad]
    dead = spool.dead_letters()
    assert sorted(d.payload.decode() for d in dead) == sorted(bad)
    assert {d.reason for d in dead} == {"unable to parse: bad"}
    assert len(writer.calls) <= 2 * 2 * 4 + 1  # ~2 writes per level per bad line
    assert metric(metrics, "gateway_forward_errors_total", reason="http_400") > 0


async def test_outage_during_bisection_backs_off_and_resumes(
    spool: Spool, clock: ManualClock
) -> None:
    lines = telemetry(8)
    rejected = WriteOutcome("rejected", "partial write: field type conflict", "http_400")
    # Whole batch rejected, first half ok, second half hits an outage, then all is well.
    writer = ScriptedWriter([rejected, OK, RETRY])
    sleeper = Sleeper()
    fwd, _ = make(spool, writer, clock, sleeper)
    commit(spool, lines)
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
    assert writer.accepted == lines
    assert spool.dead_letters() == []
    assert sleeper.backoffs == [0.5]
    assert writer.calls[3] == lines[4:]  # resumed with the rows not yet forwarded


async def test_idle_forwarder_waits_for_notify_or_the_idle_timer(
    spool: Spool, clock: ManualClock
) -> None:
    counting = CountingSpool(spool)
    writer = ScriptedWriter()
    sleeper = Sleeper()
    fwd, _ = make(counting, writer, clock, sleeper)
    async with running(fwd):
        await eventually(lambda: sleeper.idle_waits == 1, "first idle wait")
        for _ in range(50):  # let the loop run: an idle forwarder must not poll again
            await asyncio.sleep(0.002)
        assert (counting.reads, len(writer.calls)) == (1, 0)
        sleeper.release()  # the idle timer fires: one more look, then wait again
        await eventually(lambda: sleeper.idle_waits == 2, "second idle wait")
        assert (counting.reads, len(writer.calls)) == (2, 0)
        commit(spool, telemetry(2))
        fwd.notify()  # wakes it without the timer
        await eventually(lambda: writer.accepted == telemetry(2), "notified rows written")
        await eventually(lambda: sleeper.idle_waits == 3, "idle again after the rows")
    assert counting.reads == 4  # the rows, then one empty look before waiting again


async def test_lag_and_drain_rate_follow_the_injected_clock(
    spool: Spool, clock: ManualClock
) -> None:
    writer = ScriptedWriter(on_write=lambda: clock.advance(0.5))
    fwd, metrics = make(spool, writer, clock, Sleeper(), batch_lines=2)
    commit(spool, telemetry(4), received_ms=clock.wall_ms() - 30_000)
    lags: list[float] = []
    original = writer.write

    async def write_and_look(lines: Sequence[str]) -> WriteOutcome:
        lags.append(fwd.stats.lag_s)
        return await original(lines)

    writer.write = write_and_look  # type: ignore[method-assign]
    async with running(fwd):
        await eventually(lambda: spool.stats().rows == 0, "outbox drained")
        await eventually(lambda: fwd.stats.lag_s == 0.0, "lag back to zero when empty")
    assert lags == [30.0, 30.5]
    assert fwd.stats.drain_lines_per_s == pytest.approx(4.0)
    assert metric(metrics, "gateway_forward_drain_lines_per_second") == pytest.approx(4.0)
    assert metric(metrics, "gateway_forward_lag_seconds") == 0.0


def test_forwarder_rejects_nonsense_settings(spool: Spool, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Forwarder(
            spool, ScriptedWriter(), GatewayMetrics(), clock, backoff_min_s=5, backoff_max_s=1
        )
    with pytest.raises(ValueError, match="batch_lines"):
        Forwarder(spool, ScriptedWriter(), GatewayMetrics(), clock, batch_lines=0)
