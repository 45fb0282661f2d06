"""A profile compiled once into flat lookup plans, so decoding does no per-message setup."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from gateway.decode.profiles import (
    BOOL_FIELDS,
    CANONICAL_FIELDS,
    COUNT_FIELDS,
    DERIVED_FIELDS,
    EVENTS,
    FLOAT_FIELDS,
    SECRET_FIELDS,
    STRING_FIELDS,
    TAG_FIELDS,
    TELEMETRY_FIELDS,
    Profile,
    Scalar,
)

# How a canonical field's value is checked and stored.
FLOAT, COUNT, BOOL, STR, TAG, SECRET, ANY = range(7)
_KINDS: Final = (
    (FLOAT_FIELDS, FLOAT),
    (COUNT_FIELDS, COUNT),
    (BOOL_FIELDS, BOOL),
    (STRING_FIELDS, STR),
    (TAG_FIELDS, TAG),
    (SECRET_FIELDS, SECRET),
)
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")

# Contract fields per event beyond the telemetry readings: (name, required, from_place).
# `from_place`: when absent from the payload, the site model may supply it.
_ACCESS: Final = (("door", True, False), ("dir", False, False), ("card", False, False))
_EVENT_FIELDS: Final[dict[tuple[str, str], tuple[tuple[str, bool, bool], ...]]] = {
    ("access", "swipe"): (*_ACCESS, ("granted", True, False)),
    ("access", "passage"): (*_ACCESS, ("granted", False, False)),
    ("access", "door_forced"): _ACCESS,
    ("access", "door_held_open"): _ACCESS,
    ("camera", "line_crossing"): (
        ("checkpoint", True, True),
        ("in", True, False),
        ("out", True, False),
        ("period_s", False, False),
        ("retransmission", False, False),
    ),
    ("camera", "people_count"): (("zone", True, True), ("count", True, False)),
    ("camera", "fire"): (("zone", True, True), ("confidence", True, False)),
    ("camera", "smoke"): (("zone", True, True), ("confidence", True, False)),
    # A fire team member recognised at a checkpoint (docs/fire.md, "On scene").
    ("camera", "team_seen"): (
        ("team", True, False),
        ("confidence", True, False),
        ("checkpoint", False, True),
        ("member", False, False),
    ),
}
_STATUS: Final = (("state", False, False), ("fw", False, False), ("config_hash", False, False))
_ACK: Final = (("cmd_id", True, False), ("ok", True, False), ("error", False, False))


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One canonical field: where it is in the vendor payload and how to convert it.

    `template` parts: None is the device id, "" the vendor value, anything else literal.
    """

    name: str
    out: str
    is_tag: bool
    vendor: str
    top: str
    rest: tuple[str, ...]
    kind: int
    scale: float
    offset: float
    scaled: bool
    values: dict[str, Scalar] | None
    template: tuple[str | None, ...] | None
    # A top-level number stored as it is (no scaling, mapping or template): the decoder's
    # fast path takes a finite float of such a field without calling `_convert`.
    plain_float: bool = False


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field as one channel or event needs it."""

    field: FieldPlan
    required: bool
    from_place: bool


@dataclass(frozen=True, slots=True)
class EventSourcePlan:
    """A vendor field the canonical event is read from."""

    path: str
    top: str
    rest: tuple[str, ...]
    map: dict[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything `Decoder.decode` needs about one (kind, model), precomputed."""

    label: str
    ts_top: str
    ts_rest: tuple[str, ...]
    ts_unit: str
    ts_where: str
    events: tuple[EventSourcePlan, ...]
    allowed_events: frozenset[str]
    telemetry: tuple[FieldSpec, ...]
    event_fields: dict[str, tuple[FieldSpec, ...]]
    status: tuple[FieldSpec, ...]
    ack: tuple[FieldSpec, ...]
    reserved: frozenset[str]
    cumulative: bool
    passage_event: str


def compile_plan(profile: Profile) -> Plan:
    """Turn a validated profile into the decoder's lookup plan."""
    plans: dict[str, FieldPlan] = {}

    def field(name: str) -> FieldPlan:
        if name not in plans:
            plans[name] = _field_plan(profile, name)
        return plans[name]

    declared = [n for n in profile.fields if n not in CANONICAL_FIELDS]
    common = [(n, False, False) for n in (*TELEMETRY_FIELDS, *declared)]

    def specs(extra: tuple[tuple[str, bool, bool], ...]) -> tuple[FieldSpec, ...]:
        chosen = {name: (name, req, place) for name, req, place in (*common, *extra)}
        return tuple(FieldSpec(field(n), req, place) for n, req, place in chosen.values())

    allowed = EVENTS[profile.kind]
    event_fields = {ev: specs(_EVENT_FIELDS.get((profile.kind, ev), ())) for ev in allowed}
    telemetry, status, ack = specs(()), specs(_STATUS), specs(_ACK)
    ts_top, *ts_rest = profile.ts_field.split(".")
    sources = tuple(
        EventSourcePlan(s.field, s.field.split(".")[0], tuple(s.field.split(".")[1:]), dict(s.map))
        for s in profile.events
    )
    label = f"{profile.kind}/{profile.model}"
    ts_where = repr(profile.ts_field)
    if profile.model != "canonical":
        ts_where += f" (timestamp, {profile.ts_unit}, of profile {label})"
    reserved = (
        CANONICAL_FIELDS
        | DERIVED_FIELDS
        | profile.fields.keys()
        | {p.top for p in plans.values()}
        | {s.top for s in sources}
        | {ts_top}
        | profile.ignore
    )
    return Plan(
        label=label,
        ts_top=ts_top,
        ts_rest=tuple(ts_rest),
        ts_unit=profile.ts_unit,
        ts_where=ts_where,
        events=sources,
        allowed_events=allowed,
        telemetry=telemetry,
        event_fields=event_fields,
        status=status,
        ack=ack,
        reserved=frozenset(reserved),
        cumulative=profile.counts == "cumulative",
        passage_event=profile.passage_event,
    )


def _field_plan(profile: Profile, name: str) -> FieldPlan:
    vendor = profile.fields.get(name, name)
    top, *rest = vendor.split(".")
    kind = next((k for names, k in _KINDS if name in names), ANY)
    scale = profile.scale.get(name, 1.0)
    offset = profile.offset.get(name, 0.0)
    template = profile.templates.get(name)
    scaled = scale != 1.0 or offset != 0.0
    values = dict(profile.values[name]) if name in profile.values else None
    return FieldPlan(
        name=name,
        out=f"{name}_hash" if name in SECRET_FIELDS else name,
        is_tag=kind == TAG,
        vendor=vendor,
        top=top,
        rest=tuple(rest),
        kind=kind,
        scale=scale,
        offset=offset,
        scaled=scaled,
        values=values,
        template=None if template is None else _template_parts(template),
        plain_float=kind == FLOAT
        and not scaled
        and values is None
        and template is None
        and not rest,
    )


def _template_parts(template: str) -> tuple[str | None, ...]:
    parts: list[str | None] = []
    for i, piece in enumerate(_PLACEHOLDER.split(template)):
        if i % 2 == 0:
            if piece:
                parts.append(piece)
        else:
            parts.append(None if piece == "device" else "")
    return tuple(parts)


def value_text(value: Any) -> str | None:
    """A vendor value as the text used for profile map keys; None when it has none."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value) if -(10**18) < value < 10**18 else None
    if t is float and math.isfinite(value) and abs(value) < 1e18:
        return str(int(value)) if value.is_integer() else repr(value)
    return None
