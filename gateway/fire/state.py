"""The fire engine's state, changed only by applying audit records.

The engine decides, writes an `AuditRecord`, and applies it here; `restore` applies the
stored records the same way. So the state after a restart is, by construction, the state
the records describe: open incidents, their timers, commands in flight, released doors.
Times in records are wall milliseconds; timers are monotonic, converted on apply.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from gateway.clock import Clock
from gateway.fire import actions as k
from gateway.fire.actions import AuditRecord
from gateway.fire.commands import Announcement, AnnouncementLedger, Command, CommandBook
from gateway.fire.doors import DoorBook
from gateway.fire.incident import CLOSED, Incident, LiveIncident, Source, State
from gateway.fire.linkage import Controller

if TYPE_CHECKING:
    from gateway.config import FireSection

_ID: Final = re.compile(r"^(?P<stem>.+-\d{8})-(?P<n>\d+)$")
_CMD: Final = re.compile(r"-c(?P<n>\d+)$")


class FireState:
    """Incidents, commands, doors and announcements: everything the records build."""

    def __init__(self, settings: FireSection, clock: Clock, site_id: str) -> None:
        self.settings = settings
        self.clock = clock
        self.site_id = site_id
        self.incidents: dict[str, LiveIncident] = {}
        self.open_by_zone: dict[tuple[str, str], str] = {}
        self.commands = CommandBook()
        self.doors = DoorBook()
        self.ledger = AnnouncementLedger()
        self.id_seq: dict[str, int] = {}

    def to_mono(self, ts_ms: int) -> float:
        """The monotonic time of a wall timestamp (exact for records made just now)."""
        return self.clock.monotonic() - (self.clock.wall_ms() - ts_ms) / 1000.0

    def to_wall(self, mono: float) -> int:
        """The wall timestamp of a monotonic time."""
        return self.clock.wall_ms() + round((mono - self.clock.monotonic()) * 1000)

    def open_incidents(self) -> list[LiveIncident]:
        """Open incidents, oldest first."""
        return [i for i in self.incidents.values() if i.open]

    def snapshot(self, inc: LiveIncident) -> Incident:
        """The incident as the API and alerts show it."""
        return Incident(
            id=inc.id,
            state=inc.state,
            site=self.site_id,
            building=inc.building,
            floor=inc.floor,
            zone=inc.zone,
            drill=inc.drill,
            sources=tuple(inc.sources),
            opened_at=inc.opened_ms,
            confirmed_at=inc.confirmed_ms,
            deadline_at=inc.opened_ms + round(self.settings.deadline_s * 1000),
            closed_at=inc.closed_ms,
            team=inc.team,
            teams=tuple(inc.notified),
            tier=inc.tier,
            escalation=inc.escalation,
            breach=inc.breach,
            linked=tuple(inc.linked),
            doors=self.doors.status_of(inc.id),
            acknowledged_by=inc.acknowledged_by,
            on_scene_by=inc.on_scene_by,
            on_scene_at=inc.on_scene_ms,
            closed_by=inc.closed_by,
            reason=inc.reason,
        )

    # -- applying records ------------------------------------------------------------------

    def apply(self, rec: AuditRecord) -> None:
        """Change the state as `rec` says; KeyError/ValueError/TypeError on a bad record."""
        d = rec.data
        if rec.kind == k.OPENED:
            self._opened(rec)
            return
        inc = self.incidents[rec.incident]
        inc.records.append(rec)
        kind = rec.kind
        if kind == k.SOURCE:
            device = str(d["device"])
            src = inc.sources.get(device)
            if src is None:
                inc.sources[device] = Source(str(d["kind"]), device, rec.ts, self.to_mono(rec.ts))
            else:
                src.repeat(self.to_mono(rec.ts))
        elif kind == k.CLEAR:
            src = inc.sources.get(str(d["device"]))
            if src is not None:
                src.active = False
                src.clears += 1
        elif kind == k.STATE:
            self._state(inc, rec)
        elif kind in (k.DISPATCH, k.ESCALATION):
            self._dispatch(inc, rec)
        elif kind == k.COMMAND:
            self._command(inc, rec)
        elif kind == k.RETRY:
            cmd = self.commands.get(str(d["cmd_id"]))
            if cmd is not None:
                cmd.attempts = int(d["attempt"])
                cmd.due = self.to_mono(rec.ts) + self.settings.command_retry_s
        elif kind == k.ACK:
            cmd_id = str(d["cmd_id"])
            self.commands.done(cmd_id)
            self.ledger.acked(cmd_id, bool(d["ok"]), self.to_mono(rec.ts))
        elif kind == k.COMMAND_FAILED:
            self.commands.done(str(d["cmd_id"]))
            self.ledger.given_up(str(d["cmd_id"]))
        elif kind == k.DOORS_HELD:
            held: dict[str, Any] = d["doors"]
            for door, ctls in held.items():
                controllers: tuple[Controller, ...] = tuple((str(b), str(v)) for b, v in ctls)
                self.doors.hold(inc.id, door, controllers)
        elif kind == k.DOORS_FREED:
            for door in d["doors"]:
                self.doors.free(inc.id, str(door))
        elif kind == k.DOOR_CONFIRMED:
            self.doors.confirm(str(d["door"]))
        elif kind == k.DOOR_UNCONFIRMED:
            self.doors.unconfirmed(str(d["door"]), None)

    def _opened(self, rec: AuditRecord) -> None:
        d = rec.data
        floor = d.get("floor")
        inc = LiveIncident(
            id=rec.incident,
            building=str(d["building"]),
            zone=str(d["zone"]),
            floor=int(floor) if floor is not None else None,
            drill=bool(d.get("drill", False)),
            opened_ms=rec.ts,
            opened_mono=self.to_mono(rec.ts),
            chain=tuple(str(t) for t in d.get("chain", ())),
            linked=[str(x) for x in d.get("linked", ())],
        )
        inc.records.append(rec)
        self.incidents[inc.id] = inc
        if not inc.drill:
            self.open_by_zone[(inc.building, inc.zone)] = inc.id
        for other in inc.linked:
            peer = self.incidents.get(other)
            if peer is not None and inc.id not in peer.linked:
                peer.linked.append(inc.id)
        m = _ID.match(inc.id)
        if m:
            stem, n = m.group("stem"), int(m.group("n"))
            self.id_seq[stem] = max(self.id_seq.get(stem, 0), n)

    def _state(self, inc: LiveIncident, rec: AuditRecord) -> None:
        to = State(rec.data["to"])
        inc.state = to
        inc.epoch += 1
        inc.reason = rec.data.get("reason")
        if to == State.CONFIRMED:
            inc.confirmed_ms = rec.ts
            inc.confirmed_mono = self.to_mono(rec.ts)
        elif to == State.ACKNOWLEDGED:
            inc.acknowledged_by = rec.by
        elif to == State.ON_SCENE:
            inc.on_scene_by = rec.by
            inc.on_scene_ms = rec.ts
        elif to in CLOSED:
            inc.closed_ms = rec.ts
            inc.closed_by = rec.by
            inc.ack_due = None
            for cmd in self.commands:
                # Announcements and releases of a closed incident are obsolete; what the
                # close itself sends (clear, stop, normal) comes after this record.
                if cmd.incident == inc.id:
                    self.commands.done(cmd.cmd_id)
                    self.ledger.given_up(cmd.cmd_id)
            if self.open_by_zone.get((inc.building, inc.zone)) == inc.id:
                del self.open_by_zone[(inc.building, inc.zone)]

    def _dispatch(self, inc: LiveIncident, rec: AuditRecord) -> None:
        d = rec.data
        team = d.get("team")
        if team is not None:
            if team not in inc.notified:
                inc.notified.append(str(team))
            tier = int(d.get("tier", 0))
            inc.tier = tier if inc.tier is None else max(inc.tier, tier)
        reason = d.get("reason")
        if rec.kind == k.ESCALATION:
            inc.escalation = int(d["level"])
            inc.epoch += 1
        if rec.kind == k.DISPATCH or reason == "no_ack":
            inc.team = str(team) if team is not None else inc.team
            inc.chain_index = int(d.get("chain_index", inc.chain_index))
            due = d.get("ack_due_at")
            inc.ack_due = self.to_mono(int(due)) if due is not None else None
        elif reason == "not_on_scene":
            inc.arrive_done = True
        elif reason == "deadline":
            inc.breach = True

    def _command(self, inc: LiveIncident, rec: AuditRecord) -> None:
        d = rec.data
        cmd_id = str(d["cmd_id"])
        m = _CMD.search(cmd_id)
        if m:
            inc.cmd_seq = max(inc.cmd_seq, int(m.group("n")))
        terminal = (str(d["building"]), str(d["kind"]), str(d["device"]))
        action = str(d["action"])
        sent = self.to_mono(rec.ts)
        doors = tuple(str(x) for x in d.get("doors", ()))
        retry = action != "release"  # a release is re-commanded by door confirmation
        self.commands.add(
            Command(
                cmd_id=cmd_id,
                incident=inc.id,
                terminal=terminal,
                action=action,
                topic=str(d["topic"]),
                payload=dict(d["payload"]),
                needs_audio=bool(d.get("needs_audio", False)),
                doors=doors,
                due=sent + self.settings.command_retry_s if retry else None,
            )
        )
        if action in ("show", "say"):
            ttl = self.settings.screen_ttl_s if action == "show" else self.settings.voice_ttl_s
            epoch = int(d.get("epoch", inc.epoch))
            self.ledger.sent(
                terminal, Announcement(str(d["payload"]["text"]), inc.id, epoch, cmd_id, sent, ttl)
            )
        elif action in ("clear", "stop"):
            self.ledger.drop(terminal)
        elif action == "release":
            for door in doors:
                self.doors.commanded(door, sent + self.settings.door_confirm_s)
