"""Hypothesis over the whole raw-message path: topic → lane → decoder/profile → batch → ack.

Whatever arrives (valid-looking or random topics; contract, vendor, mutated, huge or
non-UTF-8 payloads), `submit` and `drain` never raise, every message is acked exactly once
and each becomes a DeviceMessage, a fire action, an ignored outbound message, or a dead
letter with a reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest.ratelimit import DeviceRateLimiter
from gateway.ingest.topic import DEVICE_KINDS, INBOUND_CHANNELS, OUTBOUND_CHANNELS
from tests.fuzz.raw_path import (
    ROOT,
    SITE_ID,
    check_outcome,
    dead_letter_reasons,
    fire_actions,
    profiles,
    run_raw,
)

_FUZZ = settings(
    # FUZZ_EXAMPLES=5000 for a long run by hand; CI keeps it short.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Devices of the small site, including the prefixes that select vendor profiles.
KNOWN = {
    "smoke": ["SD-1", "HX-1"],
    "heat": ["HD-1"],
    "callpoint": ["CP-1"],
    "access": ["AR-1", "AC-01"],
    "camera": ["CAM-1", "HIK-1", "CAM-Z"],
    "screen": ["SCR-1"],
    "voice": ["VT-1", "AMP-1"],
}
BUILDING = {"access": "gates", "camera": "gates"}

_name = st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z")
_segment = st.one_of(_name, st.text(max_size=10), st.sampled_from(["", "+", "#", "..", " "]))


@st.composite
def device_topics(draw: st.DrawFn) -> str:
    """`community/shazui/{building}/{kind}/{device}/{channel}`, mostly plausible."""
    kind = draw(st.sampled_from(sorted(DEVICE_KINDS)) | _segment)
    device = draw(st.sampled_from(KNOWN.get(kind, ["X-1"])) | _name | _segment)
    building = draw(
        st.sampled_from([BUILDING.get(kind, "b12"), "b12", "gates", "nowhere"]) | _segment
    )
    channel = draw(st.sampled_from(sorted(INBOUND_CHANNELS | OUTBOUND_CHANNELS)) | _segment)
    return f"{ROOT}/{SITE_ID}/{building}/{kind}/{device}/{channel}"


plausible_topics = st.builds(
    lambda kd, channel: f"{ROOT}/{SITE_ID}/{BUILDING.get(kd[0], 'b12')}/{kd[0]}/{kd[1]}/{channel}",
    st.sampled_from([(k, d) for k, ds in sorted(KNOWN.items()) for d in ds]),
    st.sampled_from(["event", "telemetry", "status"]),
)

topics = st.one_of(
    device_topics(),
    device_topics(),
    st.builds(lambda i: f"{ROOT}/{SITE_ID}/alerts/fire/{i}/action", _name | _segment),
    st.builds(lambda p: f"{ROOT}/{SITE_ID}/{p}", st.text(max_size=40)),
    st.text(max_size=60),
    st.lists(_segment, min_size=1, max_size=9).map("/".join),
)

# JSON values that break types: the mutations of a contract field.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _vendor_keys() -> list[str]:
    keys = {
        "ts",
        "event",
        "smoke",
        "temp",
        "battery",
        "rssi",
        "card",
        "door",
        "dir",
        "granted",
        "in",
        "out",
        "period_s",
        "checkpoint",
        "zone",
        "count",
        "confidence",
        "state",
        "fw",
        "config_hash",
        "cmd_id",
        "ok",
        "error",
    }
    for p in profiles():
        keys.add(p.ts_field.split(".")[0])
        keys.update(path.split(".")[0] for path in p.fields.values())
        keys.update(src.field.split(".")[0] for src in p.events)
    return sorted(keys)


_EVENTS: list[Any] = [
    *sorted(
        {
            "alarm",
            "clear",
            "fault",
            "fault_clear",
            "tamper",
            "test",
            "low_battery",
            "swipe",
            "door_forced",
            "door_held_open",
            "line_crossing",
            "people_count",
            "fire",
            "smoke",
        }
        | {k for p in profiles() for src in p.events for k in src.map}
    ),
    1,
    0,
    True,
    None,
]


@st.composite
def contract_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A contract or vendor payload with some values mutated."""
    keys = _vendor_keys()
    obj: dict[str, Any] = {}
    if draw(st.booleans()):
        obj["event"] = draw(st.sampled_from(_EVENTS))
    ts = draw(
        st.sampled_from([1_795_475_306_083, 1_795_475_306, 0, -1, 2**63, 10**20, 1.5e12])
        | st.integers()
        | _scalar
    )
    obj[draw(st.sampled_from(["ts", "time", "UTC", "timestamp"]))] = ts
    for key in draw(st.lists(st.sampled_from(keys), max_size=8)):
        obj[key] = draw(
            st.one_of(
                st.floats(-1e3, 1e3), st.integers(-5, 300), _json_value, st.sampled_from(_EVENTS)
            )
        )
    for key, value in draw(st.dictionaries(st.text(max_size=70), _json_value, max_size=3)).items():
        obj[key] = value
    return obj


