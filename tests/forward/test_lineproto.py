"""Line protocol: escaping rules, the storage schema, and round trips through real InfluxDB 1.x."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.decode.message import DeviceMessage, FieldValue
from gateway.forward.lineproto import (
    encode_point,
    escape_measurement,
    escape_string_field,
    escape_tag,
    format_field_value,
    message_line,
)
from gateway.ingest.topic import DeviceTopic
from gateway.site import DevicePlace
from tests.servers import InfluxDBServer

TS = 1_795_475_306_083
_dbs = itertools.count()


# ---- plain-Python reference of what InfluxDB 1.x stores for each written value ----


def stored_name(name: str) -> str:
    """Newlines as text; a backslash ending the name or before , space = " becomes /."""
    name = name.replace("\n", "\\n").replace("\r", "\\r")
    out = []
    for i, ch in enumerate(name):
        nxt = name[i + 1] if i + 1 < len(name) else ""
        out.append("/" if ch == "\\" and nxt in ("", ",", " ", "=", '"') else ch)
    return "".join(out)


def stored_measurement(name: str) -> str:
    """1.x skips leading whitespace and NUL, and `#` starts a comment: first char becomes _."""
    return stored_name("_" + name[1:] if name[:1] in ("#", "\t", "\0") else name)


def stored_field_key(key: str) -> str:
    return stored_name("_" + key[1:] if key[:1] in ("\t", "\0") else key)


def stored_field(value: FieldValue) -> object:
    if isinstance(value, str):
        return value.replace("\n", "\\n").replace("\r", "\\r")
    return value


def storable(value: FieldValue) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return math.isfinite(value)


def expected_columns(
    tags: Mapping[str, str], fields: Mapping[str, FieldValue]
) -> tuple[dict[str, str], dict[str, object]]:
    """(tag columns, field columns) of the stored point; later duplicates win, as written."""
    tag_cols = {stored_name(k): stored_name(v) for k, v in tags.items() if k != "time" and v}
    field_cols = {
        stored_field_key(k): stored_field(v)
        for k, v in fields.items()
        if k != "time" and storable(v)
    }
    return tag_cols, field_cols or {"n": 1}


# ---- unit tests of the escaping rules ----


def test_escape_tag_escapes_comma_equals_space() -> None:
    assert escape_tag("a b,c=d") == "a\\ b\\,c\\=d"
    assert escape_tag("plain") == "plain"


def test_escape_measurement_leaves_equals_and_neutralizes_comment_marker() -> None:
    assert escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert escape_measurement("#x") == "_x"


def test_escape_string_field_quotes_and_keeps_one_line() -> None:
    assert escape_string_field('say "hi"\\\n') == '"say \\"hi\\"\\\\\\\\n"'
    assert "\n" not in escape_string_field("a\nb\rc")


def test_trailing_backslash_in_tag_becomes_slash() -> None:
    assert escape_tag("door\\") == "door/"
    assert escape_tag("a\\b") == "a\\b"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (12, "12i"),
        (-(2**63), f"{-(2**63)}i"),
        (2**63, None),
        (1.5, "1.5"),
        (1e100, "1e+100"),
        (math.nan, None),
        (-math.inf, None),
        ("x", '"x"'),
    ],
)
def test_format_field_value(value: FieldValue, text: str | None) -> None:
    assert format_field_value(value) == text


def test_format_field_value_accepts_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert format_field_value(np.float64(2.5)) == "2.5"
    assert format_field_value(np.int32(7)) == "7i"
    assert format_field_value(np.bool_(True)) == "true"
    assert format_field_value(object()) is None


def test_encode_point_sorts_tags_and_omits_empty_ones() -> None:
    line = encode_point("m", {"z": "1", "a": "2", "e": ""}, {"v": 1.5, "n": 3}, TS)
    assert line == f"m,a=2,z=1 v=1.5,n=3i {TS}"


def test_encode_point_without_storable_fields_gets_n() -> None:
    assert encode_point("m", {}, {"bad": math.nan, "time": 1}, TS) == f"m n=1i {TS}"


def test_encode_point_drops_time_keys() -> None:
    assert encode_point("m", {"time": "x", "t": "y"}, {"time": 1, "v": 2}, TS) == (
        f"m,t=y v=2i {TS}"
    )


def test_encode_point_rejects_empty_measurement() -> None:
    with pytest.raises(ValueError, match="measurement"):
        encode_point("", {}, {"v": 1}, TS)


# ---- the storage schema ----


def _msg(
    kind: str,
    channel: str,
    *,
    event: str | None = None,
    fields: dict[str, FieldValue] | None = None,
    tags: dict[str, str] | None = None,
    ts_source: str = "device",
) -> DeviceMessage:
    return DeviceMessage(
        topic=DeviceTopic("shazui", "b12", kind, "SD-1", channel),
        ts_ms=TS,
        ts_source=ts_source,  # type: ignore[arg-type]
        received_ms=TS + 5,
        event=event,
        fields=fields or {},
        tags=tags or {},
    )


ZONE = DevicePlace(zone="b12-f3", floor=3, checkpoint=None)


def test_telemetry_measurement_is_kind_with_place_tags() -> None:
    line = message_line(_msg("smoke", "telemetry", fields={"smoke": 0.12, "battery": 87}), ZONE)
    assert line == (
        f"smoke,building=b12,device=SD-1,floor=3,site=shazui,zone=b12-f3 "
        f"smoke=0.12,battery=87i {TS}"
    )


