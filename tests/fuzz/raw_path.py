"""The raw MQTT message path in-process: real decoder, shipped profiles, a recording sink.

Shared by the hypothesis tests and the optional atheris harness (`atheris_raw.py`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.clock import ManualClock
from gateway.decode import Decoder, DeviceMessage, ProfileSet
from gateway.errors import TopicError
from gateway.ingest.mqtt import RawMessage
from gateway.ingest.pipeline import Batch, BatchSink, IngestPipeline
from gateway.ingest.ratelimit import DeviceRateLimiter
from gateway.ingest.topic import FireActionTopic, parse_topic
from gateway.metrics import GatewayMetrics
from gateway.site import SiteIndex, SiteModel

ROOT = "community"
SITE_ID = "shazui"
PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_configs"
SALT = b"fuzz-salt"

SITE = {
    "name": SITE_ID,
    "buildings": [
        {
            "id": "b12",
            "floors": 10,
            "zones": [
                {
                    "id": "b12-f3",
                    "floor": 3,
                    "smoke": ["SD-1", "HX-1"],
                    "heat": ["HD-1"],
                    "callpoints": ["CP-1"],
                }
            ],
            "cameras": ["CAM-Z"],
            "screens": ["SCR-1"],
            "voice": ["VT-1", "AMP-1"],
        }
    ],
    "checkpoints": [
        {
            "id": "n-gate",
            "building": "gates",
            "doors": ["n-gate-1", "AC-01-door-0"],
            "access": ["AR-1", "AC-01"],
            "cameras": ["CAM-1", "HIK-1"],
        }
    ],
    "profile_rules": [
        {"kind": "smoke", "prefix": "HX-", "model": "hx-jtyjg"},
        {"kind": "access", "prefix": "AC-", "model": "dh-asc"},
        {"kind": "camera", "prefix": "HIK-", "model": "hik-pc"},
        {"kind": "voice", "prefix": "AMP-", "model": "generic-amp"},
    ],
}


@functools.cache
def profiles() -> ProfileSet:
    """The shipped firmware profiles (loaded once)."""
    return ProfileSet.load(PROFILES_DIR)


@functools.cache
def site_index() -> SiteIndex:
    """The small site model the fuzz topics address."""
    return SiteIndex(SiteModel.model_validate(SITE))


class RecordingSink(BatchSink):
    """Keeps every committed batch."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def commit(self, batch: Batch) -> None:
        self.batches.append(batch)


@dataclass
class Outcome:
    """What the pipeline did with a list of raw messages."""

    acked: list[int] = field(default_factory=list)
    alarms: list[DeviceMessage] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)


def expected_ignored(topic: str) -> bool:
    """True for the gateway's own outbound topics, which the pipeline acks and drops."""
    try:
        return parse_topic(topic, ROOT, SITE_ID) is None
    except TopicError:
        return False


def run_raw(
    items: Sequence[tuple[str, bytes]], *, limiter: DeviceRateLimiter | None = None
) -> Outcome:
    """Submit every (topic, payload) like the MQTT thread does, then drain the pipeline."""
    clock = ManualClock()
    out = Outcome()
    sink = RecordingSink()

    def ack(raws: Sequence[RawMessage]) -> int:
        out.acked.extend(r.mid for r in raws)
        return len(raws)

    pipeline = IngestPipeline(
        root=ROOT,
        site=SITE_ID,
        decode=Decoder(profiles(), site_index(), SALT).decode,
        sink=sink,
        ack=ack,
        alarm_hook=out.alarms.append,
        metrics=GatewayMetrics(),
        clock=clock,
        batch_max_ms=1,
        batch_max_msgs=7,  # small batches: several commits per example
        limiter=limiter,
    )
    for mid, (topic, payload) in enumerate(items, start=1):
        received_ms = clock.wall_ms()
        pipeline.submit(RawMessage(topic, payload, mid, 1, 1, received_ms, clock.monotonic()))
    asyncio.run(pipeline.drain())
    out.batches = sink.batches
    return out


def check_outcome(items: Sequence[tuple[str, bytes]], out: Outcome) -> None:
    """Every message acked once and placed in exactly one of the outcome classes."""
    n = len(items)
    assert sorted(out.acked) == list(range(1, n + 1)), "each message acked exactly once"
    raws = [r for b in out.batches for r in b.raws]
    assert sorted(r.mid for r in raws) == list(range(1, n + 1))
    for batch in out.batches:
        ignored = sum(expected_ignored(r.topic) for r in batch.raws)
        placed = len(batch.messages) + len(batch.dead) + len(batch.actions) + batch.rate_limited
        assert placed + ignored == len(batch.raws), (
            f"{len(batch.raws)} raws but {len(batch.messages)} messages, {len(batch.dead)} dead,"
            f" {len(batch.actions)} actions, {batch.rate_limited} limited, {ignored} ignored"
        )
        for m in batch.messages:
            assert isinstance(m, DeviceMessage)
        for _, action_raw in batch.actions:
            assert not expected_ignored(action_raw.topic)
        for raw, stage, reason in batch.dead:
            assert stage in ("topic", "decode"), stage
            assert reason, f"dead letter without a reason for {raw.topic!r}"
    for alarm in out.alarms:
        assert alarm.is_alarm


def dead_letter_reasons(out: Outcome) -> list[tuple[str, str]]:
    return [(stage, reason) for b in out.batches for _, stage, reason in b.dead]


def fire_actions(out: Outcome) -> list[FireActionTopic]:
    return [a for b in out.batches for a, _ in b.actions]
