"""Who gets what in a fire: zones, terminals, door controllers and the team chain of a site.

Built once from the site model; every lookup the engine makes on the alarm path is a dict
lookup here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from gateway.fire.texts import building_label
from gateway.site import Building, FireTeam, SiteIndex, Zone

GATES_BUILDING: Final = "gates"  # topic building segment of the site's gate screens
UNKNOWN_ZONE: Final = "unknown"  # zone of an alarm the site model cannot place

Terminal = tuple[str, str, str]  # (topic building, kind, device)
Controller = tuple[str, str]  # (topic building, access device)


def card_hash(salt: bytes, card: str) -> str:
    """The salted hash the gateway stores for a card number (same as the decoder's)."""
    return hashlib.blake2b(salt + card.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class ZoneRef:
    """Where an alarm is: the key of its incident is (building, zone)."""

    building: str
    zone: str
    floor: int | None


class SiteLinkage:
    """Terminals, doors and teams of a site, as the fire engine needs them."""

    def __init__(
        self, site: SiteIndex, can_synthesize: Callable[[str], bool] | None = None
    ) -> None:
        self._index = site
        model = site.site
        self._can_synthesize = can_synthesize or (lambda _device: True)
        self.buildings: dict[str, Building] = {b.id: b for b in model.buildings}
        self.zones: dict[str, tuple[Building, Zone]] = {
            z.id: (b, z) for b in model.buildings for z in b.zones
        }
        self.teams: dict[str, FireTeam] = {t.id: t for t in model.fire_teams}
        self._cards: dict[str, str] = {h: t.id for t in model.fire_teams for h in t.card_hashes}
        self._checkpoints = {c.id: c for c in model.checkpoints}
        # A door at a checkpoint is driven by that checkpoint's controllers; any other door
        # by the access controllers of its building.
        self._door_controllers: dict[str, list[Controller]] = {}
        for cp in model.checkpoints:
            for door in cp.doors:
                self._door_controllers[door] = [(cp.building, dev) for dev in cp.access]
        self._chains: dict[str, tuple[str, ...]] = {}

    # -- where -----------------------------------------------------------------------------

    def locate(self, building: str, kind: str, device: str, tag_zone: str | None) -> ZoneRef:
        """The zone of an alarm; an unprovisioned device still gets one (never dropped).

        The site model's zone of the device wins; else the `zone` tag of the message
        (cameras name the zone they see); else the building's `unknown` zone.
        """
        place = self._index.place(building, kind, device)
        zone_id = place.zone if place is not None and place.zone is not None else tag_zone
        if zone_id is not None:
            found = self.zones.get(zone_id)
            if found is not None:
                return ZoneRef(found[0].id, zone_id, found[1].floor)
            return ZoneRef(building, zone_id, None)
        return ZoneRef(building, UNKNOWN_ZONE, None)

    def labels(self, ref: ZoneRef) -> tuple[str, str]:
        """`{building}` and `{zone}` of the texts."""
        b = self.buildings.get(ref.building)
        found = self.zones.get(ref.zone)
        zone = (found[1].name or found[1].id) if found else ref.zone
        return building_label(ref.building, b.name if b else ""), zone

    # -- who hears it ----------------------------------------------------------------------

    def screens(self, building: str, gates: bool) -> list[Terminal]:
        """The building's screens, then the site's gate screens when `gates`."""
        b = self.buildings.get(building)
        out = [(building, "screen", d) for d in b.screens] if b else []
        if gates:
            out += [(GATES_BUILDING, "screen", d) for d in self._index.site.gate_screens]
        return out

    def voice(self, building: str) -> list[Terminal]:
        """The building's voice terminals."""
        b = self.buildings.get(building)
        return [(building, "voice", d) for d in b.voice] if b else []

    def needs_audio(self, device: str) -> bool:
        """True when a voice terminal cannot synthesize speech from text."""
        return not self._can_synthesize(device)

    # -- doors ---------------------------------------------------------------------------

    def egress_doors(self, building: str, zone: str, whole_building: bool) -> list[str]:
        """Doors to release: the zone's egress doors, or every zone's of the building."""
        b = self.buildings.get(building)
        if b is None:
            return []
        zones = b.zones if whole_building else [z for z in b.zones if z.id == zone]
        return sorted({d for z in zones for d in z.egress_doors})

    def controllers(self, building: str, door: str) -> list[Controller]:
        """The access controllers that drive `door` (empty: the site model names none)."""
        found = self._door_controllers.get(door)
        if found is not None:
            return found
        b = self.buildings.get(building)
        return [(building, dev) for dev in b.access] if b else []

    # -- teams ---------------------------------------------------------------------------

    def chain(self, building: str) -> tuple[str, ...]:
        """Dispatch order for a building: by tier, then distance, then id."""
        cached = self._chains.get(building)
        if cached is None:
            b = self.buildings.get(building)
            where = b.position_m if b else (0.0, 0.0)
            teams = sorted(
                self.teams.values(),
                key=lambda t: (t.tier, math.dist(t.position_m, where), t.id),
            )
            cached = self._chains[building] = tuple(t.id for t in teams)
        return cached

    def tier(self, team: str) -> int:
        """A team's tier (0 when the team is no longer in the site model)."""
        t = self.teams.get(team)
        return t.tier if t else 0

    def nearest_at_tier(self, building: str, min_tier: int) -> str | None:
        """The nearest team of the lowest tier ≥ `min_tier`, or None."""
        for team in self.chain(building):
            if self.tier(team) >= min_tier:
                return team
        return None

    def top_tier(self, building: str) -> str | None:
        """The nearest team of the highest tier."""
        chain = self.chain(building)
        if not chain:
            return None
        top = max(self.tier(t) for t in chain)
        return next(t for t in chain if self.tier(t) == top)

    def card_team(self, card: str) -> str | None:
        """The team whose member carries the card with this hash."""
        return self._cards.get(card)

    def reaches(self, topic_building: str, checkpoint: str | None, building: str) -> bool:
        """True when a reader or camera there (a card swipe, a team seen) is at `building`.

        The device publishes under `building`, or `checkpoint` (the message's tag) is of
        `building` or leads to it.
        """
        if topic_building == building:
            return True
        cp = self._checkpoints.get(checkpoint) if checkpoint else None
        return cp is not None and (cp.building == building or building in cp.leads_to)


def group_by_controller(
    doors: list[str], controllers_of: Mapping[str, list[Controller]]
) -> dict[Controller, list[str]]:
    """Doors per controller, each list sorted, controllers in first-seen order."""
    out: dict[Controller, list[str]] = {}
    for door in doors:
        for ctl in controllers_of[door]:
            out.setdefault(ctl, []).append(door)
    return {ctl: sorted(ds) for ctl, ds in out.items()}
