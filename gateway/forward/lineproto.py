"""InfluxDB line protocol: escaping, point encoding and the gateway's storage schema.

Everything here is on the bulk lane's hot path: escapes of names (which repeat: sites,
buildings, devices, field keys) are cached, and clean strings take no copy.

What InfluxDB 1.x cannot store verbatim is changed by fixed rules (see docs/storage.md):
- a newline or carriage return anywhere becomes the two characters `\\n` / `\\r`, so a
  line is always one physical line;
- in names (measurement, tag keys and values, field keys) a backslash that ends the name
  or comes before `,`, space, `=` or `"` becomes `/` (1.x has no escape for it there);
- a measurement starting with `#` (a comment), tab or NUL, and a field key starting with
  tab or NUL, get `_` for that first character (1.x skips leading whitespace there);
- the key `time` is dropped (1.x refuses it as a tag and drops it as a field).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

from gateway.decode.message import DeviceMessage, FieldValue
from gateway.ingest.topic import DeviceTopic
from gateway.site import DevicePlace

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_CACHE_SIZE: Final = 1 << 16
_NAME_SPECIAL = re.compile(r"[\\\n\r ,=]")
_LONE_BACKSLASH = re.compile(r'\\(?=[, ="]|$)')
_MEASUREMENT_BAD_START: Final = ("#", "\t", "\0")
_FIELD_KEY_BAD_START: Final = ("\t", "\0")
_FALLBACK_FIELD: Final = "n=1i"

MEASUREMENT_BY_CHANNEL: Final = {"status": "device_status", "ack": "command_ack"}


def _clean_name(name: str) -> str:
    """Newlines to text, unrepresentable backslashes to `/` (shared by all name kinds)."""
    if "\n" in name or "\r" in name:
        name = name.replace("\n", "\\n").replace("\r", "\\r")
    if "\\" in name:
        name = _LONE_BACKSLASH.sub("/", name)
    return name


@lru_cache(maxsize=_CACHE_SIZE)
def escape_measurement(name: str) -> str:
    """Escape a measurement name: comma and space (see the module doc for other changes)."""
    if name.startswith(_MEASUREMENT_BAD_START):
        name = "_" + name[1:]
    elif not _NAME_SPECIAL.search(name):
        return name
    return _clean_name(name).replace(",", "\\,").replace(" ", "\\ ")


@lru_cache(maxsize=_CACHE_SIZE)
def escape_tag(text: str) -> str:
    """Escape a tag key or tag value: comma, equals sign and space."""
    if not _NAME_SPECIAL.search(text):
        return text
    return _clean_name(text).replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


@lru_cache(maxsize=_CACHE_SIZE)
def escape_field_key(key: str) -> str:
    """Escape a field key: as a tag key, and a leading tab or NUL becomes `_`."""
    if key.startswith(_FIELD_KEY_BAD_START):
        key = "_" + key[1:]
    return escape_tag(key)


escape_tag_key = escape_tag
escape_tag_value = escape_tag


def escape_string_field(value: str) -> str:
    """Quote a string field value: backslash and double quote escaped, newlines as text."""
    if "\n" in value or "\r" in value:
        value = value.replace("\n", "\\n").replace("\r", "\\r")
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return f'"{value}"'


def format_field_value(value: object) -> str | None:
    """A field value in line protocol, or None when InfluxDB cannot store it.

    Skipped: non-finite floats, integers outside int64, and anything not a number, bool
    or string. Numpy scalars are accepted.
    """
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return f"{value}i" if _INT64_MIN <= value <= _INT64_MAX else None
    if type(value) is float:
        return float.__repr__(value) if math.isfinite(value) else None
    if type(value) is str:
        return escape_string_field(value)
    # Slow path: subclasses and numpy scalars (np.float64 subclasses float, np.int64 does not).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_string_field(str(value))
    if isinstance(value, numbers.Integral):
        return format_field_value(int(value))
    if isinstance(value, numbers.Real):
        return format_field_value(float(value))
    item = getattr(value, "item", None)
    if callable(item):
        plain = item()
        if type(plain) in (bool, int, float, str):
            return format_field_value(plain)
    return None


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ms: int,
) -> str:
    """One line of line protocol with a millisecond timestamp.

    Tags are sorted by key, empty ones omitted; fields InfluxDB cannot store are skipped,
    and a point left without any field gets `n=1i` so it is never refused for that.
    Raises ValueError for an empty measurement (a caller bug, not bad data).
    """
    if not measurement:
        raise ValueError("line protocol: measurement name is empty")
    return f"{escape_measurement(measurement)}{tag_set(tags)} {field_set(fields)} {ts_ms}"


def tag_set(tags: Mapping[str, str]) -> str:
    """`,k=v,...` sorted by escaped key; empty values and the key `time` omitted."""
    if not tags:
        return ""
    escaped: dict[str, str] = {}
    for key, value in tags.items():
        if value and key and key != "time":
            escaped[escape_tag(key)] = escape_tag(value)
    return "".join([f",{key}={escaped[key]}" for key in sorted(escaped)])


def field_set(fields: Mapping[str, FieldValue]) -> str:
    """`k=v,...` of the storable fields, or `n=1i` when none is."""
    parts: list[str] = []
    prefixes = _PLAIN_FIELD_PREFIX
    for key, value in fields.items():
        # Inlined common cases of format_field_value: this loop is the encoder's hot spot.
        kind = type(value)
        text: str | None
        if kind is float:
            if value - value != 0.0:  # type: ignore[operator]
                continue  # inf or nan
            text = float.__repr__(value)
        elif kind is int:
            if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
                continue
            text = f"{value}i"
        else:
            text = format_field_value(value)
            if text is None:
                continue
        prefix = prefixes.get(key)
        if prefix is None:
            if not key or key == "time":
                continue
            prefix = _field_prefix(key)
            if prefix[:-1] != key:
                return _escaped_field_set(fields)
        parts.append(prefix + text)
    return ",".join(parts) if parts else _FALLBACK_FIELD


def _escaped_field_set(fields: Mapping[str, FieldValue]) -> str:
    # Some key needs escaping, and two keys may then escape alike ("a\\" and "a/"):
    # the last one wins, as InfluxDB would keep it.
    parts: dict[str, str] = {}
    for key, value in fields.items():
        text = format_field_value(value)
        if key and key != "time" and text is not None:
            parts[escape_field_key(key)] = text
    return ",".join([f"{k}={v}" for k, v in parts.items()]) if parts else _FALLBACK_FIELD


# "key=" for field keys that need no escaping (the usual case), so the hot loop is one
# dict lookup per field. Bounded: payload keys come from devices.
_PLAIN_FIELD_PREFIX: dict[str, str] = {}


def _field_prefix(key: str) -> str:
    prefix = escape_field_key(key) + "="
    if prefix[:-1] == key:
        if len(_PLAIN_FIELD_PREFIX) >= _CACHE_SIZE:
            _PLAIN_FIELD_PREFIX.clear()
        _PLAIN_FIELD_PREFIX[key] = prefix
    return prefix


def measurement_for(kind: str, channel: str) -> str:
    """The storage measurement of a device's channel (see docs/storage.md)."""
    if channel == "telemetry":
        return kind
    if channel == "event":
        return f"{kind}_event"
    return MEASUREMENT_BY_CHANNEL.get(channel) or f"{kind}_{channel}"


