"""Released egress doors: who holds them open, and whether their controller confirmed it.

A door is held by every open incident whose zone (or building) it serves and goes back to
`normal` only when the last of them closes. Release is confirmed, not assumed: by the
controller's `ack` with `ok: true` for the release command, or by a status saying it is
released; until then the door is `pending`, and past `door_confirm_s` `unconfirmed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from gateway.fire.linkage import Controller

DoorStatus = Literal["pending", "confirmed", "unconfirmed"]
# `state` values in a door controller's status that mean its doors are released.
RELEASED_STATES: Final = frozenset({"released", "unlocked", "open"})


@dataclass(slots=True)
class Door:
    """One released door."""

    door: str
    controllers: tuple[Controller, ...]
    holds: set[str] = field(default_factory=set)
    status: DoorStatus = "pending"
    due: float | None = None  # when an unconfirmed release is commanded again
    attempts: int = 0  # release commands sent so far
    trouble: bool = False  # a trouble alert is raised for it


class DoorBook:
    """Every door currently released (or being released) by the fire engine."""

    def __init__(self) -> None:
        self.doors: dict[str, Door] = {}

    def hold(self, incident: str, door: str, controllers: tuple[Controller, ...]) -> bool:
        """`incident` needs `door` open; True when the door was not released yet."""
        entry = self.doors.get(door)
        if entry is None:
            self.doors[door] = Door(door, controllers, {incident})
            return True
        entry.holds.add(incident)
        return False

    def free(self, incident: str, door: str) -> bool:
        """`incident` no longer needs `door`; True when nobody does (back to normal)."""
        entry = self.doors.get(door)
        if entry is None:
            return False
        entry.holds.discard(incident)
        if entry.holds:
            return False
        del self.doors[door]
        return True

    def commanded(self, door: str, due: float) -> None:
        """A release command for `door` went out; it must confirm by `due`."""
        entry = self.doors.get(door)
        if entry is not None and entry.status != "confirmed":
            entry.attempts += 1
            entry.due = due

    def confirm(self, door: str) -> bool:
        """The controller confirmed; True when that is news."""
        entry = self.doors.get(door)
        if entry is None or entry.status == "confirmed":
            return False
        entry.status = "confirmed"
        entry.due = None
        return True

    def unconfirmed(self, door: str, due: float | None) -> None:
        """The door missed its confirmation time; next re-command at `due` (None: give up)."""
        entry = self.doors.get(door)
        if entry is not None and entry.status != "confirmed":
            entry.status = "unconfirmed"
            entry.trouble = True
            entry.due = due

    def of_controller(self, controller: Controller) -> list[str]:
        """Unconfirmed doors this controller drives."""
        return [
            d.door
            for d in self.doors.values()
            if d.status != "confirmed" and controller in d.controllers
        ]

    def held_by(self, incident: str) -> list[str]:
        """Doors `incident` holds, sorted."""
        return sorted(d.door for d in self.doors.values() if incident in d.holds)

    def status_of(self, incident: str) -> dict[str, str]:
        """`{door: status}` for the doors `incident` holds."""
        return {d: self.doors[d].status for d in self.held_by(incident)}

    def due(self, now: float) -> list[Door]:
        """Doors whose confirmation time has passed."""
        found = [d for d in self.doors.values() if d.due is not None and d.due <= now]
        found.sort(key=lambda d: (d.due or 0.0, d.door))
        return found

    def next_due(self) -> float | None:
        """The earliest confirmation deadline."""
        return min((d.due for d in self.doors.values() if d.due is not None), default=None)
