"""Firmware profiles: how a vendor's payload maps onto the canonical contract.

One TOML file per device model, `firmware_configs/<kind>/<model>.toml`, validated by
pydantic when loaded; the schema is documented in docs/profiles.md. Adding a vendor is a
new file, never a code change.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ProfileError
from gateway.ingest.topic import DEVICE_KINDS
from gateway.site import SiteModel

TsUnit = Literal["ms", "s", "ns", "iso8601"]
Counts = Literal["period", "cumulative"]
Scalar = str | bool | int | float

# The contract's vocabulary (CONTRACT.md). Events allowed per kind; `passage` is the
# canonical name for a vendor's "someone walked through" event (see `passage_event`).
DETECTOR_EVENTS: Final = frozenset(
    {"alarm", "clear", "fault", "fault_clear", "tamper", "test", "low_battery"}
)
EVENTS: Final[dict[str, frozenset[str]]] = {
    "smoke": DETECTOR_EVENTS,
    "heat": DETECTOR_EVENTS,
    "callpoint": frozenset({"alarm", "clear"}),
    "access": frozenset({"swipe", "door_forced", "door_held_open", "passage"}),
    "camera": frozenset({"line_crossing", "people_count", "fire", "smoke", "team_seen"}),
    "screen": frozenset(),
    "voice": frozenset(),
}
# Canonical field names by type. Floats are always stored as floats and counts as ints so
# that InfluxDB never sees one field with two types.
TELEMETRY_FIELDS: Final = ("smoke", "temp", "battery", "rssi")
FLOAT_FIELDS: Final = frozenset({*TELEMETRY_FIELDS, "confidence", "period_s"})
COUNT_FIELDS: Final = frozenset({"in", "out", "count"})
BOOL_FIELDS: Final = frozenset({"granted", "retransmission", "ok"})
STRING_FIELDS: Final = frozenset({"state", "fw", "config_hash", "cmd_id", "error"})
TAG_FIELDS: Final = frozenset({"door", "dir", "checkpoint", "zone", "team"})
# Personal data: stored only as the salted hash `<name>_hash` (e.g. `card_hash`).
SECRET_FIELDS: Final = frozenset({"card", "member"})
CANONICAL_FIELDS: Final = (
    FLOAT_FIELDS | COUNT_FIELDS | BOOL_FIELDS | STRING_FIELDS | TAG_FIELDS | SECRET_FIELDS
)
# Names the decoder itself writes; a profile may not map onto them.
DERIVED_FIELDS: Final = frozenset(
    {
        *(f"{name}_hash" for name in SECRET_FIELDS),
        "device_ts_ms",
        "passage",
        "cumulative",
        "online",
        "bytes",
        "event",
        "ts",
    }
)

_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
_CANONICAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MODEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSource(_Strict):
    """Where the canonical `event` comes from: a vendor field and an optional value map.

    Map keys are the vendor value as text (`"1"` matches the number 1, `"true"` the bool);
    with an empty map the vendor value must already be a canonical event string.
    """

    field: str = "event"
    map: dict[str, str] = {}


class Profile(_Strict):
    """One firmware profile, as written in its TOML file (see docs/profiles.md)."""

    kind: str
    model: str
    vendor: str = ""
    description: str = ""
    ts_field: str = "ts"
    ts_unit: TsUnit = "ms"
    fields: dict[str, str] = {}
    scale: dict[str, float] = {}
    offset: dict[str, float] = {}
    values: dict[str, dict[str, Scalar]] = {}
    templates: dict[str, str] = {}
    events: tuple[EventSource, ...] = (EventSource(),)
    ignore: frozenset[str] = frozenset()
    heartbeat_s: float = Field(gt=0)
    battery_low: float = Field(default=20.0, ge=0, le=100)
    can_synthesize: bool = True
    counts: Counts = "period"
    passage_event: str = "swipe"
    settings: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {sorted(DEVICE_KINDS)}")
        if not _MODEL.match(self.model):
            raise ValueError(f"model {self.model!r} is not [A-Za-z0-9_-]{{1,64}}")
        _check_path("ts_field", self.ts_field)
        for name, path in self.fields.items():
            _check_canonical(f"fields.{name}", name)
            _check_path(f"fields.{name}", path)
        declared = CANONICAL_FIELDS | self.fields.keys()
        for table, names in (
            ("scale", self.scale),
            ("offset", self.offset),
            ("values", self.values),
            ("templates", self.templates),
        ):
            for name in names:
                if name not in declared:
                    raise ValueError(
                        f"{table}.{name}: not a canonical field and not declared in [fields]"
                    )
        for table, names in (("scale", self.scale), ("offset", self.offset)):
            for name in names:
                if name in CANONICAL_FIELDS and name not in FLOAT_FIELDS:
                    raise ValueError(f"{table}.{name}: only float fields can be scaled")
        for name, mapping in self.values.items():
            for code, value in mapping.items():
                problem = _value_problem(name, value)
                if problem:
                    raise ValueError(f"values.{name}.{code}: {problem}")
        for name, template in self.templates.items():
            wanted = self.fields.get(name, name)
            found = [p for p in _PLACEHOLDER.findall(template) if p != "device"]
            if found != [wanted] or template.count("{") != template.count("}"):
                raise ValueError(
                    f"templates.{name}: {template!r} must hold the placeholder {{{wanted}}} "
                    "(the vendor field it formats) once, and optionally {device}"
                )
        allowed = EVENTS[self.kind]
        for i, source in enumerate(self.events):
            _check_path(f"events[{i}].field", source.field)
            for code, event in source.map.items():
                if event not in allowed:
                    raise ValueError(
                        f"events[{i}].map.{code}: {event!r} is not an event of kind "
                        f"{self.kind} (allowed: {', '.join(sorted(allowed)) or 'none'})"
                    )
        if self.kind == "access" and self.passage_event not in EVENTS["access"]:
            raise ValueError(
                f"passage_event {self.passage_event!r} is not an access event "
                f"({', '.join(sorted(EVENTS['access']))})"
            )
        for key, kind in (
            ("passage_event", "access"),
            ("counts", "camera"),
            ("can_synthesize", "voice"),
        ):
            if key in self.model_fields_set and self.kind != kind:
                raise ValueError(f"{key} only applies to kind {kind}")
        return self

    def config_payload(self) -> bytes:
        """The `settings` as the compact, key-sorted JSON published retained on `…/config`."""
        return json.dumps(
            self.settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @property
    def config_hash(self) -> str:
        """A short hash of `config_payload()`: what a device reports back in its status."""
        return hashlib.blake2b(self.config_payload(), digest_size=8).hexdigest()


def _check_path(key: str, path: str) -> None:
    if not _PATH.match(path):
        raise ValueError(f"{key}: {path!r} is not a field name or dotted path like 'data.smoke'")


def _value_problem(name: str, value: Scalar) -> str | None:
    """Why `value` cannot stand for canonical field `name`, or None when it can."""
    if name in FLOAT_FIELDS and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{name} is a number, got {value!r}"
    if name in COUNT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name} is a whole number, got {value!r}"
    if name in BOOL_FIELDS and not isinstance(value, bool):
        return f"{name} is true or false, got {value!r}"
    if name in STRING_FIELDS | TAG_FIELDS | SECRET_FIELDS and not isinstance(value, str):
        return f"{name} is a string, got {value!r}"
    if name == "dir" and value not in ("in", "out"):
        return f"dir is 'in' or 'out', got {value!r}"
    return None


def _check_canonical(key: str, name: str) -> None:
    if name in DERIVED_FIELDS:
        raise ValueError(f"{key}: {name!r} is written by the gateway itself")
    if not _CANONICAL_NAME.match(name):
        raise ValueError(f"{key}: canonical names are lower_snake_case, got {name!r}")


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; its folder must be its kind, its stem its model."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: profile is not UTF-8 (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from exc
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(text, [str(part) for part in first["loc"]])
        where = f"{path}:{line}" if line else str(path)
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ProfileError(f"{where}: {problems}") from None
    if profile.kind != path.parent.name:
        raise ProfileError(
            f"{path}: kind: {profile.kind!r} does not match its folder {path.parent.name!r}"
        )
    if profile.model != path.stem:
        raise ProfileError(
            f"{path}: model: {profile.model!r} does not match file name {path.stem!r}"
        )
    return profile


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line that most likely holds the key at `loc` (best effort, for the message)."""
    for name in reversed(loc):
        if name.isdigit():
            continue
        key = re.compile(
            rf"^\s*(\[+[^\]]*\b{re.escape(name)}\b[^\]]*\]+|\"?{re.escape(name)}\"?\s*=)"
        )
        for lineno, line in enumerate(text.splitlines(), start=1):
            if key.match(line):
                return lineno
        return None
    return None


