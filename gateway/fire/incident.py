"""The incident: one per building zone, a state machine with legal transitions only.

`pre_alarm → confirmed → dispatched → acknowledged → on_scene → resolved | false_alarm`
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from gateway.errors import GatewayError


class IncidentError(GatewayError):
    """An action names an unknown incident or is not allowed in the incident's state."""


class State(StrEnum):
    """Where an incident is; the values are the contract's `state` strings."""

    PRE_ALARM = "pre_alarm"
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


CLOSED: Final = frozenset({State.RESOLVED, State.FALSE_ALARM})
# States in which the fire is believed real and linkage is on.
LINKED: Final = frozenset({State.CONFIRMED, State.DISPATCHED, State.ACKNOWLEDGED, State.ON_SCENE})
# States in which nobody is on scene yet: the arrive and deadline timers run.
AWAITING: Final = frozenset({State.CONFIRMED, State.DISPATCHED, State.ACKNOWLEDGED})

# People's actions: the states each is allowed in, and where it leads.
ACTIONS: Final[dict[str, tuple[frozenset[State], State]]] = {
    "confirm": (frozenset({State.PRE_ALARM}), State.CONFIRMED),
    "ack": (frozenset({State.CONFIRMED, State.DISPATCHED}), State.ACKNOWLEDGED),
    "on_scene": (AWAITING, State.ON_SCENE),
    "resolve": (LINKED, State.RESOLVED),
    "false_alarm": (frozenset({State.PRE_ALARM}) | LINKED, State.FALSE_ALARM),
}


def next_state(incident_id: str, state: State, action: str) -> State:
    """Where `action` takes an incident in `state`; IncidentError when it may not."""
    rule = ACTIONS.get(action)
    if rule is None:
        raise IncidentError(
            f"unknown action {action!r} for incident {incident_id}; "
            f"expected one of {', '.join(ACTIONS)}"
        )
    allowed, target = rule
    if state not in allowed:
        if state in CLOSED:
            raise IncidentError(f"incident {incident_id} is already {state}: cannot {action}")
        possible = [a for a, (states, _) in ACTIONS.items() if state in states]
        raise IncidentError(
            f"incident {incident_id} is {state}: cannot {action} "
            f"(allowed now: {', '.join(possible)})"
        )
    return target


def parse_action(payload: bytes) -> tuple[str, str]:
    """`(action, by)` from an `…/alerts/fire/{incident}/action` payload.

    IncidentError says what is wrong; nothing is acted on then.
    """
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IncidentError(f"fire action payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise IncidentError('fire action payload must be {"by": ..., "action": ...}')
    action, by = obj.get("action"), obj.get("by")
    if not isinstance(action, str) or action not in ACTIONS:
        raise IncidentError(f"fire action {action!r} is not one of {', '.join(ACTIONS)}")
    if not isinstance(by, str) or not by.strip() or len(by) > 128:
        raise IncidentError("fire action needs 'by': who acts (a non-empty string, ≤ 128 chars)")
    return action, by.strip()


@dataclass(slots=True)
class Source:
    """A device whose alarm joined the incident; repeats are counted, not re-recorded."""

    kind: str
    device: str
    first_ms: int
    last_mono: float
    alarms: int = 1
    clears: int = 0
    active: bool = True

    def repeat(self, mono: float) -> None:
        """The same device alarmed again."""
        self.alarms += 1
        self.last_mono = mono
        self.active = True


@dataclass(slots=True)
class LiveIncident:
    """The engine's mutable record of one incident; changed only by `FireState.apply`."""

    id: str
    building: str
    zone: str
    floor: int | None
    drill: bool
    opened_ms: int
    opened_mono: float
    chain: tuple[str, ...]
    state: State = State.PRE_ALARM
    sources: dict[str, Source] = field(default_factory=dict)
    confirmed_ms: int | None = None
    confirmed_mono: float | None = None
    closed_ms: int | None = None
    team: str | None = None
    chain_index: int = -1
    notified: list[str] = field(default_factory=list)
    tier: int | None = None
    ack_due: float | None = None
    escalation: int = 0
    arrive_done: bool = False
    breach: bool = False
    epoch: int = 0
    linked: list[str] = field(default_factory=list)
    acknowledged_by: str | None = None
    on_scene_by: str | None = None
    on_scene_ms: int | None = None
    closed_by: str | None = None
    reason: str | None = None
    records: list[Any] = field(default_factory=list)
    cmd_seq: int = 0

    @property
    def open(self) -> bool:
        """Not resolved and not a false alarm."""
        return self.state not in CLOSED


@dataclass(frozen=True, slots=True)
class Incident:
    """A snapshot of one incident, as the API and the alerts show it."""

    id: str
    state: State
    site: str
    building: str
    floor: int | None
    zone: str
    drill: bool
    sources: tuple[str, ...]
    opened_at: int
    confirmed_at: int | None
    deadline_at: int
    closed_at: int | None
    team: str | None
    teams: tuple[str, ...]
    tier: int | None
    escalation: int
    breach: bool
    linked: tuple[str, ...]
    doors: dict[str, str]
    acknowledged_by: str | None
    on_scene_by: str | None
    on_scene_at: int | None
    closed_by: str | None
    reason: str | None

    def alert(self, ts_ms: int) -> dict[str, Any]:
        """The contract's fire alert object (plus the gateway's additions, docs/fire.md)."""
        return {
            "id": self.id,
            "state": str(self.state),
            "site": self.site,
            "building": self.building,
            "floor": self.floor,
            "zone": self.zone,
            "sources": list(self.sources),
            "opened_at": self.opened_at,
            "confirmed_at": self.confirmed_at,
            "deadline_at": self.deadline_at,
            "team": self.team,
            "escalation": self.escalation,
            "ts": ts_ms,
            "drill": self.drill,
            "teams": list(self.teams),
            "tier": self.tier,
            "breach": self.breach,
            "linked": list(self.linked),
            "doors": dict(self.doors),
            "doors_confirmed": sorted(d for d, s in self.doors.items() if s == "confirmed"),
            "acknowledged_by": self.acknowledged_by,
            "on_scene_by": self.on_scene_by,
            "on_scene_at": self.on_scene_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "reason": self.reason,
        }
