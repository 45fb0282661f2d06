"""Escalation timers of an incident, derived from its state alone (so a restart keeps them).

| timer    | runs while                                   | due at                        |
|----------|----------------------------------------------|-------------------------------|
| verify   | pre_alarm                                    | opened + verify_s             |
| ack      | dispatched, a next team exists in the chain  | dispatched + ack_s (chained)  |
| arrive   | confirmed/dispatched/acknowledged, once      | confirmed + arrive_s          |
| deadline | confirmed/dispatched/acknowledged, once      | opened + deadline_s           |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from gateway.fire.incident import AWAITING, LiveIncident, State
from gateway.fire.linkage import SiteLinkage

if TYPE_CHECKING:
    from gateway.config import FireSection

TimerName = Literal["verify", "ack", "arrive", "deadline"]
# What each timer escalates for, as written in the audit record and the notification.
REASONS: Final[dict[TimerName, str]] = {
    "verify": "verify_timeout",
    "ack": "no_ack",
    "arrive": "not_on_scene",
    "deadline": "deadline",
}


@dataclass(frozen=True, slots=True)
class EscalationTimer:
    """One pending timer of one incident."""

    due: float
    name: TimerName
    incident: str


def timers_of(inc: LiveIncident, settings: FireSection) -> list[EscalationTimer]:
    """The timers running for `inc` now (none once it is on scene or closed)."""
    out: list[EscalationTimer] = []
    if inc.state == State.PRE_ALARM:
        out.append(EscalationTimer(inc.opened_mono + settings.verify_s, "verify", inc.id))
    if inc.state == State.DISPATCHED and inc.ack_due is not None:
        out.append(EscalationTimer(inc.ack_due, "ack", inc.id))
    if inc.state in AWAITING:
        if not inc.arrive_done and inc.confirmed_mono is not None:
            out.append(EscalationTimer(inc.confirmed_mono + settings.arrive_s, "arrive", inc.id))
        if not inc.breach:
            out.append(EscalationTimer(inc.opened_mono + settings.deadline_s, "deadline", inc.id))
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """Who an escalation alerts, and the next ack timer when it moves the chain on."""

    team: str | None
    tier: int | None
    chain_index: int | None = None
    has_next: bool = False


def target_for(name: TimerName, inc: LiveIncident, link: SiteLinkage) -> Target:
    """The team an expiring timer escalates to.

    ack: the next team of the chain (tier, then distance); arrive: the nearest team of
    tier ≥ 1 (street command); deadline: the nearest team of the highest tier.
    """
    if name == "ack":
        index = inc.chain_index + 1
        if index >= len(inc.chain):
            return Target(None, None)
        team = inc.chain[index]
        return Target(team, link.tier(team), index, index + 1 < len(inc.chain))
    if name == "arrive":
        found = link.nearest_at_tier(inc.building, 1)
    else:
        found = link.top_tier(inc.building)
    return Target(found, link.tier(found) if found else None)
