"""Nothing a device sends may raise anything but DecodeError."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decode import Decoder, DeviceMessage
from gateway.errors import DecodeError
from gateway.ingest.topic import DEVICE_KINDS, INBOUND_CHANNELS, DeviceTopic
from tests.decode.conftest import RECEIVED_MS, SALT, Decode

JSON_CHANNELS = ["telemetry", "event", "status", "ack"]


@pytest.mark.parametrize("channel", JSON_CHANNELS)
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty payload"),
        (b"   ", "empty payload"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"smoke": "\xff"}', "not UTF-8"),
        (b'{"smoke": 0.1', "invalid JSON"),
        (b'{"smoke": NaN}', "invalid JSON"),
        (b'{"smoke": Infinity}', "invalid JSON"),
        (b'{"smoke": 1e999}', "invalid JSON"),
        (b'{"a": 1}{"b": 2}', "invalid JSON"),
        (b"[" * 50_000, "invalid JSON"),
        (b"[1, 2, 3]", "expected a JSON object, got array"),
        (b"42", "expected a JSON object, got int"),
        (b"null", "expected a JSON object, got null"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_malformed_payload_gives_a_reason(
    decode: Decode, channel: str, payload: bytes, reason: str
) -> None:
    with pytest.raises(DecodeError, match=f"smoke/{channel}: .*{reason}"):
        decode("smoke", channel, payload)


def test_oversize_payload_is_rejected_before_parsing(decoder: Decoder) -> None:
    topic = DeviceTopic("shazui", "b12", "smoke", "SD-1", "telemetry")
    small = Decoder(decoder._profiles, decoder._site, SALT, max_payload_bytes=1024)
    head = b'{"smoke": 0.1, "pad": "'
    fits = head + b"x" * (1024 - len(head) - 2) + b'"}'
    assert len(fits) == 1024
    assert small.decode(topic, fits, RECEIVED_MS).fields == {"smoke": 0.1}
    with pytest.raises(DecodeError, match="payload of 1025 bytes exceeds 1024 bytes"):
        small.decode(topic, b" " * 1025, RECEIVED_MS)
    huge = b'{"smoke": 1, "pad": "' + b"x" * (256 * 1024) + b'"}'
    with pytest.raises(DecodeError, match="exceeds 262144 bytes"):
        decoder.decode(topic, huge, RECEIVED_MS)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"smoke": "high"}, "field 'smoke': expected a number, got str"),
        ({"battery": True}, "field 'battery': expected a number, got bool"),
        ({"temp": [24]}, "field 'temp': expected a number, got array"),
        ({"rssi": {"v": 1}}, "field 'rssi': expected a number, got object"),
        ({"temp": 10**400}, "field 'temp': number out of range"),
        ({"ts": "yesterday"}, "field 'ts': expected a number, got str"),
        ({"ts": True}, "field 'ts': expected a number, got bool"),
    ],
)
def test_wrong_types_are_rejected(decode: Decode, payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=f"^smoke/telemetry {reason}$"):
        decode("smoke", "telemetry", json.dumps(payload).encode())


def test_nested_junk_is_ignored(decode: Decode) -> None:
    junk: Any = {"x": [1, {"y": None}]}
    for i in range(200):
        junk = {"deeper": junk} if i % 2 else [junk, None]
    payload = json.dumps({"smoke": 0.3, "junk": junk, "": 1, "a b": 2, "k" * 65: 3}).encode()
    assert decode("smoke", "telemetry", payload).fields == {"smoke": 0.3}


def test_many_extra_fields_are_capped(decode: Decode) -> None:
    payload = json.dumps({f"x{i}": i for i in range(500)}).encode()
    fields = decode("smoke", "telemetry", payload).fields
    assert fields == {f"x{i}": float(i) for i in range(64)}


# -- property: DeviceMessage or DecodeError, never anything else ------------------------

DEVICES = {
    "smoke": ["SD-1", "HX-1"],
    "heat": ["HD-1"],
    "callpoint": ["CP-1"],
    "access": ["AR-1", "AC-01"],
    "camera": ["CAM-1", "CAM-Z", "HIK-1"],
    "screen": ["SCR-1"],
    "voice": ["VT-1", "AMP-1"],
}
topics = st.builds(
    lambda kind_dev, channel: DeviceTopic("shazui", "gates", kind_dev[0], kind_dev[1], channel),
    st.sampled_from([(k, d) for k in sorted(DEVICE_KINDS) for d in DEVICES[k]]),
    st.sampled_from(sorted(INBOUND_CHANNELS)),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Keys the profiles read, so that typed paths (not just extras) see arbitrary values.
KNOWN_KEYS = [
    "ts", "event", "smoke", "temp", "battery", "rssi", "card", "door", "dir", "granted",
    "checkpoint", "in", "out", "period_s", "zone", "count", "confidence", "state", "fw",
    "config_hash", "cmd_id", "ok", "error", "time", "smokeDensity", "eventType",
    "alarmStatus", "Code", "CardNo", "Door", "Type", "Status", "Method", "UTC", "dateTime",
    "peopleCounting", "isDataRetransmission", "firmware",
]  # fmt: skip
EVENT_VALUES = st.sampled_from(
    ["alarm", "clear", "swipe", "door_forced", "line_crossing", "people_count", "fire",
     "smoke", "AccessControl", "PeopleCounting", "SMOKE_ALARM", "BreakIn", 1, 0]
)  # fmt: skip
objects = st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.text(max_size=6), json_values | EVENT_VALUES, max_size=10
)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def _check(decoder: Decoder, topic: DeviceTopic, payload: bytes) -> None:
    try:
        msg = decoder.decode(topic, payload, RECEIVED_MS)
    except DecodeError as exc:
        assert str(exc).startswith(f"{topic.kind}/{topic.channel}")
        return
    assert isinstance(msg, DeviceMessage)
    assert type(msg.ts_ms) is int
    assert msg.ts_source in ("device", "gateway")
    for name, value in msg.fields.items():
        assert type(name) is str
        assert type(value) in (int, float, bool, str)
        if type(value) is float:
            assert math.isfinite(value)
        if type(value) is int:
            assert -(2**63) <= value < 2**63
    assert all(type(v) is str and v for v in msg.tags.values())


@fuzz(600)
@given(topic=topics, payload=st.binary(max_size=300))
def test_arbitrary_bytes(decoder: Decoder, topic: DeviceTopic, payload: bytes) -> None:
    _check(decoder, topic, payload)


@fuzz(800)
@given(topic=topics, value=json_values | objects)
def test_arbitrary_json(decoder: Decoder, topic: DeviceTopic, value: Any) -> None:
    _check(decoder, topic, json.dumps(value).encode())


# Valid payloads per (kind, device, channel): mutating a few keys of these explores the
# near-valid space where decoding gets furthest.
_T = 1_795_475_300_000
VALID: dict[tuple[str, str, str], dict[str, Any]] = {
    ("smoke", "SD-1", "telemetry"): {"ts": _T, "smoke": 0.1, "temp": 20, "battery": 80},
    ("smoke", "SD-1", "event"): {"ts": _T, "event": "alarm", "smoke": 3.2},
    ("heat", "HD-1", "event"): {"ts": _T, "event": "fault", "temp": 70},
    ("callpoint", "CP-1", "event"): {"ts": _T, "event": "alarm"},
    ("smoke", "HX-1", "telemetry"): {"time": _T // 1000, "smokeDensity": 3, "signal": -80},
    ("smoke", "HX-1", "event"): {"time": _T // 1000, "eventType": "SMOKE_ALARM", "alarmStatus": 1},
    ("access", "AR-1", "event"): {
        "ts": _T, "event": "swipe", "card": "0012345678", "door": "n-gate-1", "dir": "in",
        "granted": True,
    },
    ("access", "AC-01", "event"): {
        "Code": "AccessControl", "CardNo": "A1B2", "Door": 0, "Method": 1, "Status": 1,
        "Type": "Entry", "UTC": _T // 1000,
    },
    ("camera", "CAM-1", "event"): {"ts": _T, "event": "line_crossing", "in": 3, "out": 1},
    ("camera", "CAM-Z", "event"): {"ts": _T, "event": "fire", "zone": "b12-f3", "confidence": 0.9},
    ("camera", "HIK-1", "event"): {
        "eventType": "PeopleCounting", "dateTime": "2026-11-24T08:15:00+08:00",
        "isDataRetransmission": False, "peopleCounting": {"enter": 5, "exit": 2},
    },
    ("screen", "SCR-1", "status"): {"ts": _T, "state": "online", "fw": "1.0"},
    ("voice", "AMP-1", "status"): {"state": "online", "firmware": "3.1"},
    ("voice", "VT-1", "ack"): {"cmd_id": "c-1", "ok": False, "error": "busy"},
}  # fmt: skip


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[DeviceTopic, dict[str, Any]]:
    (kind, device, channel), base = draw(st.sampled_from(sorted(VALID.items())))
    payload = dict(base)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted({*payload, *KNOWN_KEYS})))
        if draw(st.booleans()):
            payload.pop(key, None)
        else:
            payload[key] = draw(json_values | EVENT_VALUES)
    return DeviceTopic("shazui", "gates", kind, device, channel), payload


def test_the_valid_seeds_decode(decoder: Decoder) -> None:
    for (kind, device, channel), payload in VALID.items():
        topic = DeviceTopic("shazui", "gates", kind, device, channel)
        assert decoder.decode(topic, json.dumps(payload).encode(), RECEIVED_MS).topic == topic


@fuzz(800)
@given(case=near_valid())
def test_near_valid_payloads(decoder: Decoder, case: tuple[DeviceTopic, dict[str, Any]]) -> None:
    topic, payload = case
    _check(decoder, topic, json.dumps(payload).encode())


@fuzz(150)
@given(card=st.from_regex(r"[0-9A-F]{10,20}", fullmatch=True), extra=objects)
def test_card_number_never_reaches_the_message(
    decoder: Decoder, card: str, extra: dict[str, Any]
) -> None:
    for device, payload in (
        ("AR-1", {**extra, "event": "swipe", "card": card, "door": "n-gate-1", "granted": True}),
        ("AC-01", {**extra, "Code": "AccessControl", "CardNo": card, "Door": 0, "Status": 1}),
    ):
        topic = DeviceTopic("shazui", "gates", "access", device, "event")
        try:
            msg = decoder.decode(topic, json.dumps(payload).encode(), RECEIVED_MS)
        except DecodeError as exc:
            assert card not in str(exc)
        else:
            assert card not in repr(msg)
