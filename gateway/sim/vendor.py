"""Canonical payload → a device's own firmware-profile payload: the decoder's mapping inverted.

`VendorEncoder.encode` writes each canonical field the profile's compiled plan reads for the
channel (or event) at its vendor path (nested objects for dotted paths), with the scale and
offset undone, enumerations turned back into the vendor's code, templated names back into
the vendor's value, the event name into the vendor's event code and `ts` into the profile's
time unit. Decoding the result with the same profile gives back the canonical values
(floats within rounding of the scale). Fields the profile cannot express are dropped.
`VendorTraffic` adapts the simulator's canonical stream (cumulative counters, door names).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gateway.decode.plan import FieldPlan, Plan, compile_plan, value_text
from gateway.decode.profiles import ProfileSet
from gateway.site import SiteIndex

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INT_CODE: Final = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_SNAP: Final = 1e-9  # relative distance under which an unscaled value is a whole number


class _Drop:
    """Marks a value the profile cannot express."""


_DROP: Final = _Drop()


class EncodeError(ValueError):
    """A canonical message the device's profile has no way to say (e.g. an unmapped event)."""


class VendorEncoder:
    """Encodes canonical payloads in the firmware profile each device speaks (site model)."""

    def __init__(self, profiles: ProfileSet, site: SiteIndex) -> None:
        self._profiles = profiles
        self._site = site
        self._plans: dict[tuple[str, str], Plan] = {}

    def model(self, kind: str, device: str) -> str:
        """The profile model the site assigns to the device (`canonical` by default)."""
        return self._site.profile_for(kind, device)

    def plan(self, kind: str, device: str) -> Plan:
        """The decoder's compiled plan for the device's profile (ProfileError if missing)."""
        key = (kind, self.model(kind, device))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = compile_plan(self._profiles.get(*key))
        return plan

    def encode(self, kind: str, device: str, channel: str, canonical: Mapping[str, Any]) -> bytes:
        """The vendor payload (compact JSON) saying what `canonical` says, as far as it can."""
        return json.dumps(
            self.encode_obj(kind, device, channel, canonical),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    def encode_obj(
        self, kind: str, device: str, channel: str, canonical: Mapping[str, Any]
    ) -> dict[str, Any]:
        """As `encode`, before serialisation."""
        plan = self.plan(kind, device)
        out: dict[str, Any] = {}
        ts = canonical.get("ts")
        if ts is not None:
            _put(out, (plan.ts_top, *plan.ts_rest), _vendor_ts(int(ts), plan.ts_unit))
        if channel == "telemetry":
            specs = plan.telemetry
        elif channel == "status":
            specs = plan.status
        elif channel == "ack":
            specs = plan.ack
        elif channel == "event":
            event = canonical.get("event")
            if not isinstance(event, str) or event not in plan.event_fields:
                allowed = ", ".join(sorted(plan.event_fields)) or "none"
                raise EncodeError(f"{plan.label}: event {event!r} is not one of: {allowed}")
            path, code = _event_code(plan, event)
            _put(out, tuple(path.split(".")), code)
            specs = plan.event_fields[event]
        else:
            raise EncodeError(f"{plan.label}: channel {channel!r} carries no JSON payload")
        for spec in specs:
            f = spec.field
            value = canonical.get(f.name)
            if value is None:
                continue
            vendor = vendor_value(f, value, device)
            if vendor is not _DROP:
                _put(out, (f.top, *f.rest), vendor)
        return out


def vendor_value(f: FieldPlan, value: Any, device: str) -> Any:
    """The vendor value the decoder turns into canonical `value` for field `f`, or `_DROP`."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    pre = value
    if f.scaled and number:
        pre = _snap((value - f.offset) / f.scale)
    if f.values is not None:
        for code, canon in f.values.items():
            if _same(canon, pre):
                return code_value(code)
    if f.template is not None and isinstance(value, str):
        text = _untemplate(f.template, value, device)
        if text is None or (f.values is not None and text in f.values):
            return _DROP
        return code_value(text)
    text = value_text(pre)
    if text is not None and f.values is not None and text in f.values:
        return _DROP  # the decoder would read it as a code meaning something else
    return pre


def code_value(text: str) -> Any:
    """The JSON value a vendor sends for a profile map key: `"1"` → 1, `"true"` → True."""
    if text in ("true", "false"):
        return text == "true"
    if _INT_CODE.fullmatch(text) and value_text(int(text)) == text:
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if value_text(number) == text else text


def render_template(f: FieldPlan, vendor: Any, device: str) -> str | None:
    """What the decoder makes of vendor value `vendor` through f's template (None: none)."""
    text = value_text(vendor)
    if f.template is None or text is None:
        return None
    return "".join(device if p is None else p if p else text for p in f.template)


def _event_code(plan: Plan, event: str) -> tuple[str, Any]:
    for source in plan.events:
        if not source.map:
            return source.path, event
        for code, name in source.map.items():
            if name == event:
                return source.path, code_value(code)
    raise EncodeError(f"{plan.label}: no vendor event code for {event!r}")


def _vendor_ts(ts_ms: int, unit: str) -> Any:
    if unit == "s":
        # Whole seconds as an integer, as devices send them; otherwise keep the milliseconds
        # as a fraction (the decoder accepts it) so the simulated time stays exact.
        return ts_ms // 1000 if ts_ms % 1000 == 0 else ts_ms / 1000
    if unit == "ns":
        return ts_ms * 1_000_000
    if unit == "iso8601":
        return (_EPOCH + timedelta(milliseconds=ts_ms)).isoformat(timespec="milliseconds")
    return ts_ms


def _snap(value: float) -> int | float:
    """`value`, as an integer when scaling only blurred a whole number (263.00000000000006)."""
    if not math.isfinite(value):
        return value
    whole = round(value)
    if abs(value - whole) <= _SNAP * max(1.0, abs(value)) and abs(whole) < 2**53:
        return int(whole)
    return value


def _same(canon: Any, value: Any) -> bool:
    if isinstance(canon, bool) or isinstance(value, bool):
        return canon is value
    if isinstance(canon, int | float) and isinstance(value, int | float):
        return math.isclose(canon, value, rel_tol=_SNAP, abs_tol=_SNAP)
    return bool(canon == value)


def _untemplate(template: tuple[str | None, ...], value: str, device: str) -> str | None:
    pattern = "".join(
        re.escape(device) if p is None else re.escape(p) if p else "(.+?)" for p in template
    )
    match = re.fullmatch(pattern, value)
    if match is None or not match.groups():
        return None
    found = set(match.groups())
    return found.pop() if len(found) == 1 else None


def _put(out: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set `value` at a dotted path; the first writer of a path wins, conflicts are skipped."""
    node = out
    for seg in path[:-1]:
        child = node.setdefault(seg, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(path[-1], value)


class VendorTraffic:
    """Rewrites the simulator's canonical payloads for devices with a vendor profile.

    Stateful where the profile needs it: a `counts = "cumulative"` camera reports running
    totals of the simulated per-period crossings, as such a camera's counters would.
    """

    def __init__(self, profiles: ProfileSet, site: SiteIndex) -> None:
        self.encoder = VendorEncoder(profiles, site)
        self._totals: dict[tuple[str, str], list[int]] = {}

    def is_vendor(self, kind: str, device: str) -> bool:
        """Whether the device speaks a profile other than the canonical one."""
        return self.encoder.model(kind, device) != "canonical"

    def rewrite(self, kind: str, device: str, channel: str, payload: bytes) -> bytes:
        """The canonical `payload` (JSON object) in the device's own profile."""
        doc = json.loads(payload)
        if doc.get("event") == "line_crossing" and self.encoder.plan(kind, device).cumulative:
            totals = self._totals.setdefault((kind, device), [0, 0])
            totals[0] += int(doc.get("in", 0))
            totals[1] += int(doc.get("out", 0))
            doc["in"], doc["out"] = totals
            doc.pop("period_s", None)
        return self.encoder.encode(kind, device, channel, doc)

    def door_names(self, kind: str, device: str, doors: Sequence[str]) -> list[str]:
        """The doors as the device can name them in its events.

        A profile that builds door names from a channel number (`{device}-door-{Door}`)
        cannot say a site-model name of another shape: door k becomes the name the decoder
        makes of channel k. Names the profile can say are kept.
        """
        plan = self.encoder.plan(kind, device)
        door = next((s.field for specs in plan.event_fields.values() for s in specs
                     if s.field.name == "door"), None)  # fmt: skip
        if door is None:
            return list(doors)
        names = []
        for k, name in enumerate(doors):
            alias = render_template(door, k, device)
            unsayable = vendor_value(door, name, device) is _DROP
            names.append(alias if unsayable and alias is not None else name)
        return names