payloads = st.one_of(
    st.binary(max_size=200),
    contract_objects().map(lambda o: json.dumps(o).encode()),
    contract_objects().map(lambda o: json.dumps(o, ensure_ascii=False).encode("utf-16")),
    _json_value.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"online",
            b'"offline"',
            b"",
            b"null",
            b"{}",
            b"\xff\xd8\xff\xe0",
            b"\xed\xa0\x80",
            b'{"ts": NaN}',
            b'{"ts": Infinity}',
            b"{" * 5000,
        ]
    ),
    st.builds(lambda b, n: b * n, st.sampled_from([b" ", b"[", b'{"a":']), st.integers(1, 300_000)),
    contract_objects().map(lambda o: json.dumps({**o, "pad": "x" * 270_000}).encode()),
)

messages = st.lists(st.tuples(topics, payloads), min_size=1, max_size=25)


@_FUZZ
@given(messages)
def test_any_raw_message_is_acked_once_and_placed(items: list[tuple[str, bytes]]) -> None:
    out = run_raw(items)
    check_outcome(items, out)


@_FUZZ
@given(
    st.lists(
        st.tuples(
            plausible_topics,
            contract_objects().map(lambda o: json.dumps(o).encode()),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_contract_shaped_messages_with_a_tight_limiter(items: list[tuple[str, bytes]]) -> None:
    out = run_raw(items, limiter=DeviceRateLimiter(rate_per_s=1.0, burst=2.0))
    check_outcome(items, out)


def test_known_bad_inputs_become_dead_letters_with_reasons() -> None:
    items = [
        (f"{ROOT}/{SITE_ID}/b12/smoke/SD-1/telemetry", b"\xff\xfe not utf-8"),
        (f"{ROOT}/{SITE_ID}/b12/smoke/SD-1/telemetry", b'{"ts": "yesterday"}'),
        (f"{ROOT}/{SITE_ID}/b12/smoke/HX-1/event", b'{"time": 1, "eventType": 7}'),
        (f"{ROOT}/{SITE_ID}/b12/toaster/T-1/telemetry", b"{}"),
        (f"{ROOT}/{SITE_ID}/b12/smoke/SD-1/telemetry", b" " * 300_000),
        (f"{ROOT}/{SITE_ID}/b12/screen/SCR-1/cmd", b"{}"),
        (f"{ROOT}/{SITE_ID}/alerts/fire/inc-1/action", b'{"by": "x", "action": "ack"}'),
        (f"{ROOT}/{SITE_ID}/b12/smoke/SD-1/event", b'{"ts": 1795475306083, "event": "alarm"}'),
    ]
    out = run_raw(items)
    check_outcome(items, out)
    reasons = dead_letter_reasons(out)
    assert [s for s, _ in reasons] == ["decode", "decode", "decode", "topic", "decode"]
    assert "toaster" in reasons[3][1]
    assert [a.incident for a in fire_actions(out)] == ["inc-1"]
    assert len(out.alarms) == 1
