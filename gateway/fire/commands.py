"""Commands in flight and announcements on terminals.

`CommandBook`: every command the engine sent, until acknowledged or given up after a
bounded number of retries. `AnnouncementLedger`: what each screen and voice terminal was
last told, so the same text is not sent again within its `ttl_s` (a new state or
escalation of the same incident does send again).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.fire.linkage import Terminal


@dataclass(slots=True)
class Command:
    """One command: its wire form and its delivery state."""

    cmd_id: str
    incident: str
    terminal: Terminal
    action: str
    topic: str
    payload: dict[str, Any]
    needs_audio: bool = False
    doors: tuple[str, ...] = ()
    attempts: int = 0
    due: float | None = None  # next retry (monotonic); None: no retry timer


class CommandBook:
    """Commands awaiting their `…/ack`, with retry times."""

    def __init__(self) -> None:
        self._pending: dict[str, Command] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[Command]:
        return iter(list(self._pending.values()))

    def add(self, cmd: Command) -> None:
        """Track a command just sent."""
        self._pending[cmd.cmd_id] = cmd

    def get(self, cmd_id: str) -> Command | None:
        """The pending command with this id."""
        return self._pending.get(cmd_id)

    def done(self, cmd_id: str) -> Command | None:
        """Stop tracking (acknowledged, rejected or given up); the command or None."""
        return self._pending.pop(cmd_id, None)

    def due(self, now: float) -> list[Command]:
        """Commands whose retry time has come, oldest retry time first."""
        found = [c for c in self._pending.values() if c.due is not None and c.due <= now]
        found.sort(key=lambda c: (c.due or 0.0, c.cmd_id))
        return found

    def next_due(self) -> float | None:
        """The earliest retry time."""
        return min((c.due for c in self._pending.values() if c.due is not None), default=None)


@dataclass(slots=True)
class Announcement:
    """The last text a terminal was sent, for which incident and at which epoch."""

    text: str
    incident: str
    epoch: int
    cmd_id: str
    sent: float
    ttl_s: float
    acked: float | None = None
    pending: bool = True

    @property
    def refresh_at(self) -> float:
        """When the terminal's copy expires and may be sent again."""
        return (self.acked if self.acked is not None else self.sent) + self.ttl_s


@dataclass(slots=True)
class AnnouncementLedger:
    """What each terminal shows or says now."""

    entries: dict[Terminal, Announcement] = field(default_factory=dict)
    by_cmd: dict[str, Terminal] = field(default_factory=dict)

    def redundant(
        self, terminal: Terminal, text: str, incident: str, epoch: int, now: float
    ) -> bool:
        """True when sending `text` now would repeat what the terminal already has.

        Same text, still in flight or acknowledged within `ttl_s`, and not a newer state
        or escalation of the same incident.
        """
        entry = self.entries.get(terminal)
        if entry is None or entry.text != text:
            return False
        if entry.incident == incident and epoch > entry.epoch:
            return False
        return entry.pending or now < entry.refresh_at

    def sent(self, terminal: Terminal, announcement: Announcement) -> None:
        """Record a `show`/`say` just sent."""
        old = self.entries.get(terminal)
        if old is not None:
            self.by_cmd.pop(old.cmd_id, None)
        self.entries[terminal] = announcement
        self.by_cmd[announcement.cmd_id] = terminal

    def acked(self, cmd_id: str, ok: bool, now: float) -> None:
        """The terminal answered the command that put its text there."""
        terminal = self.by_cmd.get(cmd_id)
        entry = self.entries.get(terminal) if terminal else None
        if entry is not None and entry.cmd_id == cmd_id:
            entry.pending = False
            if ok:
                entry.acked = now

    def given_up(self, cmd_id: str) -> None:
        """The command was never acknowledged: the text counts as sent, not in flight."""
        terminal = self.by_cmd.get(cmd_id)
        entry = self.entries.get(terminal) if terminal else None
        if entry is not None and entry.cmd_id == cmd_id:
            entry.pending = False

    def drop(self, terminal: Terminal) -> None:
        """The terminal was cleared or stopped."""
        old = self.entries.pop(terminal, None)
        if old is not None:
            self.by_cmd.pop(old.cmd_id, None)

    def owned_by(self, incident: str) -> list[Terminal]:
        """Terminals whose current text came from `incident`."""
        return [t for t, e in self.entries.items() if e.incident == incident]
