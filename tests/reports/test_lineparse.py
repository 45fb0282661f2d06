"""The line-protocol reader against the gateway's own encoder."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.forward.lineproto import encode_point
from gateway.reports.lineparse import LineProtocolError, parse_line

names = st.text(min_size=1, max_size=12)
# Names the encoder stores verbatim (no newline, backslash or special first character).
_chars = st.characters(blacklist_characters="\\\n\r", blacklist_categories=("Cs",))
plain = st.text(alphabet=_chars, min_size=1, max_size=12).filter(
    lambda s: not s.startswith(("#", "\t", "\0")) and s != "time"
)
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=20),
)
stamps = st.integers(min_value=0, max_value=2**53)
any_tags = st.dictionaries(names, names, max_size=4)
any_fields = st.dictionaries(names, values, max_size=4)
plain_tags = st.dictionaries(plain, plain, max_size=4)
plain_fields = st.dictionaries(plain, values, min_size=1, max_size=4)


@given(names, any_tags, any_fields, stamps)
def test_any_encoded_point_parses_back_to_the_same_line(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], ts: int
) -> None:
    line = encode_point(measurement, tags, fields, ts)
    p = parse_line(line)
    assert p.ts_ms == ts
    assert encode_point(p.measurement, p.tags, p.fields, p.ts_ms) == line


@given(plain, plain_tags, plain_fields, stamps)
def test_names_and_values_the_encoder_keeps_come_back_exactly(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], ts: int
) -> None:
    p = parse_line(encode_point(measurement, tags, fields, ts))
    assert p.measurement == measurement
    assert p.tags == tags
    assert p.fields.keys() == fields.keys()
    for key, value in fields.items():
        assert type(p.fields[key]) is type(value)
        if isinstance(value, str):
            assert p.fields[key] == value.replace("\n", "\\n").replace("\r", "\\r")
        else:
            assert p.fields[key] == value


def test_field_types_are_restored() -> None:
    line = r'smoke_event,building=b\ 1,device=SD\,1,event=alarm n=1i,x=0.5,ok=true,s="a \"q\"" 12'
    p = parse_line(line)
    assert p.tags == {"building": "b 1", "device": "SD,1", "event": "alarm"}
    assert p.fields == {"n": 1, "x": 0.5, "ok": True, "s": 'a "q"'}
    assert p.ts_ms == 12


@pytest.mark.parametrize(
    "line",
    ["", "m", "m x=1i", "m,t x=1i 5", 'm s="open 5', "m x=abc 5", "m x=1i five"],
)
def test_malformed_lines_are_refused_with_the_position(line: str) -> None:
    with pytest.raises(LineProtocolError, match="line protocol at character"):
        parse_line(line)