def _schema_tags(
    topic: DeviceTopic, event: str | None, gateway_ts: bool, place: DevicePlace | None
) -> dict[str, str]:
    """The tags the schema derives from topic, place and message (payload tags excluded)."""
    tags: dict[str, str] = {}
    if place is None:
        tags["provisioned"] = "false"
    else:
        if place.zone is not None:
            tags["zone"] = place.zone
        if place.floor is not None:
            tags["floor"] = str(place.floor)
        if place.checkpoint is not None:
            tags["checkpoint"] = place.checkpoint
    if gateway_ts:
        tags["ts_source"] = "gateway"
    tags["site"] = topic.site
    tags["building"] = topic.building
    tags["device"] = topic.device
    if topic.channel in MEASUREMENT_BY_CHANNEL:
        tags["kind"] = topic.kind
    elif topic.channel == "event" and event:
        tags["event"] = event
    return tags


@lru_cache(maxsize=_CACHE_SIZE)
def _series_prefix(
    topic: DeviceTopic, event: str | None, gateway_ts: bool, place: DevicePlace | None
) -> str:
    """Measurement and tag set of a message without payload tags: the same for every
    reading of a device, so computed once per device (and event name)."""
    measurement = escape_measurement(measurement_for(topic.kind, topic.channel))
    return measurement + tag_set(_schema_tags(topic, event, gateway_ts, place))


def message_line(msg: DeviceMessage, place: DevicePlace | None) -> str:
    """The storage line of one decoded device message (the schema of docs/storage.md).

    Tags from the site model win over same-named tags from the payload, and the fixed
    tags (site, building, device, kind, event) win over both. A `card_hash` tag is stored
    as a field and a raw `card` number is never stored (privacy; unbounded tag values).
    """
    topic = msg.topic
    event = msg.event if topic.channel == "event" else None
    gateway_ts = msg.ts_source == "gateway"
    fields: Mapping[str, FieldValue] = msg.fields
    if "card" in fields:
        fields = {k: v for k, v in fields.items() if k != "card"}
    tags = msg.tags
    if not tags:
        prefix = _series_prefix(topic, event, gateway_ts, place)
    else:
        if "card_hash" in tags or "card" in tags:
            tags = dict(tags)
            moved = tags.pop("card_hash", None)
            tags.pop("card", None)
            if moved is not None and "card_hash" not in fields:
                fields = {**fields, "card_hash": moved}
        prefix = _tagged_prefix(topic, event, gateway_ts, place, tuple(tags.items()))
    return f"{prefix} {field_set(fields)} {msg.ts_ms}"


@lru_cache(maxsize=_CACHE_SIZE)
def _tagged_prefix(
    topic: DeviceTopic,
    event: str | None,
    gateway_ts: bool,
    place: DevicePlace | None,
    payload_tags: tuple[tuple[str, str], ...],
) -> str:
    """`_series_prefix` with the payload's tags (door, dir, checkpoint, ...): few values per
    device, so cached too. Schema tags win over payload tags of the same name."""
    tags = dict(payload_tags)
    tags.update(_schema_tags(topic, event, gateway_ts, place))
    return escape_measurement(measurement_for(topic.kind, topic.channel)) + tag_set(tags)
