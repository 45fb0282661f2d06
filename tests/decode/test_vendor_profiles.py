"""Vendor payloads decode into exactly the canonical fields, in canonical units."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.decode import ProfileSet
from gateway.errors import DecodeError
from tests.decode.conftest import RECEIVED_MS, Decode, card_hash

TIME_S = RECEIVED_MS // 1000 - 60


def js(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# -- smoke/hx-jtyjg: NB-IoT smoke detector ---------------------------------------------


def test_hx_telemetry_is_scaled_and_renamed(decode: Decode) -> None:
    payload = {
        "imei": "865123045678901",
        "time": TIME_S,
        "smokeDensity": 12,
        "temperature": 245,
        "batteryLevel": 87,
        "signal": -71,
    }
    msg = decode("smoke", "telemetry", js(payload), "HX-1")
    assert msg.fields == pytest.approx(
        {"smoke": 0.12, "temp": 24.5, "battery": 87.0, "rssi": -71.0}
    )
    assert set(msg.fields) == {"smoke", "temp", "battery", "rssi"}
    assert (msg.ts_ms, msg.ts_source) == (TIME_S * 1000, "device")


@pytest.mark.parametrize(
    ("vendor", "event"),
    [
        ({"eventType": "SMOKE_ALARM"}, "alarm"),
        ({"eventType": "ALARM_CLEAR"}, "clear"),
        ({"eventType": "FAULT"}, "fault"),
        ({"eventType": "FAULT_RECOVER"}, "fault_clear"),
        ({"eventType": "TAMPER"}, "tamper"),
        ({"eventType": "SELF_TEST"}, "test"),
        ({"eventType": "LOW_BATTERY"}, "low_battery"),
        ({"alarmStatus": 1}, "alarm"),
        ({"alarmStatus": 0}, "clear"),
        ({"alarmStatus": 2}, "fault"),
        ({"alarmStatus": 1.0}, "alarm"),
        ({"alarmStatus": "1"}, "alarm"),
        ({"eventType": "SMOKE_ALARM", "alarmStatus": 0}, "alarm"),
    ],
)
def test_hx_event_codes_map_to_canonical_events(
    decode: Decode, vendor: dict[str, Any], event: str
) -> None:
    msg = decode("smoke", "event", js({"time": TIME_S, "smokeDensity": 320, **vendor}), "HX-1")
    assert msg.event == event
    assert msg.is_alarm is (event == "alarm")
    assert msg.fields == pytest.approx({"smoke": 3.2})


def test_hx_unknown_event_code_names_the_vendor_field(decode: Decode) -> None:
    with pytest.raises(
        DecodeError, match=r"unknown event code 9 in 'alarmStatus' of profile smoke/hx-jtyjg"
    ):
        decode("smoke", "event", js({"time": TIME_S, "alarmStatus": 9}), "HX-1")


def test_hx_wrong_type_names_canonical_and_vendor_field(decode: Decode) -> None:
    with pytest.raises(
        DecodeError,
        match=r"smoke/telemetry field 'smoke' \(vendor field 'smokeDensity' of profile "
        r"smoke/hx-jtyjg\): expected a number, got str",
    ):
        decode("smoke", "telemetry", js({"time": TIME_S, "smokeDensity": "high"}), "HX-1")


def test_hx_time_in_seconds_is_checked_for_plausibility(decode: Decode) -> None:
    # A millisecond value where seconds are expected lands far in the future.
    msg = decode("smoke", "telemetry", js({"time": RECEIVED_MS, "smokeDensity": 1}), "HX-1")
    assert (msg.ts_ms, msg.ts_source) == (RECEIVED_MS, "gateway")
    assert msg.fields["device_ts_ms"] == RECEIVED_MS * 1000


# -- access/dh-asc: Dahua-style door controller -----------------------------------------

DH_SWIPE = {
    "Code": "AccessControl",
    "CardNo": "A1B2C3D4E5",
    "Door": 0,
    "Method": 1,
    "Status": 1,
    "ErrorCode": 0,
    "Type": "Entry",
    "UTC": TIME_S,
    "UserID": "100234",
    "CardName": "Zhang San",
    "Index": 3,
}


def test_dahua_swipe_becomes_a_canonical_swipe(decode: Decode) -> None:
    msg = decode("access", "event", js(DH_SWIPE), "AC-01")
    assert msg.event == "swipe"
    assert (msg.ts_ms, msg.ts_source) == (TIME_S * 1000, "device")
    assert msg.tags == {"door": "AC-01-door-0", "checkpoint": "n-gate", "dir": "in"}
    assert msg.fields == {
        "card_hash": card_hash("A1B2C3D4E5"),
        "granted": True,
        "passage": True,
        "method": "card",
        "error_code": 0.0,
    }
    text = repr(msg)
    for personal in ("A1B2C3D4E5", "100234", "Zhang San"):
        assert personal not in text


@pytest.mark.parametrize(
    ("change", "tags", "fields"),
    [
        ({"Type": "Exit"}, {"dir": "out"}, {"granted": True, "passage": True}),
        ({"Status": 0, "ErrorCode": 16}, {"dir": "in"}, {"granted": False, "passage": False}),
        ({"Method": 15}, {"dir": "in"}, {"method": "face"}),
        ({"Method": 99}, {"dir": "in"}, {"method": 99.0}),
    ],
)
def test_dahua_swipe_variants(
    decode: Decode, change: dict[str, Any], tags: dict[str, str], fields: dict[str, Any]
) -> None:
    msg = decode("access", "event", js({**DH_SWIPE, **change}), "AC-01")
    assert tags.items() <= msg.tags.items()
    assert fields.items() <= msg.fields.items()


def test_dahua_door_channel_without_checkpoint(decode: Decode) -> None:
    msg = decode("access", "event", js({**DH_SWIPE, "Door": 3}), "AC-77")
    assert msg.tags == {"door": "AC-77-door-3", "dir": "in"}


@pytest.mark.parametrize(
    ("code", "event"), [("BreakIn", "door_forced"), ("DoorNotClosed", "door_held_open")]
)
def test_dahua_door_alarms(decode: Decode, code: str, event: str) -> None:
    msg = decode("access", "event", js({"Code": code, "Door": 0, "UTC": TIME_S}), "AC-01")
    assert msg.event == event
    assert msg.tags == {"door": "AC-01-door-0", "checkpoint": "n-gate"}


def test_dahua_unknown_status_is_rejected_without_the_card(decode: Decode) -> None:
    with pytest.raises(
        DecodeError, match=r"field 'granted' \(vendor field 'Status' of profile access/dh-asc\)"
    ) as err:
        decode("access", "event", js({**DH_SWIPE, "Status": 2}), "AC-01")
    assert "A1B2C3D4E5" not in str(err.value)


# -- camera/hik-pc: Hikvision-style cumulative people counting --------------------------

HIK = {
    "ipAddress": "10.0.0.5",
    "portNo": 80,
    "channelID": 1,
    "dateTime": "2026-11-24T08:15:00+08:00",
    "activePostCount": 1,
    "eventType": "PeopleCounting",
    "isDataRetransmission": False,
    "peopleCounting": {"enter": 1203, "exit": 988},
}


def test_hik_counters_pass_through_as_cumulative(decode: Decode) -> None:
    msg = decode("camera", "event", js(HIK), "HIK-1")
    assert msg.event == "line_crossing"
    assert msg.tags == {"checkpoint": "n-gate"}
    assert msg.fields == {"in": 1203, "out": 988, "cumulative": True, "retransmission": False}
    expected = datetime(2026, 11, 24, 0, 15, tzinfo=UTC).timestamp() * 1000
    assert (msg.ts_ms, msg.ts_source) == (int(expected), "device")


def test_hik_retransmission_and_naive_time(decode: Decode) -> None:
    payload = {**HIK, "isDataRetransmission": True, "dateTime": "2026-11-24T08:15:00"}
    msg = decode("camera", "event", js(payload), "HIK-1")
    assert msg.fields["retransmission"] is True
    assert msg.ts_ms == int(datetime(2026, 11, 24, 8, 15, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dateTime": "yesterday"}, "field 'dateTime' .*: 'yesterday' is not ISO-8601"),
        ({"dateTime": 1795475306}, "field 'dateTime' .*: expected an ISO-8601 string, got int"),
        ({"peopleCounting": {"enter": 3}}, "missing required field 'out'"),
        ({"peopleCounting": [1, 2]}, "missing required field 'in'"),
        ({"isDataRetransmission": "no"}, "field 'retransmission'.*expected true or false"),
        ({"eventType": "VMD"}, "unknown event code 'VMD' in 'eventType'"),
    ],
)
def test_bad_hik_payloads(decode: Decode, change: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "event", js({**HIK, **change}), "HIK-1")


# -- voice/generic-amp -------------------------------------------------------------------


def test_amplifier_cannot_synthesize_and_reports_firmware(
    decode: Decode, profiles: ProfileSet
) -> None:
    assert profiles.get("voice", "generic-amp").can_synthesize is False
    assert profiles.get("voice", "canonical").can_synthesize is True
    msg = decode("voice", "status", js({"state": "online", "firmware": "3.1"}), "AMP-1")
    assert msg.fields == {"state": "online", "online": True, "fw": "3.1"}