def _describe(err: Any) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (see docs/profiles.md for the schema)"
    return f"{loc}: {msg}" if loc else msg


class ProfileSet:
    """Every profile under one `firmware_configs/` root, by (kind, model)."""

    def __init__(self, profiles: dict[tuple[str, str], Profile]) -> None:
        self._profiles = dict(profiles)

    @classmethod
    def load(cls, root: Path) -> ProfileSet:
        """Load every `<root>/<kind>/<model>.toml`; raises ProfileError for any bad file."""
        root = Path(root)
        if not root.is_dir():
            raise ProfileError(f"{root}: profile folder does not exist")
        profiles: dict[tuple[str, str], Profile] = {}
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name.startswith((".", "_")):
                continue
            if folder.name not in DEVICE_KINDS:
                raise ProfileError(
                    f"{folder}: unknown kind folder (expected one of {sorted(DEVICE_KINDS)})"
                )
            for path in sorted(folder.glob("*.toml")):
                profile = load_profile(path)
                profiles[(profile.kind, profile.model)] = profile
        return cls(profiles)

    def get(self, kind: str, model: str) -> Profile:
        """The profile of `model` for `kind`; ProfileError lists the models that exist."""
        profile = self._profiles.get((kind, model))
        if profile is None:
            have = ", ".join(self.models(kind)) or "none"
            raise ProfileError(f"no firmware profile {kind}/{model} (available for {kind}: {have})")
        return profile

    def models(self, kind: str) -> list[str]:
        """The model names loaded for `kind`, sorted."""
        return sorted(m for k, m in self._profiles if k == kind)

    def check_site(self, site: SiteModel) -> None:
        """Raise ProfileError unless every model the site refers to exists.

        The `canonical` profile of every kind is required too: it is the default.
        """
        wanted = {(kind, "canonical") for kind in DEVICE_KINDS}
        wanted |= set(site.profiles.items())
        wanted |= {(rule.kind, rule.model) for rule in site.profile_rules}
        missing = sorted(f"{k}/{m}" for k, m in wanted if (k, m) not in self._profiles)
        if missing:
            raise ProfileError(f"site refers to missing firmware profiles: {', '.join(missing)}")

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)
