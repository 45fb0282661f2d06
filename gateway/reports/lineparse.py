"""Read InfluxDB line protocol back: the inverse of `gateway.forward.lineproto`.

Reports read the embedded history (the spool keeps the lines as written), so they need
the points back: measurement, tags, typed fields, time. Escapes are undone exactly as the
encoder made them; `encode_point(*parse_line(line))` gives the same line again. What the
encoder changed for good (newlines stored as the text `\\n`, lone backslashes as `/`)
comes back as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.decode.message import FieldValue
from gateway.errors import GatewayError

_MEASUREMENT_ESCAPES = frozenset(", ")
_NAME_ESCAPES = frozenset(",= ")


class LineProtocolError(GatewayError, ValueError):
    """A stored line that is not valid line protocol (names the line and the position)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One parsed point; `ts_ms` is the line's timestamp (the gateway writes milliseconds)."""

    measurement: str
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, FieldValue] = field(default_factory=dict)
    ts_ms: int = 0

    def field_int(self, key: str, default: int = 0) -> int:
        """A numeric field as int (bools and strings give `default`)."""
        value = self.fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return default
        return int(value)


def _fail(line: str, pos: int, what: str) -> LineProtocolError:
    return LineProtocolError(f"line protocol at character {pos}: {what}: {line[:120]!r}")


def _name(line: str, pos: int, stops: str, escapes: frozenset[str]) -> tuple[str, int]:
    """Read a name up to an unescaped stop character; returns (name, index of the stop)."""
    out: list[str] = []
    n = len(line)
    while pos < n:
        ch = line[pos]
        if ch == "\\" and pos + 1 < n and line[pos + 1] in escapes:
            out.append(line[pos + 1])
            pos += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        pos += 1
    return "".join(out), pos


def _string_value(line: str, pos: int) -> tuple[str, int]:
    """Read a quoted string field starting at the opening quote; returns (value, after)."""
    out: list[str] = []
    pos += 1
    n = len(line)
    while pos < n:
        ch = line[pos]
        if ch == "\\" and pos + 1 < n and line[pos + 1] in '\\"':
            out.append(line[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    raise _fail(line, pos, "string field without its closing quote")


def _scalar(line: str, start: int, text: str) -> FieldValue:
    if text in ("true", "t", "T", "True", "TRUE"):
        return True
    if text in ("false", "f", "F", "False", "FALSE"):
        return False
    try:
        if text.endswith(("i", "u")):
            return int(text[:-1])
        return float(text)
    except ValueError:
        raise _fail(line, start, f"field value {text!r} is not a number or bool") from None


def parse_line(line: str) -> Point:
    """Parse one line of line protocol with a millisecond timestamp.

    Raises LineProtocolError (what and where) for a malformed line.
    """
    line = line.rstrip("\n")
    measurement, pos = _name(line, 0, ", ", _MEASUREMENT_ESCAPES)
    if not measurement:
        raise _fail(line, 0, "empty measurement")
    tags: dict[str, str] = {}
    while pos < len(line) and line[pos] == ",":
        key, pos = _name(line, pos + 1, "=, ", _NAME_ESCAPES)
        if pos >= len(line) or line[pos] != "=" or not key:
            raise _fail(line, pos, "tag without '='")
        value, pos = _name(line, pos + 1, ", ", _NAME_ESCAPES)
        tags[key] = value
    if pos >= len(line) or line[pos] != " ":
        raise _fail(line, pos, "expected a space before the fields")
    pos += 1
    fields: dict[str, FieldValue] = {}
    while True:
        key, pos = _name(line, pos, "=, ", _NAME_ESCAPES)
        if pos >= len(line) or line[pos] != "=" or not key:
            raise _fail(line, pos, "field without '='")
        pos += 1
        if pos < len(line) and line[pos] == '"':
            fields[key], pos = _string_value(line, pos)
        else:
            end = pos
            while end < len(line) and line[end] not in ", ":
                end += 1
            fields[key] = _scalar(line, pos, line[pos:end])
            pos = end
        if pos < len(line) and line[pos] == ",":
            pos += 1
            continue
        break
    if pos >= len(line) or line[pos] != " ":
        raise _fail(line, pos, "expected a space and a timestamp after the fields")
    stamp = line[pos + 1 :].strip()
    try:
        ts_ms = int(stamp)
    except ValueError:
        raise _fail(line, pos + 1, f"timestamp {stamp!r} is not an integer") from None
    return Point(measurement, tags, fields, ts_ms)


def parse_lines(lines: list[str], measurement: str | None = None) -> list[Point]:
    """Parse stored lines, keeping only `measurement` when given (a prefix query's extras)."""
    points = [parse_line(line) for line in lines]
    if measurement is None:
        return points
    return [p for p in points if p.measurement == measurement]
