"""Payload bytes + topic → canonical `DeviceMessage`, through the device's firmware profile.

The hot path of the gateway: one reused msgspec JSON decoder, one precompiled plan per
profile, and no work for what a payload does not contain. Every bad payload raises
DecodeError saying what is wrong and where; nothing else escapes `decode`.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from gateway.decode.message import DeviceMessage, FieldValue
from gateway.decode.plan import (
    ANY,
    BOOL,
    COUNT,
    FLOAT,
    SECRET,
    TAG,
    FieldPlan,
    Plan,
    compile_plan,
    value_text,
)
from gateway.decode.profiles import ProfileSet
from gateway.errors import DecodeError, ProfileError
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex

MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_MS: Final = 86_400_000
MAX_EXTRA_FIELDS: Final = 64
MAX_STRING: Final = 1024
_INT64: Final = (-(2**63), 2**63 - 1)
_EXACT: Final = 2**53  # integers a float holds exactly
_EXTRA_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BARE_STATUS: Final = {b"online": "online", b"offline": "offline"}
_JSON_TYPE: Final = {str: "str", int: "int", float: "float", bool: "bool", dict: "object",
                     list: "array", type(None): "null"}  # fmt: skip
_PLAN_CACHE_MAX: Final = 65_536
TsSource = Literal["device", "gateway"]


class Decoder:
    """Decodes device payloads; build one per process and reuse it (it caches plans)."""

    def __init__(
        self,
        profiles: ProfileSet,
        site: SiteIndex,
        card_salt: bytes,
        max_payload_bytes: int = 256 * 1024,
    ) -> None:
        self._profiles = profiles
        self._site = site
        self._salt = card_salt
        self._max = max_payload_bytes
        self._json = msgspec.json.Decoder()
        self._by_model: dict[tuple[str, str], Plan] = {}
        self._by_device: dict[tuple[str, str], Plan] = {}

    def decode(self, topic: DeviceTopic, payload: bytes, received_ms: int) -> DeviceMessage:
        """Decode one message; raises DecodeError with the reason for anything off-contract."""
        channel = topic.channel
        if len(payload) > self._max:
            raise _error(topic, f"payload of {len(payload)} bytes exceeds {self._max} bytes")
        if channel == "frame":
            return self._frame(topic, payload, received_ms)
        plan = self._by_device.get((topic.kind, topic.device)) or self._plan(topic)
        if channel == "status":
            bare = _BARE_STATUS.get(bytes(payload).strip())
            if bare is not None:
                return _bare_status(topic, bare, received_ms)
        obj = self._parse(topic, payload)
        if type(obj) is not dict:
            if channel == "status" and obj in ("online", "offline"):
                return _bare_status(topic, obj, received_ms)
            raise _error(topic, f"expected a JSON object, got {_json_type(obj)}")
        fields: dict[str, FieldValue] = {}
        ts_ms, ts_source = self._timestamp(topic, plan, obj, received_ms, fields)
        tags: dict[str, str] = {}
        event = None
        if channel == "telemetry":
            specs = plan.telemetry
        elif channel == "event":
            event = self._event(topic, plan, obj)
            specs = plan.event_fields[event]
        elif channel == "status":
            specs = plan.status
        elif channel == "ack":
            specs = plan.ack
        else:
            raise _error(topic, "not a device-to-gateway channel")
        for spec in specs:
            f = spec.field
            value: Any = obj.get(f.top)
            if f.plain_float:  # the common case, checked as `_convert` would
                t = type(value)
                if t is float and value - value == 0.0:
                    fields[f.out] = value
                    continue
                if t is int and -_EXACT <= value <= _EXACT:
                    fields[f.out] = float(value)
                    continue
            for seg in f.rest:
                value = value.get(seg) if type(value) is dict else None
            if value is None:
                if spec.required and not spec.from_place:
                    raise _error(topic, f"missing required field {_where(plan, f)}")
                continue
            value = self._convert(topic, plan, f, value)
            if f.is_tag:
                tags[f.name] = value
            elif value is not None:
                fields[f.out] = value
        _extras(obj, plan.reserved, fields)
        if channel == "event":
            self._finish_event(topic, plan, event, fields, tags)
        elif channel == "status":
            state = fields.setdefault("state", "online")
            fields["online"] = state != "offline"
        return DeviceMessage(topic, ts_ms, ts_source, received_ms, event, fields, tags)

    # -- steps ---------------------------------------------------------------------------

    def _plan(self, topic: DeviceTopic) -> Plan:
        model = self._site.profile_for(topic.kind, topic.device)
        plan = self._by_model.get((topic.kind, model))
        if plan is None:
            try:
                profile = self._profiles.get(topic.kind, model)
            except ProfileError as exc:
                raise _error(topic, str(exc)) from None
            plan = self._by_model[(topic.kind, model)] = compile_plan(profile)
        if len(self._by_device) >= _PLAN_CACHE_MAX:
            self._by_device.clear()  # bounded: unprovisioned device ids must not grow memory
        self._by_device[(topic.kind, topic.device)] = plan
        return plan

    def _parse(self, topic: DeviceTopic, payload: bytes) -> Any:
        try:
            return self._json.decode(payload)
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:
            if not payload.strip():
                raise _error(topic, "empty payload") from None
            try:
                bytes(payload).decode("utf-8")
            except UnicodeDecodeError as bad:
                raise _error(topic, f"payload is not UTF-8 (bad byte at {bad.start})") from None
            if isinstance(exc, RecursionError):
                raise _error(topic, "invalid JSON: nested too deeply") from None
            raise _error(topic, f"invalid JSON: {exc}") from None

    def _frame(self, topic: DeviceTopic, payload: bytes, received_ms: int) -> DeviceMessage:
        if topic.kind != "camera":
            raise _error(topic, "only cameras send frames")
        if not payload:
            raise _error(topic, "empty frame")
        return DeviceMessage(
            topic, received_ms, "gateway", received_ms, fields={"bytes": len(payload)}
        )

    def _timestamp(
        self,
        topic: DeviceTopic,
        plan: Plan,
        obj: dict[str, Any],
        received_ms: int,
        fields: dict[str, FieldValue],
    ) -> tuple[int, TsSource]:
        raw = obj.get(plan.ts_top)
        for seg in plan.ts_rest:
            raw = raw.get(seg) if type(raw) is dict else None
        if raw is None:
            return received_ms, "gateway"
        unit = plan.ts_unit
        kind = type(raw)
        if unit == "iso8601":
            ts = _iso_ms(topic, plan, raw)
        elif kind is int:
            ts = raw if unit == "ms" else raw * 1000 if unit == "s" else raw // 1_000_000
        elif kind is float:
            scaled = raw if unit == "ms" else raw * 1000.0 if unit == "s" else raw / 1e6
            ts = round(scaled) if math.isfinite(scaled) else _INT64[1 if scaled > 0 else 0]
        else:
            raise _error(topic, f"field {plan.ts_where}: expected a number, got {_json_type(raw)}")
        if MIN_TS_MS <= ts <= received_ms + MAX_FUTURE_MS:
            return ts, "device"
        # An implausible device clock would misplace the point in time windows: keep the
        # receive time for the point and the device's value for diagnosis.
        fields["device_ts_ms"] = min(max(ts, _INT64[0]), _INT64[1])
        return received_ms, "gateway"

    def _event(self, topic: DeviceTopic, plan: Plan, obj: dict[str, Any]) -> str:
        for source in plan.events:
            raw = obj.get(source.top)
            for seg in source.rest:
                raw = raw.get(seg) if type(raw) is dict else None
            if raw is None:
                continue
            if source.map:
                text = value_text(raw)
                event = source.map.get(text) if text is not None else None
                if event is None:
                    shown = repr(raw)[:40] if text is not None else _json_type(raw)
                    raise _error(
                        topic, f"unknown event code {shown} in {_vendor(plan, source.path)}"
                    )
                return event
            if type(raw) is not str:
                raise _error(
                    topic,
                    f"field {_vendor(plan, source.path)}: expected a string, got {_json_type(raw)}",
                )
            if raw not in plan.allowed_events:
                allowed = ", ".join(sorted(plan.allowed_events)) or "none"
                raise _error(topic, f"unknown event {raw[:40]!r} (allowed: {allowed})")
            return raw
        names = ", ".join(repr(s.path) for s in plan.events)
        raise _error(topic, f"missing the event field ({names})")

    def _convert(self, topic: DeviceTopic, plan: Plan, f: FieldPlan, value: Any) -> Any:
        """The stored value of field `f`, or None to skip it; DecodeError for a wrong type."""
        if f.values is not None or f.template is not None:
            value = _translate(f, value, topic.device)
        t = type(value)
        kind = f.kind
        if kind == FLOAT:
            if t is float:
                if not math.isfinite(value):
                    raise _error(topic, f"field {_where(plan, f)}: not a finite number")
            elif t is int:
                value = _to_float(topic, plan, f, value)
            else:
                raise _error(
                    topic, f"field {_where(plan, f)}: expected a number, got {_json_type(value)}"
                )
            if f.scaled:
                value = value * f.scale + f.offset
                if not math.isfinite(value):
                    raise _error(topic, f"field {_where(plan, f)}: out of range after scaling")
            return value
        if kind == COUNT:
            if t is float and value.is_integer():
                value = int(value)
            elif t is not int:
                raise _error(
                    topic,
                    f"field {_where(plan, f)}: expected a whole number, got {_json_type(value)}",
                )
            if not 0 <= value <= _INT64[1]:
                raise _error(topic, f"field {_where(plan, f)}: must be between 0 and 2^63-1")
            return value
        if kind == BOOL:
            if t is not bool:
                raise _error(
                    topic,
                    f"field {_where(plan, f)}: expected true or false, got {_json_type(value)}",
                )
            return value
        if kind == ANY:
            # Declared by the profile but not in the contract: keep what is storable.
            if t is bool:
                return value
            if t is str:
                return value[:MAX_STRING]
            if t is int or t is float:
                number = float(value) if t is float or -(2**53) <= value <= 2**53 else math.inf
                if math.isfinite(number):
                    return number * f.scale + f.offset if f.scaled else number
            return None
        if t is not str:
            # Never echo the value: for `card` it is personal data.
            raise _error(
                topic, f"field {_where(plan, f)}: expected a string, got {_json_type(value)}"
            )
        if kind == SECRET:
            return hashlib.blake2b(self._salt + value.encode(), digest_size=16).hexdigest()
        if len(value) > MAX_STRING:
            raise _error(topic, f"field {_where(plan, f)}: longer than {MAX_STRING} characters")
        if kind == TAG:
            if f.name == "dir" and value not in ("in", "out"):
                raise _error(
                    topic, f"field {_where(plan, f)}: expected 'in' or 'out', got {value[:20]!r}"
                )
            if _NAME.fullmatch(value) is None:
                raise _error(
                    topic, f"field {_where(plan, f)}: {value[:70]!r} is not [A-Za-z0-9_-]{{1,64}}"
                )
        return value

    def _finish_event(
        self,
        topic: DeviceTopic,
        plan: Plan,
        event: str | None,
        fields: dict[str, FieldValue],
        tags: dict[str, str],
    ) -> None:
        """Event-specific rules that need the site model or the profile's declarations."""
        kind = topic.kind
        if kind == "access":
            door = tags.get("door")
            if door is not None:
                checkpoint = self._site.door_checkpoint.get(door) or self._place_checkpoint(topic)
                if checkpoint is not None:
                    tags["checkpoint"] = checkpoint
            if event in ("swipe", "passage"):
                counts = event == plan.passage_event and fields.get("granted", True) is True
                fields["passage"] = counts
        elif kind == "camera":
            if event == "line_crossing":
                if "checkpoint" not in tags:
                    checkpoint = self._place_checkpoint(topic)
                    if checkpoint is None:
                        raise _error(
                            topic,
                            "line_crossing needs 'checkpoint' in the payload, or the camera "
                            "listed under a checkpoint in the site model",
                        )
                    tags["checkpoint"] = checkpoint
                fields["cumulative"] = plan.cumulative
                fields.setdefault("retransmission", False)
            elif event == "team_seen":
                if "checkpoint" not in tags:  # optional: the topic building may do
                    checkpoint = self._place_checkpoint(topic)
                    if checkpoint is not None:
                        tags["checkpoint"] = checkpoint
            elif "zone" not in tags:
                place = self._site.place(topic.building, kind, topic.device)
                if place is None or place.zone is None:
                    raise _error(topic, f"{event} needs 'zone' in the payload")
                tags["zone"] = place.zone
            confidence = fields.get("confidence")
            if isinstance(confidence, float) and not 0.0 <= confidence <= 1.0:
                raise _error(topic, f"field 'confidence': {confidence} is not between 0 and 1")

    def _place_checkpoint(self, topic: DeviceTopic) -> str | None:
        place = self._site.place(topic.building, topic.kind, topic.device)
        return None if place is None else place.checkpoint


