"""Per-device rate limiting: a flooding device is limited, others and alarms are not."""

from __future__ import annotations

import json

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.ingest.mqtt import RawMessage
from gateway.ingest.pipeline import Batch, BatchSink, IngestPipeline
from gateway.ingest.ratelimit import DeviceRateLimiter
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
