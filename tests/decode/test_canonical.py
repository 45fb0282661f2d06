"""Every kind and channel of CONTRACT.md, through the canonical profiles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.decode import DeviceMessage, SpoolClass
from gateway.decode.decoder import MIN_TS_MS
from gateway.errors import DecodeError
from tests.decode.conftest import RECEIVED_MS, Decode, card_hash

TS = RECEIVED_MS - 5_000
DETECTOR_EVENTS = ["alarm", "clear", "fault", "fault_clear", "tamper", "test", "low_battery"]


def js(**payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_smoke_telemetry_keeps_contract_fields_as_floats(decode: Decode) -> None:
    msg = decode("smoke", "telemetry", js(ts=TS, smoke=0.12, temp=24.5, battery=87, rssi=-71))
    assert isinstance(msg, DeviceMessage)
    assert msg.fields == {"smoke": 0.12, "temp": 24.5, "battery": 87.0, "rssi": -71.0}
    assert all(type(v) is float for v in msg.fields.values())
    assert (msg.ts_ms, msg.ts_source, msg.received_ms) == (TS, "device", RECEIVED_MS)
    assert msg.event is None
    assert msg.tags == {}
    assert msg.spool_class is SpoolClass.TELEMETRY


@pytest.mark.parametrize("kind", ["heat", "callpoint", "access", "camera", "screen", "voice"])
def test_telemetry_of_every_kind_keeps_readings(decode: Decode, kind: str) -> None:
    msg = decode(kind, "telemetry", js(ts=TS, temp=31.5, battery=55, rssi=-80))
    assert msg.fields == {"temp": 31.5, "battery": 55.0, "rssi": -80.0}
    assert msg.ts_ms == TS


def test_missing_ts_uses_receive_time(decode: Decode) -> None:
    msg = decode("smoke", "telemetry", js(smoke=0.1))
    assert (msg.ts_ms, msg.ts_source) == (RECEIVED_MS, "gateway")
    assert "device_ts_ms" not in msg.fields


@pytest.mark.parametrize(
    "device_ts",
    [-1, 0, MIN_TS_MS - 1, RECEIVED_MS + 86_400_001, 10**30, 1.7e300],
    ids=["negative", "epoch", "before-2000", "over-a-day-ahead", "huge-int", "huge-float"],
)
def test_implausible_ts_is_replaced_by_receive_time(decode: Decode, device_ts: float) -> None:
    msg = decode("smoke", "telemetry", js(ts=device_ts, smoke=0.1))
    assert (msg.ts_ms, msg.ts_source) == (RECEIVED_MS, "gateway")
    kept = msg.fields["device_ts_ms"]
    assert type(kept) is int
    assert kept == max(min(round(device_ts), 2**63 - 1), -(2**63))


@pytest.mark.parametrize("device_ts", [MIN_TS_MS, RECEIVED_MS + 86_400_000, TS + 0.6])
def test_plausible_ts_is_kept(decode: Decode, device_ts: float) -> None:
    msg = decode("smoke", "telemetry", js(ts=device_ts))
    assert (msg.ts_ms, msg.ts_source) == (round(device_ts), "device")
    assert type(msg.ts_ms) is int


def test_unknown_numeric_and_bool_fields_are_kept_others_ignored(decode: Decode) -> None:
    payload = js(
        ts=TS,
        smoke=0.2,
        voltage=3,
        lux=12.5,
        door_open=True,
        label="hall",
        nested={"a": 1},
        items=[1, 2],
        nothing=None,
        huge=10**40,
    )
    msg = decode("smoke", "telemetry", payload)
    assert msg.fields == {"smoke": 0.2, "voltage": 3.0, "lux": 12.5, "door_open": True}
    assert type(msg.fields["voltage"]) is float


def test_extra_fields_never_shadow_what_the_gateway_writes(decode: Decode) -> None:
    payload = js(ts=-5, device_ts_ms=1, card_hash=2, card=3, online=True, event=4, ok=1)
    msg = decode("smoke", "telemetry", payload)
    assert msg.fields == {"device_ts_ms": -5}


@pytest.mark.parametrize("kind", ["smoke", "heat"])
@pytest.mark.parametrize("event", DETECTOR_EVENTS)
def test_detector_events(decode: Decode, kind: str, event: str) -> None:
    msg = decode(kind, "event", js(ts=TS, event=event))
    assert msg.event == event
    assert msg.is_alarm is (event == "alarm")
    assert msg.spool_class is (SpoolClass.ALARM if event == "alarm" else SpoolClass.EVENT)


def test_detector_alarm_carries_readings(decode: Decode) -> None:
    msg = decode("heat", "event", js(ts=TS, event="alarm", temp=71.0, smoke=3.2))
    assert msg.fields == {"temp": 71.0, "smoke": 3.2}


@pytest.mark.parametrize("event", ["alarm", "clear"])
def test_callpoint_events(decode: Decode, event: str) -> None:
    msg = decode("callpoint", "event", js(ts=TS, event=event))
    assert msg.event == event
    assert msg.is_alarm is (event == "alarm")


@pytest.mark.parametrize(
    ("kind", "event"),
    [("callpoint", "fault"), ("smoke", "fire"), ("camera", "alarm"), ("screen", "alarm"),
     ("access", "Alarm"), ("voice", "swipe")],
)  # fmt: skip
def test_event_not_in_the_contract_for_its_kind_is_rejected(
    decode: Decode, kind: str, event: str
) -> None:
    with pytest.raises(DecodeError, match=rf"{kind}/event: unknown event '{event}'"):
        decode(kind, "event", js(ts=TS, event=event))


def test_event_must_be_present_and_a_string(decode: Decode) -> None:
    with pytest.raises(DecodeError, match="missing the event field"):
        decode("smoke", "event", js(ts=TS, smoke=1.0))
    with pytest.raises(DecodeError, match="field 'event': expected a string, got int"):
        decode("smoke", "event", js(ts=TS, event=1))


SWIPE = {"ts": TS, "event": "swipe", "card": "0012345678", "door": "n-gate-1", "dir": "in"}


@pytest.mark.parametrize("granted", [True, False])
def test_access_swipe(decode: Decode, granted: bool) -> None:
    msg = decode("access", "event", js(**SWIPE, granted=granted))
    assert msg.event == "swipe"
    assert msg.tags == {"door": "n-gate-1", "checkpoint": "n-gate", "dir": "in"}
    assert msg.fields == {
        "card_hash": card_hash("0012345678"),
        "granted": granted,
        "passage": granted,
    }
    assert "0012345678" not in repr(msg)
    assert msg.spool_class is SpoolClass.EVENT
    assert not msg.is_alarm


def test_swipe_at_unknown_door_takes_the_readers_checkpoint(decode: Decode) -> None:
    msg = decode("access", "event", js(**{**SWIPE, "door": "side-door"}, granted=True))
    assert msg.tags["checkpoint"] == "n-gate"
    msg = decode("access", "event", js(**{**SWIPE, "door": "side-door"}, granted=True), "AR-9")
    assert "checkpoint" not in msg.tags


def test_swipe_without_card_or_dir_is_accepted(decode: Decode) -> None:
    msg = decode("access", "event", js(ts=TS, event="swipe", door="n-gate-1", granted=True))
    assert msg.tags == {"door": "n-gate-1", "checkpoint": "n-gate"}
    assert "card_hash" not in msg.fields


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"door": None}, "missing required field 'door'"),
        ({"granted": None}, "missing required field 'granted'"),
        ({"granted": "yes"}, "field 'granted': expected true or false, got str"),
        ({"dir": "up"}, "field 'dir': expected 'in' or 'out'"),
        ({"door": "gate 1"}, r"field 'door': 'gate 1' is not \[A-Za-z0-9_-\]"),
        ({"door": 7}, "field 'door': expected a string, got int"),
        ({"card": 12345678901}, "field 'card': expected a string, got int"),
    ],
)
def test_bad_swipe_is_rejected_without_echoing_the_card(
    decode: Decode, change: dict[str, Any], reason: str
) -> None:
    payload = {**SWIPE, "granted": True, **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(DecodeError, match=f"access/event:? {reason}") as err:
        decode("access", "event", js(**payload))
    assert "12345678" not in str(err.value)


@pytest.mark.parametrize("event", ["door_forced", "door_held_open"])
def test_door_trouble_events(decode: Decode, event: str) -> None:
    msg = decode("access", "event", js(ts=TS, event=event, door="n-gate-1"))
    assert msg.tags == {"door": "n-gate-1", "checkpoint": "n-gate"}
    assert msg.fields == {}
    with pytest.raises(DecodeError, match="missing required field 'door'"):
        decode("access", "event", js(ts=TS, event=event))


def test_camera_line_crossing(decode: Decode) -> None:
    payload = js(
        ts=TS, event="line_crossing", checkpoint="n-gate", period_s=5, **{"in": 3, "out": 1}
    )
    msg = decode("camera", "event", payload, "CAM-Z", "b12")
    assert msg.tags == {"checkpoint": "n-gate"}
    assert msg.fields == {
        "in": 3,
        "out": 1,
        "period_s": 5.0,
        "cumulative": False,
        "retransmission": False,
    }
    assert type(msg.fields["in"]) is int
    assert not msg.is_alarm


def test_line_crossing_checkpoint_comes_from_the_site_model(decode: Decode) -> None:
    payload = js(ts=TS, event="line_crossing", **{"in": 2.0, "out": 0})
    assert decode("camera", "event", payload, "CAM-1").tags == {"checkpoint": "n-gate"}
    with pytest.raises(DecodeError, match="line_crossing needs 'checkpoint'"):
        decode("camera", "event", payload, "CAM-Z", "b12")


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        ({"in": -1, "out": 0}, "field 'in': must be between 0"),
        ({"in": 1.5, "out": 0}, "field 'in': expected a whole number, got float"),
        ({"in": 1}, "missing required field 'out'"),
        ({"in": True, "out": 0}, "field 'in': expected a whole number, got bool"),
    ],
)
def test_bad_line_crossing_counts(decode: Decode, counts: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "event", js(ts=TS, event="line_crossing", checkpoint="n-gate", **counts))


def test_camera_people_count(decode: Decode) -> None:
    msg = decode("camera", "event", js(ts=TS, event="people_count", zone="b12-lobby", count=17))
    assert (msg.event, msg.tags, msg.fields) == (
        "people_count",
        {"zone": "b12-lobby"},
        {"count": 17},
    )


@pytest.mark.parametrize("event", ["fire", "smoke"])
def test_camera_fire_and_smoke_are_alarms(decode: Decode, event: str) -> None:
    msg = decode("camera", "event", js(ts=TS, event=event, zone="b12-f3", confidence=0.87))
    assert msg.tags == {"zone": "b12-f3"}
    assert msg.fields == {"confidence": 0.87}
    assert msg.is_alarm
    assert msg.spool_class is SpoolClass.ALARM


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"zone": "b12-f3", "confidence": 1.5}, "'confidence': 1.5 is not between 0 and 1"),
        ({"zone": "b12-f3"}, "missing required field 'confidence'"),
        ({"confidence": 0.9}, "fire needs 'zone'"),
    ],
)
def test_bad_camera_fire(decode: Decode, payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "event", js(ts=TS, event="fire", **payload))


@pytest.mark.parametrize("kind", ["smoke", "access", "camera", "screen", "voice"])
@pytest.mark.parametrize("payload", [b"online", b'"online"', b" offline\n", b'"offline"'], ids=repr)
def test_bare_status(decode: Decode, kind: str, payload: bytes) -> None:
    msg = decode(kind, "status", payload)
    state = payload.strip().strip(b'"').decode()
    assert msg.fields == {"state": state, "online": state == "online"}
    assert (msg.ts_ms, msg.ts_source) == (RECEIVED_MS, "gateway")


def test_json_status(decode: Decode) -> None:
    msg = decode("screen", "status", js(ts=TS, state="online", fw="1.4.2", config_hash="ab12"))
    assert msg.fields == {"state": "online", "online": True, "fw": "1.4.2", "config_hash": "ab12"}
    assert msg.ts_ms == TS
    msg = decode("smoke", "status", js(ts=TS, state="offline"))
    assert msg.fields == {"state": "offline", "online": False}
    assert decode("voice", "status", js(fw="2.0")).fields == {
        "fw": "2.0",
        "state": "online",
        "online": True,
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"sleeping", "invalid JSON"),
        (b'"sleeping"', "expected a JSON object, got str"),
        (b"[]", "expected a JSON object, got array"),
        (js(fw=142), "field 'fw': expected a string, got int"),
    ],
)
def test_bad_status(decode: Decode, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "status", payload)


def test_ack(decode: Decode) -> None:
    msg = decode("screen", "ack", js(cmd_id="c-1", ok=True))
    assert msg.fields == {"cmd_id": "c-1", "ok": True}
    msg = decode("access", "ack", js(cmd_id="c-2", ok=False, error="door jammed"))
    assert msg.fields == {"cmd_id": "c-2", "ok": False, "error": "door jammed"}
    assert msg.spool_class is SpoolClass.TELEMETRY


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ok": True}, "missing required field 'cmd_id'"),
        ({"cmd_id": "c"}, "missing required field 'ok'"),
        ({"cmd_id": "c", "ok": "yes"}, "field 'ok': expected true or false, got str"),
        ({"cmd_id": 5, "ok": True}, "field 'cmd_id': expected a string, got int"),
    ],
)
def test_bad_ack(decode: Decode, payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=f"voice/ack:? {reason}"):
        decode("voice", "ack", js(**payload))


def test_camera_frame_is_not_parsed(decode: Decode) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10 + b"\xff\xd9"
    msg = decode("camera", "frame", jpeg)
    assert msg.fields == {"bytes": len(jpeg)}
    assert (msg.ts_ms, msg.ts_source, msg.event) == (RECEIVED_MS, "gateway", None)


def test_frame_from_a_non_camera_or_empty_is_rejected(decode: Decode) -> None:
    with pytest.raises(DecodeError, match="smoke/frame: only cameras send frames"):
        decode("smoke", "frame", b"\xff\xd8")
    with pytest.raises(DecodeError, match="camera/frame: empty frame"):
        decode("camera", "frame", b"")