def test_event_without_fields_gets_event_tag_and_n() -> None:
    line = message_line(_msg("callpoint", "event", event="alarm"), ZONE)
    assert line == (
        f"callpoint_event,building=b12,device=SD-1,event=alarm,floor=3,site=shazui,zone=b12-f3"
        f" n=1i {TS}"
    )


def test_status_and_ack_carry_kind_tag() -> None:
    status = message_line(_msg("screen", "status", fields={"online": True}), None)
    assert status.startswith("device_status,building=b12,device=SD-1,kind=screen,")
    assert "provisioned=false" in status
    ack = message_line(_msg("voice", "ack", fields={"ok": False, "cmd_id": "c1"}), None)
    assert ack.startswith("command_ack,") and ",kind=voice," in ack
    assert 'cmd_id="c1"' in ack


def test_gateway_timestamp_is_tagged() -> None:
    line = message_line(_msg("heat", "telemetry", fields={"temp": 21.0}, ts_source="gateway"), ZONE)
    assert ",ts_source=gateway" in line


def test_checkpoint_and_payload_tags_are_kept_and_card_hash_is_a_field() -> None:
    place = DevicePlace(zone=None, floor=None, checkpoint="n-gate")
    msg = _msg(
        "access",
        "event",
        event="swipe",
        fields={"granted": True, "card": "0012345678"},
        tags={"door": "n-gate-1", "dir": "in", "card_hash": "ab12", "card": "0012345678"},
    )
    line = message_line(msg, place)
    assert line == (
        "access_event,building=b12,checkpoint=n-gate,device=SD-1,dir=in,door=n-gate-1,"
        f'event=swipe,site=shazui granted=true,card_hash="ab12" {TS}'
    )
    assert "0012345678" not in line


def test_site_model_and_fixed_tags_win_over_payload_tags() -> None:
    msg = _msg("smoke", "event", event="alarm", tags={"zone": "fake", "device": "x", "floor": "9"})
    line = message_line(msg, ZONE)
    assert ",zone=b12-f3 " in line and ",device=SD-1," in line and ",floor=3," in line


# ---- round trips through the real server ----

_special = st.sampled_from([*'\\ ,="#\n\r\t', "é", "烟", "\x00"])
_text = st.text(alphabet=st.one_of(_special, st.characters(codec="utf-8")), max_size=10)
_name = st.text(alphabet=st.one_of(_special, st.characters(codec="utf-8")), min_size=1, max_size=10)
_field_value = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    _text,
)


def _roundtrip(
    influxdb: InfluxDBServer,
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ms: int,
) -> tuple[str, dict[str, Any]]:
    """Write one line to a fresh database; return (line, the one row read back)."""
    line = encode_point(measurement, tags, fields, ts_ms)
    db = f"lp{next(_dbs)}"
    influxdb.create_database(db)
    try:
        status, body = influxdb.http(
            "POST", "/write", [("db", db), ("precision", "ms")], line.encode()
        )
        assert status == 204, f"{line!r} refused: {body!r}"
        rows = influxdb.query(db, "SELECT * FROM /.*/")
    finally:
        influxdb.drop_database(db)
    assert len(rows) == 1, (line, rows)
    return line, rows[0]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    measurement=_name,
    tags=st.dictionaries(_name, _text, max_size=4),
    fields=st.dictionaries(_name, _field_value, max_size=4),
    ts_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_any_point_round_trips_through_influxdb(
    influxdb: InfluxDBServer,
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, FieldValue],
    ts_ms: int,
) -> None:
    tag_cols, field_cols = expected_columns(tags, fields)
    # A tag and a field of the same name are two columns InfluxDB reports as one.
    assume(not tag_cols.keys() & field_cols.keys())
    line, row = _roundtrip(influxdb, measurement, tags, fields, ts_ms)
    assert row.pop("_measurement") == stored_measurement(measurement), line
    # Go prints a float64 with its shortest digits, padded with zeros: JSON may read it as int.
    for key, value in field_cols.items():
        if isinstance(value, float) and isinstance(row.get(key), int):
            row[key] = float(row[key])
    assert row == {"time": ts_ms, **tag_cols, **field_cols}, line


def test_schema_line_round_trips(influxdb: InfluxDBServer) -> None:
    msg = _msg(
        "access",
        "event",
        event="swipe",
        fields={"granted": True, "card_hash": "9f86d081"},
        tags={"door": "北门 1", "dir": "in"},
    )
    line = message_line(msg, DevicePlace(zone=None, floor=None, checkpoint="n-gate"))
    db = f"lp{next(_dbs)}"
    influxdb.create_database(db)
    try:
        status, body = influxdb.http(
            "POST", "/write", [("db", db), ("precision", "ms")], line.encode()
        )
        assert status == 204, body
        rows = influxdb.query(db, "SELECT * FROM access_event")
    finally:
        influxdb.drop_database(db)
    assert rows == [
        {
            "time": TS,
            "_measurement": "access_event",
            "building": "b12",
            "card_hash": "9f86d081",
            "checkpoint": "n-gate",
            "device": "SD-1",
            "dir": "in",
            "door": "北门 1",
            "event": "swipe",
            "granted": True,
            "site": "shazui",
        }
    ]
