"""The output side of the fire engine: records, commands, announcements, doors and alerts.

Every change goes through `record` (an audit record applied to the state), and every
message leaves as an action in `Out`, commands first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from gateway.clock import Clock
from gateway.devices.alerts import Alert
from gateway.fire import actions as k
from gateway.fire.actions import Action, Audit, AuditRecord, Notify, Publish, Trouble
from gateway.fire.incident import LINKED, LiveIncident, State
from gateway.fire.linkage import GATES_BUILDING, SiteLinkage, Terminal, ZoneRef, group_by_controller
from gateway.fire.state import FireState
from gateway.fire.texts import render
from gateway.ingest.topic import alert_topic, device_topic

if TYPE_CHECKING:
    from gateway.config import FireSection

GATEWAY: Final = "gateway"  # `by` of what the engine does on its own
TIMER: Final = "timer"  # `by` of what a timer does


@dataclass(slots=True)
class Out:
    """Actions of one engine call, in the order they should leave: commands first."""

    commands: list[Action] = field(default_factory=list)
    alerts: list[Action] = field(default_factory=list)
    notices: list[Action] = field(default_factory=list)
    audits: list[Action] = field(default_factory=list)

    def actions(self) -> list[Action]:
        """Commands, then fire alerts, then notifications and troubles, then audit records."""
        return [*self.commands, *self.alerts, *self.notices, *self.audits]


class Responder:
    """Turns the engine's decisions into records and actions."""

    def __init__(
        self,
        settings: FireSection,
        state: FireState,
        linkage: SiteLinkage,
        clock: Clock,
        root: str,
        site_id: str,
    ) -> None:
        self._s = settings
        self._st = state
        self._link = linkage
        self._clock = clock
        self._root = root
        self._site_id = site_id

    # -- records ---------------------------------------------------------------------------

    def record(
        self, out: Out, inc: LiveIncident, kind: str, by: str, data: dict[str, Any]
    ) -> AuditRecord:
        """Write one audit record of `inc` and apply it to the state."""
        rec = AuditRecord(inc.id, len(inc.records) + 1, self._clock.wall_ms(), kind, by, data)
        self._st.apply(rec)
        out.audits.append(Audit(rec))
        return rec

    def transition(
        self,
        inc: LiveIncident,
        to: State,
        by: str,
        reason: str,
        out: Out,
        publish: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Move `inc` to state `to` and (unless the caller does it later) publish the alert."""
        data = {"from": str(inc.state), "to": str(to), "reason": reason, **(extra or {})}
        self.record(out, inc, k.STATE, by, data)
        if publish:
            self.publish_alert(inc, out)

    # -- announcements ---------------------------------------------------------------------

    def terminals(self, inc: LiveIncident, gates: bool) -> list[Terminal]:
        """Screens (with the gate screens when `gates` and the site wants them) and voice."""
        return [
            *self._link.screens(inc.building, gates and self._s.gate_screens_on_fire),
            *self._link.voice(inc.building),
        ]

    def announces(self, inc: LiveIncident) -> bool:
        """True when `inc` has something on its building's terminals."""
        return inc.state in LINKED or (
            inc.state == State.PRE_ALARM and self._s.prealarm_notify_screens
        )

    def covering(self, terminal: Terminal) -> LiveIncident | None:
        """The newest open incident whose announcements reach `terminal`."""
        for inc in reversed(list(self._st.incidents.values())):
            if not inc.open or not self.announces(inc):
                continue
            if terminal[0] == inc.building:
                return inc
            if (
                terminal[0] == GATES_BUILDING
                and inc.state in LINKED
                and terminal in self.terminals(inc, gates=True)
            ):
                return inc
        return None

    def text(self, inc: LiveIncident) -> tuple[str, str]:
        """The text for `inc`'s terminals now, and its priority."""
        building, zone = self._link.labels(ZoneRef(inc.building, inc.zone, inc.floor))
        if inc.state == State.PRE_ALARM:
            template, priority = self._s.text_prealarm, "alert"
        else:
            template = self._s.text_drill if inc.drill else self._s.text_fire
            priority = "fire"
        return render(template, building, inc.floor, zone), priority

    def announce(self, inc: LiveIncident, out: Out, fresh: bool) -> None:
        """Show and say `inc`'s text on its terminals; `fresh`: a new state or escalation."""
        for terminal in self.terminals(inc, gates=inc.state in LINKED):
            self.announce_to(inc, terminal, out, fresh)

    def announce_to(self, inc: LiveIncident, terminal: Terminal, out: Out, fresh: bool) -> None:
        """One terminal; skipped when it would repeat what the terminal already has."""
        text, priority = self.text(inc)
        epoch = inc.epoch if fresh else -1
        if self._st.ledger.redundant(terminal, text, inc.id, epoch, self._clock.monotonic()):
            return
        fields: dict[str, Any]
        if terminal[1] == "screen":
            ttl = round(self._s.screen_ttl_s)
            fields = {"text": text, "priority": priority, "ttl_s": ttl, "color": "red"}
            self.command(inc, terminal, "show", fields, out)
        else:
            fields = {"text": text, "lang": "zh", "repeat": self._s.voice_repeat}
            self.command(inc, terminal, "say", {**fields, "priority": priority}, out)

    def withdraw(self, inc: LiveIncident, out: Out) -> None:
        """`inc` closed: its terminals show the next open incident's text, or are cleared."""
        for terminal in self.terminals(inc, gates=True):
            if terminal not in self._st.ledger.entries:
                continue
            cover = self.covering(terminal)
            if cover is not None:
                self.announce_to(cover, terminal, out, fresh=False)
            else:
                action = "clear" if terminal[1] == "screen" else "stop"
                self.command(inc, terminal, action, {"priority": "fire"}, out)

    # -- doors -----------------------------------------------------------------------------

    def release_doors(self, inc: LiveIncident, out: Out) -> None:
        """Hold the egress doors of `inc` open; command those not released yet."""
        whole = self._s.release_scope == "building"
        doors = self._link.egress_doors(inc.building, inc.zone, whole)
        if not doors:
            return
        if inc.drill and not self._s.drill_release_doors:
            note = {"note": "drill: doors not released", "doors": doors}
            self.record(out, inc, k.NOTE, GATEWAY, note)
            return
        ctls = {d: self._link.controllers(inc.building, d) for d in doors}
        new = [d for d in doors if d not in self._st.doors.doors]
        held = {d: [list(c) for c in ctls[d]] for d in doors}
        self.record(out, inc, k.DOORS_HELD, GATEWAY, {"doors": held})
        for ctl, group in group_by_controller(new, ctls).items():
            fields = {"doors": group, "reason": "fire"}
            self.command(inc, (ctl[0], "access", ctl[1]), "release", fields, out)
        for door in new:
            if not ctls[door]:
                data = {"door": door, "attempts": 0, "give_up": True}
                self.record(out, inc, k.DOOR_UNCONFIRMED, GATEWAY, data)
                detail = {"trouble": "door_without_controller", "door": door, "incident": inc.id}
                self.trouble((inc.building, "access", door), "raised", detail, out)

    def free_doors(self, inc: LiveIncident, by: str, out: Out) -> None:
        """`inc` closed: doors nobody else holds go back to `normal`."""
        held = self._st.doors.held_by(inc.id)
        if not held:
            return
        normal = [d for d in held if self._st.doors.doors[d].holds == {inc.id}]
        ctls = {d: list(self._st.doors.doors[d].controllers) for d in normal}
        self.record(out, inc, k.DOORS_FREED, by, {"doors": held})
        for ctl, doors in group_by_controller(normal, ctls).items():
            self.command(inc, (ctl[0], "access", ctl[1]), "normal", {"doors": doors}, out)

    def door_confirmed(self, door_id: str, via: str, device: str, out: Out) -> None:
        """A controller confirmed `door` released (by ack or status)."""
        door = self._st.doors.doors.get(door_id)
        if door is None or door.status == "confirmed":
            return
        had_trouble = door.trouble
        holders = [self._st.incidents[h] for h in sorted(door.holds)]
        data = {"door": door_id, "via": via, "controller": device}
        for inc in holders:
            self.record(out, inc, k.DOOR_CONFIRMED, device, data)
        if had_trouble and door.controllers:
            ctl = door.controllers[0]
            detail = {"trouble": "door_not_released", "door": door_id, "incident": holders[0].id}
            self.trouble((ctl[0], "access", ctl[1]), "cleared", detail, out)
        for inc in holders:
            self.publish_alert(inc, out, stream=False)

    def door_due(self, door_id: str, out: Out) -> None:
        """`door` missed its confirmation time: trouble, and command it again (bounded)."""
        door = self._st.doors.doors[door_id]
        give_up = door.attempts > self._s.command_max_retries
        had_trouble = door.trouble
        holders = [self._st.incidents[h] for h in sorted(door.holds)]
        data = {"door": door_id, "attempts": door.attempts, "give_up": give_up}
        for inc in holders:
            self.record(out, inc, k.DOOR_UNCONFIRMED, TIMER, data)
        if not had_trouble:
            ctl = door.controllers[0]
            detail = {"trouble": "door_not_released", "door": door_id, "incident": holders[0].id}
            self.trouble((ctl[0], "access", ctl[1]), "raised", detail, out)
        if not give_up:
            for c in door.controllers:
                fields = {"doors": [door_id], "reason": "fire"}
                self.command(holders[0], (c[0], "access", c[1]), "release", fields, out)
        for inc in holders:
            self.publish_alert(inc, out, stream=False)

    # -- commands --------------------------------------------------------------------------

    def command(
        self, inc: LiveIncident, terminal: Terminal, action: str, fields: dict[str, Any], out: Out
    ) -> None:
        """Send one command (CONTRACT.md) with a fresh `cmd_id`, recorded for ack tracking."""
        building, kind, device = terminal
        cmd_id = f"{inc.id}-c{inc.cmd_seq + 1:03d}"
        payload: dict[str, Any] = {"cmd_id": cmd_id, "ts": self._clock.wall_ms()}
        payload.update(action=action, **fields, incident=inc.id)
        if inc.drill:
            payload["drill"] = True
        topic = device_topic(self._root, self._site_id, building, kind, device, "cmd")
        needs_audio = action == "say" and self._link.needs_audio(device)
        data = {
            "cmd_id": cmd_id,
            "building": building,
            "kind": kind,
            "device": device,
            "action": action,
            "topic": topic,
            "payload": payload,
            "needs_audio": needs_audio,
            "doors": list(fields.get("doors", ())),
            "epoch": inc.epoch,
        }
        self.record(out, inc, k.COMMAND, GATEWAY, data)
        out.commands.append(Publish(topic, payload, needs_audio=needs_audio))

    def retry(self, cmd_id: str, out: Out) -> None:
        """An unacknowledged command: send it again, or give up and raise trouble."""
        cmd = self._st.commands.get(cmd_id)
        if cmd is None:
            return
        inc = self._st.incidents[cmd.incident]
        if cmd.attempts >= self._s.command_max_retries:
            self.record(out, inc, k.COMMAND_FAILED, GATEWAY, {"cmd_id": cmd_id})
            detail = {"trouble": "command_unacknowledged", "cmd_id": cmd_id}
            detail.update(action=cmd.action, incident=inc.id)
            self.trouble(cmd.terminal, "event", detail, out)
            return
        self.record(out, inc, k.RETRY, GATEWAY, {"cmd_id": cmd_id, "attempt": cmd.attempts + 1})
        out.commands.append(Publish(cmd.topic, cmd.payload, needs_audio=cmd.needs_audio))

    # -- alerts ----------------------------------------------------------------------------

    def publish_alert(self, inc: LiveIncident, out: Out, stream: bool = True) -> None:
        """The incident object on `alerts/fire` (when `stream`) and retained on its own topic."""
        alert = self._st.snapshot(inc).alert(self._clock.wall_ms())
        base = alert_topic(self._root, self._site_id, "fire")
        if stream:
            out.alerts.append(Publish(base, alert))
        out.alerts.append(Publish(f"{base}/{inc.id}", alert, retain=True))

    def notify(self, inc: LiveIncident, team: str, tier: int, reason: str, out: Out) -> None:
        """A message for a team's channels, carrying the incident object."""
        alert = self._st.snapshot(inc).alert(self._clock.wall_ms())
        out.notices.append(Notify(team, tier, reason, alert))

    def trouble(self, where: Terminal, state: str, detail: dict[str, Any], out: Out) -> None:
        """A trouble alert about a device (docs/contract.md payload)."""
        building, kind, device = where
        alert = Alert("trouble", self._clock.wall_ms(), building, kind, device, state, detail)
        out.notices.append(Trouble(alert))
