"""Per-device rate limiting: a flooding device is limited, others and alarms are not."""

from __future__ import annotations

import json

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.ingest.mqtt import RawMessage
from gateway.ingest.pipeline import Batch, BatchSink, IngestPipeline
from gateway.ingest.ratelimit import AHEAD_MS, DeviceRateLimiter, message_time_s
from gateway.ingest.topic import DeviceTopic
from gateway.metrics import GatewayMetrics


def test_bucket_allows_burst_then_the_sustained_rate() -> None:
    limiter = DeviceRateLimiter(rate_per_s=10, burst=5)
    dev = ("b1", "smoke", "SD-1")
    assert [limiter.allow(dev, 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow(dev, 0.1) is True  # one token back after 0.1 s at 10/s
    assert limiter.allow(dev, 0.1) is False
    assert limiter.allow(("b1", "smoke", "SD-2"), 0.1) is True  # other devices unaffected
    assert limiter.flooding() == {dev: 3} and limiter.dropped_total == 3


class _Sink(BatchSink):
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def commit(self, batch: Batch) -> None:
        self.batches.append(batch)


def _decode(topic: DeviceTopic, payload: bytes, received_ms: int) -> DeviceMessage:
    body = json.loads(payload)
    return DeviceMessage(topic, received_ms, "device", received_ms, event=body.get("event"))


async def test_flooding_device_is_limited_but_its_alarms_pass_and_all_are_acked() -> None:
    sink, acked = _Sink(), []
    pipeline = IngestPipeline(
        root="c", site="s", decode=_decode, sink=sink,
        ack=lambda raws: acked.extend(r.mid for r in raws) or len(acked),  # type: ignore[func-returns-value]
        alarm_hook=lambda m: None, metrics=GatewayMetrics(), clock=ManualClock(),
        batch_max_msgs=10_000, limiter=DeviceRateLimiter(rate_per_s=1, burst=10),
    )  # fmt: skip
    for mid in range(1, 101):
        pipeline.submit(RawMessage("c/s/b1/smoke/SD-1/telemetry", b"{}", mid, 1, 1, 0, 0.0))
    pipeline.submit(RawMessage("c/s/b1/smoke/SD-1/event", b'{"event": "alarm"}', 101, 1, 1, 0, 0.0))
    await pipeline.drain()
    (batch,) = sink.batches
    assert len(batch.messages) == 11 and batch.rate_limited == 90
    assert batch.messages[-1].event == "alarm"
    assert len(acked) == 101  # limited messages are acknowledged, not redelivered forever


def test_message_time_is_the_device_clock_at_most_a_minute_past_receipt() -> None:
    assert message_time_s(1_000_000, 2_000_000) == 1_000.0  # a replayed backlog: its own time
    assert message_time_s(2_000_000 + AHEAD_MS + 5, 2_000_000) == (2_000_000 + AHEAD_MS) / 1000


def test_an_older_message_earns_no_tokens_back() -> None:
    limiter = DeviceRateLimiter(rate_per_s=1, burst=1)
    dev = ("b1", "smoke", "SD-1")
    assert limiter.allow(dev, 100.0) is True
    assert limiter.allow(dev, 50.0) is False  # out of order: the bucket's time stays at 100
    assert limiter.allow(dev, 100.5) is False  # half a token since t=100
    assert limiter.allow(dev, 101.0) is True


def _ts_decode(topic: DeviceTopic, payload: bytes, received_ms: int) -> DeviceMessage:
    ts = int(json.loads(payload)["ts"])
    return DeviceMessage(topic, ts, "device", received_ms)


async def _limited(payload_ts: list[int], received_ms: int) -> tuple[int, int]:
    """(stored, limited) for one device's messages, all received at the same instant."""
    sink = _Sink()
    pipeline = IngestPipeline(
        root="c", site="s", decode=_ts_decode, sink=sink, ack=len,
        alarm_hook=lambda m: None, metrics=GatewayMetrics(), clock=ManualClock(),
        batch_max_msgs=100_000, limiter=DeviceRateLimiter(rate_per_s=2, burst=10),
    )  # fmt: skip
    for mid, ts in enumerate(payload_ts, start=1):
        body = json.dumps({"ts": ts}).encode()
        pipeline.submit(
            RawMessage("c/s/b1/smoke/SD-1/telemetry", body, mid, 1, 1, received_ms, 0.0)
        )
    await pipeline.drain()
    return sum(len(b.messages) for b in sink.batches), sum(b.rate_limited for b in sink.batches)


async def test_a_replayed_backlog_is_not_a_flood() -> None:
    # An hour of one reading every 2 s, delivered at once after an outage: all of it is kept.
    now = 1_800_000_000_000
    backlog = [now - 3_600_000 + 2000 * i for i in range(1800)]
    assert await _limited(backlog, now) == (1800, 0)


async def test_a_repeated_or_runaway_clock_is_still_limited() -> None:
    now = 1_800_000_000_000
    assert await _limited([now] * 500, now) == (10, 490)  # the burst, then nothing
    # A clock racing ahead 1 s per message passes until it is AHEAD_MS ahead (61 messages,
    # the bucket stays full), then only the 9 tokens left: it cannot run ahead further.
    stored, limited = await _limited([now + 1000 * i for i in range(500)], now)
    assert (stored, limited) == (AHEAD_MS // 1000 + 1 + 9, 500 - 70)