def _bare_status(topic: DeviceTopic, state: str, received_ms: int) -> DeviceMessage:
    fields: dict[str, FieldValue] = {"state": state, "online": state == "online"}
    return DeviceMessage(topic, received_ms, "gateway", received_ms, None, fields)


def _extras(obj: dict[str, Any], reserved: frozenset[str], fields: dict[str, FieldValue]) -> None:
    """Keep unknown numeric/bool fields (numbers always as floats: one type per field)."""
    kept = 0
    for key, value in obj.items():
        if key in reserved:
            continue
        t = type(value)
        if t is float:
            if not math.isfinite(value):
                continue
        elif t is int:
            if not -(2**53) <= value <= 2**53:
                continue
        elif t is not bool:
            continue
        if _EXTRA_NAME.fullmatch(key) is None:
            continue
        fields[key] = float(value) if t is int else value
        kept += 1
        if kept >= MAX_EXTRA_FIELDS:
            return


def _translate(f: FieldPlan, value: Any, device: str) -> Any:
    text = value_text(value)
    if text is None:
        return value
    if f.values is not None and text in f.values:
        return f.values[text]
    if f.template is not None:
        return "".join(device if part is None else part if part else text for part in f.template)
    return value


def _to_float(topic: DeviceTopic, plan: Plan, f: FieldPlan, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise _error(topic, f"field {_where(plan, f)}: number out of range") from None


def _iso_ms(topic: DeviceTopic, plan: Plan, raw: Any) -> int:
    if type(raw) is not str:
        raise _error(
            topic, f"field {plan.ts_where}: expected an ISO-8601 string, got {_json_type(raw)}"
        )
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise _error(topic, f"field {plan.ts_where}: {raw[:40]!r} is not ISO-8601") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a naive device time is taken as UTC
    return round(when.timestamp() * 1000)


def _where(plan: Plan, f: FieldPlan) -> str:
    if f.vendor == f.name:
        return f"{f.name!r}"
    return f"{f.name!r} (vendor field {f.vendor!r} of profile {plan.label})"


def _vendor(plan: Plan, path: str) -> str:
    return f"{path!r}" if plan.label.endswith("/canonical") else f"{path!r} of profile {plan.label}"


def _json_type(value: Any) -> str:
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _error(topic: DeviceTopic, reason: str) -> DecodeError:
    sep = " " if reason.startswith("field ") else ": "
    return DecodeError(f"{topic.kind}/{topic.channel}{sep}{reason}")
