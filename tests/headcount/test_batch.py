"""Decoded messages → head-count rows, through the real decoder and the shipped profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.decode import Decoder, DeviceMessage, ProfileSet
from gateway.headcount import HeadcountEngine, HeadcountSettings, build_batch, swipe_code
from gateway.headcount.batch import (
    AUTH_DENIED,
    AUTH_GRANTED,
    AUTH_NONE,
    PASS_IN,
    PASS_NODIR,
    PASS_NONE,
    PASS_OUT,
)
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex, SiteModel

PROFILES = Path(__file__).resolve().parents[2] / "firmware_configs"
NOW = ManualClock().wall_ms()
SITE = SiteModel.model_validate({
    "buildings": [{"id": "b1"}],
    "checkpoints": [
        {"id": "gate", "building": "gates", "doors": ["gate-d1", "DH-1-door-0"],
         "access": ["AR-1", "DH-1"], "cameras": ["CAM-1", "HIK-1"]},
        {"id": "lobby", "building": "b1", "doors": ["lobby-d1"], "access": ["AR-2"],
         "leads_to": ["b1"]},
    ],
    "profile_rules": [
        {"kind": "access", "prefix": "DH-", "model": "dh-asc"},
        {"kind": "camera", "prefix": "HIK-", "model": "hik-pc"},
    ],
})  # fmt: skip


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(ProfileSet.load(PROFILES), SiteIndex(SITE), b"salt")


def msg(decoder: Decoder, kind: str, device: str, payload: dict[str, Any],
        channel: str = "event", building: str = "gates") -> DeviceMessage:  # fmt: skip
    topic = DeviceTopic("s", building, kind, device, channel)
    return decoder.decode(topic, json.dumps(payload).encode(), NOW)


def swipe(door: str, granted: bool = True, **extra: Any) -> dict[str, Any]:
    return {"ts": NOW, "event": "swipe", "card": "0012345678", "door": door,
            "granted": granted, **extra}  # fmt: skip


def test_swipes_become_coded_rows_at_their_checkpoint(decoder: Decoder) -> None:
    messages = [
        msg(decoder, "access", "AR-1", swipe("gate-d1", dir="in")),
        msg(decoder, "access", "AR-1", swipe("gate-d1", granted=False, dir="in")),
        msg(decoder, "access", "AR-1", swipe("gate-d1")),  # no direction
        msg(decoder, "access", "AR-2", swipe("lobby-d1", dir="out"), building="b1"),
        # Dahua-style controller: Type Exit, Status 1 = granted, door channel 0
        msg(decoder, "access", "DH-1", {"Code": "AccessControl", "CardNo": "A1B2", "Door": 0,
                                         "Type": "Exit", "Status": 1, "UTC": NOW // 1000}),
        # the canonical profile counts swipes: its `passage` events count nothing
        msg(decoder, "access", "AR-1", {"ts": NOW, "event": "passage", "door": "gate-d1"}),
        msg(decoder, "access", "AR-1", {"ts": NOW, "event": "door_forced", "door": "gate-d1"}),
    ]  # fmt: skip
    batch = build_batch(messages, HeadcountEngine(SITE, HeadcountSettings(), ManualClock(),
                                                  site_id="s").index)  # fmt: skip
    assert batch.swipe_checkpoint.tolist() == [0, 0, 0, 1, 0]
    assert batch.swipe_code.tolist() == [
        swipe_code(PASS_IN, AUTH_GRANTED),
        swipe_code(PASS_NONE, AUTH_DENIED),
        swipe_code(PASS_NODIR, AUTH_GRANTED),
        swipe_code(PASS_OUT, AUTH_GRANTED),
        swipe_code(PASS_OUT, AUTH_GRANTED),
    ]
    assert batch.swipe_ts_ms.tolist()[:4] == [NOW] * 4
    assert swipe_code(PASS_NONE, AUTH_NONE) == 0  # never a row


def test_camera_counts_split_into_period_and_cumulative_rows(decoder: Decoder) -> None:
    hik = {
        "eventType": "PeopleCounting",
        "dateTime": "2026-11-24T08:15:00+08:00",
        "isDataRetransmission": False,
        "peopleCounting": {"enter": 1203, "exit": 988},
    }
    messages = [
        msg(decoder, "camera", "CAM-1", {"ts": NOW, "event": "line_crossing", "in": 3,
                                          "out": 1, "period_s": 5}),
        msg(decoder, "camera", "HIK-1", hik),
        msg(decoder, "camera", "HIK-1", {**hik, "isDataRetransmission": True}),
        msg(decoder, "camera", "CAM-1", {"ts": NOW, "event": "line_crossing",
                                          "checkpoint": "nowhere", "in": 1, "out": 0}),
        msg(decoder, "camera", "CAM-1", {"ts": NOW, "event": "people_count", "zone": "z",
                                          "count": 4}),
        msg(decoder, "camera", "CAM-1", {"ts": NOW}, channel="telemetry"),
    ]  # fmt: skip
    engine = HeadcountEngine(SITE, HeadcountSettings(), ManualClock(), site_id="s")
    batch = build_batch(messages, engine.index)
    assert (batch.count_checkpoint.tolist(), batch.count_in.tolist(),
            batch.count_out.tolist()) == ([0], [3], [1])  # fmt: skip
    assert batch.cumulative_camera.tolist() == [engine.index.camera_slot("HIK-1")]
    assert (batch.cumulative_in.tolist(), batch.cumulative_out.tolist()) == ([1203], [988])
    assert (batch.retransmissions, batch.unknown_checkpoint, len(batch)) == (1, 1, 2)


def test_swipe_at_a_door_no_checkpoint_lists_is_counted_as_unmapped(decoder: Decoder) -> None:
    messages = [msg(decoder, "access", "AR-9", swipe("back-door", dir="in"))]
    engine = HeadcountEngine(SITE, HeadcountSettings(), ManualClock(), site_id="s")
    batch = build_batch(messages, engine.index)
    assert (len(batch), batch.no_checkpoint) == (0, 1)
    engine.ingest(batch)
    assert engine.stats().no_checkpoint == 1


def test_built_batch_moves_occupancy_by_the_counting_rules(decoder: Decoder) -> None:
    clock = ManualClock()
    engine = HeadcountEngine(SITE, HeadcountSettings(), clock, site_id="s")
    messages = [
        msg(decoder, "access", "AR-1", swipe("gate-d1", dir="in")),  # gate counts by camera
        msg(decoder, "camera", "CAM-1", {"ts": NOW, "event": "line_crossing", "in": 2, "out": 0}),
        msg(decoder, "access", "AR-2", swipe("lobby-d1", dir="in"), building="b1"),
        msg(decoder, "access", "AR-2", swipe("lobby-d1", dir="in", granted=False), building="b1"),
    ]
    engine.ingest(build_batch(messages, engine.index))
    assert engine.occupancy() == {"b1": 1, "site": 3}
