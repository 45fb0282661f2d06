"""The site model: buildings, floors, zones, checkpoints, devices, fire teams.

Loaded once from the `[site]` part of the config; `SiteIndex` maps every device the model
names to where it is, so the hot path does one dict lookup per message.
"""

from __future__ import annotations

from typing import Annotated, Final, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
RESERVED: Final = frozenset({"alerts", "state", "gateway"})
CardHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Strict):
    """A fire zone: the unit an incident is opened for (usually one floor of a building)."""

    id: Name
    floor: int
    name: str = ""
    smoke: list[Name] = []
    heat: list[Name] = []
    callpoints: list[Name] = []
    egress_doors: list[Name] = []


class Building(_Strict):
    """A building with its fire zones and its people-facing devices."""

    id: Name
    name: str = ""
    floors: int = Field(default=1, ge=1, le=200)
    position_m: tuple[float, float] = (0.0, 0.0)
    zones: list[Zone] = []
    screens: list[Name] = []
    voice: list[Name] = []
    access: list[Name] = []
    cameras: list[Name] = []
    # Head-count (docs/headcount.md): a crowding alert when occupancy goes over this.
    occupancy_limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _not_reserved(self) -> Building:
        if self.id in RESERVED:
            raise ValueError(f"building id {self.id!r} is reserved for the gateway's own topics")
        return self


class Checkpoint(_Strict):
    """An enclosed entrance: its doors, card readers and cameras, and what it leads into.

    `building` is the topic segment its devices publish under (perimeter gates commonly
    use a pseudo-building such as `gates`); `leads_to` lists the buildings whose occupancy
    its flows change (empty: the site perimeter). `inside_perimeter`: people reach it from
    within the site (behind a perimeter gate), so its flows change its building but not
    the site's occupancy. Limits of the head-count alerts: see docs/headcount.md.
    """

    id: Name
    name: str = ""
    building: Name
    doors: list[Name] = []
    access: list[Name] = []
    cameras: list[Name] = []
    leads_to: list[Name] = []
    inside_perimeter: bool = False
    inflow_limit_per_min: int | None = Field(default=None, ge=1)
    tailgate_min_count: int | None = Field(default=None, ge=0)
    tailgate_ratio: float | None = Field(default=None, ge=1)


class FireTeam(_Strict):
    """A micro fire station or duty team that can be dispatched."""

    id: Name
    name: str = ""
    tier: int = Field(default=0, ge=0, le=3)
    position_m: tuple[float, float] = (0.0, 0.0)
    # Salted hashes of the members' access cards (docs/fire.md: how to compute them); a
    # swipe of one at a checkpoint of the incident's building reports the team on scene.
    card_hashes: list[CardHash] = []
    # JSON POST target for this team's notifications (WeCom/DingTalk robot, SMS gateway).
    webhook_url: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parsed = urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError(
                f"webhook_url {url!r} must be an http:// or https:// URL with a host, "
                "e.g. https://oapi.dingtalk.com/robot/send?access_token=…"
            )
        return url


class ProfileRule(_Strict):
    """Devices of `kind` whose id starts with `prefix` speak firmware profile `model`."""

    kind: str
    prefix: str = ""
    model: str


class SiteModel(_Strict):
    """Everything the gateway knows about the community it serves."""

    name: str = ""
    card_salt: str = ""
    card_salt_file: str | None = None
    buildings: list[Building] = []
    checkpoints: list[Checkpoint] = []
    fire_teams: list[FireTeam] = []
    gate_screens: list[Name] = []
    profiles: dict[str, str] = {}
    profile_rules: list[ProfileRule] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> SiteModel:
        _require_unique("building", [b.id for b in self.buildings])
        _require_unique("checkpoint", [c.id for c in self.checkpoints])
        _require_unique("zone", [z.id for b in self.buildings for z in b.zones])
        known = {b.id for b in self.buildings}
        for cp in self.checkpoints:
            for target in cp.leads_to:
                if target not in known:
                    raise ValueError(f"checkpoint {cp.id!r} leads_to unknown building {target!r}")
        return self


def _require_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what} id {item!r} appears twice")
        seen.add(item)


class DevicePlace(NamedTuple):
    """Where a provisioned device is: its tags on every point it produces.

    A named tuple: it keys the line encoder's caches for every message, and a tuple's
    hash runs in C (a frozen dataclass's is a Python call).
    """

    zone: str | None
    floor: int | None
    checkpoint: str | None


class SiteIndex:
    """Dense lookups built once from the site model."""

    def __init__(self, site: SiteModel) -> None:
        self.site = site
        self.places: dict[tuple[str, str, str], DevicePlace] = {}
        self.building_ids: frozenset[str] = frozenset(b.id for b in site.buildings)
        self.door_checkpoint: dict[str, str] = {}
        for b in site.buildings:
            for z in b.zones:
                place = DevicePlace(zone=z.id, floor=z.floor, checkpoint=None)
                for kind, ids in (
                    ("smoke", z.smoke),
                    ("heat", z.heat),
                    ("callpoint", z.callpoints),
                ):
                    for dev in ids:
                        self.places[(b.id, kind, dev)] = place
            bare = DevicePlace(zone=None, floor=None, checkpoint=None)
            for kind, ids in (
                ("screen", b.screens),
                ("voice", b.voice),
                ("access", b.access),
                ("camera", b.cameras),
            ):
                for dev in ids:
                    self.places.setdefault((b.id, kind, dev), bare)
        for cp in site.checkpoints:
            place = DevicePlace(zone=None, floor=None, checkpoint=cp.id)
            for kind, ids in (("access", cp.access), ("camera", cp.cameras)):
                for dev in ids:
                    self.places[(cp.building, kind, dev)] = place
            for door in cp.doors:
                self.door_checkpoint[door] = cp.id
        for dev in site.gate_screens:
            self.places.setdefault(("gates", "screen", dev), DevicePlace(None, None, None))

    def place(self, building: str, kind: str, device: str) -> DevicePlace | None:
        """The device's place, or None when the site model does not list it (unprovisioned)."""
        return self.places.get((building, kind, device))

    def profile_for(self, kind: str, device: str) -> str:
        """The firmware profile model a device speaks (`canonical` unless a rule says else)."""
        for rule in self.site.profile_rules:
            if rule.kind == kind and device.startswith(rule.prefix):
                return rule.model
        return self.site.profiles.get(kind, "canonical")

    def device_count(self) -> int:
        """How many devices the site model provisions."""
        return len(self.places)
