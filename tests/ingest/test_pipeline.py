"""The ingest pipeline on its own: ack only after commit, dead letters, spool refusals."""

from __future__ import annotations

import asyncio
import json
import time

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.errors import DecodeError, SpoolError
from gateway.ingest.mqtt import RawMessage
from gateway.ingest.pipeline import Batch, BatchSink, IngestPipeline
from gateway.ingest.topic import DeviceTopic
from gateway.metrics import GatewayMetrics


class _Sink(BatchSink):
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[Batch] = []

    async def commit(self, batch: Batch) -> None:
        if self.failures:
            self.failures -= 1
            raise SpoolError("spool /x/spool.db: database or disk is full")
        self.batches.append(batch)


def _decode(topic: DeviceTopic, payload: bytes, received_ms: int) -> DeviceMessage:
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    return DeviceMessage(
        topic, body.get("ts", received_ms), "device", received_ms, event=body.get("event")
    )


def _raw(topic: str, payload: bytes, mid: int) -> RawMessage:
    return RawMessage(topic, payload, mid, 1, 1, 1_000, 0.0)


def _pipeline(
    sink: _Sink, acked: list[int], sleeps: list[float], capacity: int = 20_000
) -> IngestPipeline:
    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    def ack(raws: object) -> int:
        assert isinstance(raws, list)
        acked.extend(r.mid for r in raws)
        return len(raws)

    return IngestPipeline(
        root="community",
        site="s",
        decode=_decode,
        sink=sink,
        ack=ack,
        alarm_hook=lambda m: None,
        metrics=GatewayMetrics(),
        clock=ManualClock(),
        batch_max_ms=1,
        sleep=fake_sleep,
        capacity=capacity,
    )


async def test_messages_are_acked_only_after_the_commit_and_bad_ones_dead_lettered() -> None:
    sink, acked, sleeps = _Sink(), [], []
    p = _pipeline(sink, acked, sleeps)
    p.submit(_raw("community/s/b1/smoke/SD-1/telemetry", b'{"ts": 5}', 1))
    p.submit(_raw("community/s/b1/smoke/SD-1/telemetry", b"not json", 2))
    p.submit(_raw("community/s/b1/toaster/T/telemetry", b"{}", 3))
    p.submit(_raw("community/s/b1/screen/S/cmd", b"{}", 4))  # our own output: ignored, acked
    await p.drain()
    (batch,) = sink.batches
    assert [m.ts_ms for m in batch.messages] == [5]
    assert [(stage, raw.mid) for raw, stage, _ in batch.dead] == [("decode", 2), ("topic", 3)]
    assert acked == [1, 2, 3, 4]


async def test_spool_refusal_keeps_messages_unacked_and_retries() -> None:
    sink, acked, sleeps = _Sink(failures=2), [], []
    p = _pipeline(sink, acked, sleeps)
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0)
    p.submit(_raw("community/s/b1/smoke/SD-1/telemetry", b'{"ts": 5}', 7))
    for _ in range(200):
        if acked:
            break
        await asyncio.sleep(0.005)
    assert acked == [7]
    assert sleeps == [1.0, 1.0]  # two refusals, two waits, then the commit went through
    assert p.commit_error is None
    p.stop()
    await task


async def test_drain_gives_up_when_the_spool_refuses_leaving_messages_in_the_broker() -> None:
    sink, acked, sleeps = _Sink(failures=99), [], []
    p = _pipeline(sink, acked, sleeps)
    p.submit(_raw("community/s/b1/smoke/SD-1/telemetry", b'{"ts": 5}', 7))
    await p.drain()
    assert acked == [] and sleeps == []
    assert p.commit_error is not None and "disk is full" in p.commit_error


async def test_the_inbox_has_room_until_capacity_and_again_after_a_commit() -> None:
    sink, acked, sleeps = _Sink(), [], []
    p = _pipeline(sink, acked, sleeps, capacity=3)
    for mid in range(1, 4):
        assert p.wait_for_room(0.0) is True
        p.submit(_raw("community/s/b1/smoke/SD-1/telemetry", b"{}", mid))
    t0 = time.monotonic()
    assert p.wait_for_room(0.05) is False  # full: the MQTT thread waits, then reads nothing
    assert time.monotonic() - t0 >= 0.04
    waiter = asyncio.create_task(asyncio.to_thread(p.wait_for_room, 5.0))
    await p.drain()  # the batch is taken: room again, the waiting thread wakes at once
    assert await asyncio.wait_for(waiter, 2.0) is True
    assert p.queued == 0 and p.queued_peak == 3 and acked == [1, 2, 3]


async def test_an_alarm_from_both_connections_reaches_the_hook_once_and_is_stored_once() -> None:
    sink, hooked = _Sink(), []
    p = IngestPipeline(
        root="community", site="s", decode=_decode, sink=sink, ack=len,
        alarm_hook=lambda m: hooked.append(m.ts_ms), metrics=GatewayMetrics(),
        clock=ManualClock(), batch_max_ms=1,
    )  # fmt: skip
    topic = "community/s/b1/smoke/SD-1/event"
    p.alarm_only(_raw(topic, b'{"ts": 7, "event": "alarm"}', 0))  # the fast path: first
    p.submit(_raw(topic, b'{"ts": 7, "event": "alarm"}', 1))  # the main connection's copy
    p.submit(_raw(topic, b'{"ts": 8, "event": "alarm"}', 2))  # a new alarm of the device
    p.alarm_only(_raw(topic, b'{"ts": 8, "event": "alarm"}', 0))
    p.alarm_only(_raw(topic, b'{"ts": 9, "event": "fault"}', 0))  # not an alarm: ignored
    await p.drain()
    assert hooked == [7, 8]
    assert p.queued == 0 and [m.ts_ms for b in sink.batches for m in b.messages] == [7, 8]
