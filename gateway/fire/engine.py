"""The fire incident engine: events in, actions out. Synchronous, deterministic, clock-driven.

The composition root feeds it alarms (alarm lane), acks/status/swipes/teams seen/clears
(bulk lane), people's actions and `tick()` at `next_deadline()`; it publishes, notifies and
stores what comes back. Rules, timers and payloads: docs/fire.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from gateway.clock import Clock
from gateway.decode.message import FIRE_DETECTOR_KINDS, DeviceMessage
from gateway.fire import actions as k
from gateway.fire.actions import Action, Audit, AuditRecord
from gateway.fire.doors import RELEASED_STATES
from gateway.fire.escalation import REASONS, EscalationTimer, target_for, timers_of
from gateway.fire.incident import (
    AWAITING,
    CLOSED,
    Incident,
    IncidentError,
    LiveIncident,
    State,
    next_state,
)
from gateway.fire.linkage import SiteLinkage, Terminal, ZoneRef
from gateway.fire.respond import GATEWAY, TIMER, Out, Responder
from gateway.fire.state import FireState
from gateway.site import SiteIndex

if TYPE_CHECKING:
    from gateway.config import FireSection

_MAX_STEPS: Final = 100_000  # bound on timer work in one tick (after a clock jump of days)


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """What `restore` rebuilt, and the records it could not use (with why)."""

    applied: int
    open_incidents: tuple[str, ...]
    skipped: tuple[str, ...]


class FireEngine:
    """Incidents per building zone, their linkage, escalation and audit trail.

    `can_synthesize(voice_device)`: False for terminals that need audio attached to `say`.
    `keep_closed`: closed incidents kept in memory for `incidents()`/`timeline()`.
    """

    def __init__(
        self,
        settings: FireSection,
        site: SiteIndex,
        site_id: str,
        root: str,
        clock: Clock,
        id_prefix: str = "inc",
        *,
        drill_prefix: str = "drill",
        can_synthesize: Callable[[str], bool] | None = None,
        keep_closed: int = 500,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._prefixes = (id_prefix, drill_prefix)
        self._keep_closed = keep_closed
        self.linkage = SiteLinkage(site, can_synthesize)
        self._st = FireState(settings, clock, site_id)
        self._r = Responder(settings, self._st, self.linkage, clock, root, site_id)

    # -- queries ---------------------------------------------------------------------------

    def incidents(self, open_only: bool = False) -> list[Incident]:
        """Snapshots of incidents, oldest first."""
        return [
            self._st.snapshot(i) for i in self._st.incidents.values() if i.open or not open_only
        ]

    def incident(self, incident_id: str) -> Incident:
        """One incident's snapshot; IncidentError when unknown."""
        return self._st.snapshot(self._get(incident_id))

    def timeline(self, incident_id: str) -> list[AuditRecord]:
        """Every audit record of an incident, in order; IncidentError when unknown."""
        return list(self._get(incident_id).records)

    def next_deadline(self) -> float | None:
        """Monotonic time of the next timer (escalation, retry, door check, refresh)."""
        item = self._next_item()
        return item[0] if item else None

    # -- events ----------------------------------------------------------------------------

    def on_alarm(self, msg: DeviceMessage) -> list[Action]:
        """A detector/heat/call point `alarm` or a camera `fire`/`smoke` (the alarm lane)."""
        if not msg.is_alarm:
            return []
        t = msg.topic
        source: dict[str, Any] = {"kind": t.kind, "device": t.device, "event": msg.event}
        source["ts_device"] = msg.ts_ms
        if t.kind == "camera":
            conf = msg.fields.get("confidence")
            if not isinstance(conf, float | int) or conf < self._s.camera_confidence:
                return []  # below the site's threshold: not a fire source
            source["confidence"] = conf
        ref = self.linkage.locate(t.building, t.kind, t.device, msg.tags.get("zone"))
        out = Out()
        inc_id = self._st.open_by_zone.get((ref.building, ref.zone))
        if inc_id is None:
            self._end_drills(ref.building, out)
            inc = self._open(ref, t.device, False, out)
            self._r.record(out, inc, k.SOURCE, t.device, source)
            self._r.publish_alert(inc, out)
            if t.kind == "callpoint":
                self._confirm(inc, "callpoint", t.device, out)
            elif self._s.prealarm_notify_screens:
                self._r.announce(inc, out, fresh=True)
            return out.actions()
        inc = self._st.incidents[inc_id]
        now = self._clock.monotonic()
        src = inc.sources.get(t.device)
        if src is None:
            self._r.record(out, inc, k.SOURCE, t.device, source)
        else:
            src.repeat(now)  # a flood: counted, not recorded again
        if inc.state == State.PRE_ALARM:
            reason = self._confirmation(inc, t.kind, t.device, now)
            if reason:
                self._confirm(inc, reason, t.device, out)
        return out.actions()

    def on_messages(self, msgs: Sequence[DeviceMessage]) -> list[Action]:
        """The bulk lane: command acks, door status, swipes, teams seen and detector clears.

        Alarms are ignored here: they come through `on_alarm`.
        """
        out = Out()
        for msg in msgs:
            channel, kind = msg.topic.channel, msg.topic.kind
            if channel == "ack":
                self._ack(msg, out)
            elif channel == "status" and kind == "access":
                state = msg.fields.get("state")
                if isinstance(state, str) and state in RELEASED_STATES:
                    ctl = (msg.topic.building, msg.topic.device)
                    for door in self._st.doors.of_controller(ctl):
                        self._r.door_confirmed(door, "status", msg.topic.device, out)
            elif channel == "event" and kind == "access" and msg.event in ("swipe", "passage"):
                self._swipe(msg, out)
            elif channel == "event" and kind == "camera" and msg.event == "team_seen":
                self._seen(msg, out)
            elif channel == "event" and kind in FIRE_DETECTOR_KINDS and msg.event == "clear":
                self._clear(msg, out)
        return out.actions()

    def covering(self, terminal: Terminal) -> str | None:
        """The open incident whose announcement reaches `terminal` now, or None."""
        inc = self._r.covering(terminal)
        return inc.id if inc is not None else None

    def act(self, incident_id: str, action: str, by: str) -> list[Action]:
        """A person's action: ack | on_scene | resolve | false_alarm | confirm.

        IncidentError (and nothing changes) for an unknown incident or an illegal transition.
        """
        if not isinstance(by, str) or not by.strip():
            raise IncidentError(f"{action} on incident {incident_id}: 'by' must name who acts")
        inc = self._get(incident_id)
        target = next_state(incident_id, inc.state, action)
        out = Out()
        if action == "confirm":
            self._confirm(inc, "operator", by, out)
        elif target in CLOSED:
            self._close(inc, target, by, action, out)
        else:
            self._r.transition(inc, target, by, action, out)
        return out.actions()

    def drill(self, building: str, zone: str, by: str) -> list[Action]:
        """Run the whole chain as a drill: every command `drill: true`, the drill text.

        Doors are released only when the site sets `drill_release_doors`.
        """
        b = self.linkage.buildings.get(building)
        if b is None:
            known = ", ".join(sorted(self.linkage.buildings)[:10]) or "none"
            raise IncidentError(f"drill: no building {building!r} in the site model ({known})")
        z = next((z for z in b.zones if z.id == zone), None)
        if z is None:
            zones = ", ".join(z.id for z in b.zones[:10]) or "none"
            raise IncidentError(f"drill: building {building} has no zone {zone!r} ({zones})")
        if not isinstance(by, str) or not by.strip():
            raise IncidentError("drill: 'by' must name who starts it")
        for other in self._st.open_incidents():
            if other.building == building and (not other.drill or other.zone == zone):
                raise IncidentError(f"drill: {other.id} is open in building {building}")
        out = Out()
        inc = self._open(ZoneRef(building, zone, z.floor), by, True, out)
        self._confirm(inc, "drill", by, out)
        return out.actions()

    def tick(self) -> list[Action]:
        """Run every timer that is due, in time order: escalations, retries, doors, refreshes."""
        out = Out()
        for _ in range(_MAX_STEPS):
            item = self._next_item()
            if item is None or item[0] > self._clock.monotonic():
                break
            _, what, key = item
            if what == "timer":
                self._fire_timer(key, out)
            elif what == "retry":
                self._r.retry(key, out)
            elif what == "door":
                self._r.door_due(key, out)
            else:
                cover = self._r.covering(key)
                if cover is not None:
                    self._r.announce_to(cover, key, out, fresh=False)
        return out.actions()

    def restore(self, audit: Iterable[AuditRecord | dict[str, Any]]) -> RestoreSummary:
        """Rebuild incidents, timers, commands in flight and released doors from the audit.

        Feed every stored record in the order it was emitted (at least those since the
        start of the UTC day, so incident numbers continue), then call `tick()`: timers
        that expired while the gateway was down fire at once.
        """
        if self._st.incidents:
            raise IncidentError("restore needs a fresh engine: this one already has incidents")
        applied, skipped = 0, []
        for item in audit:
            try:
                rec = item if isinstance(item, AuditRecord) else AuditRecord.from_dict(item)
                inc = self._st.incidents.get(rec.incident)
                if rec.kind != k.OPENED and inc is None:
                    raise ValueError("no 'opened' record before it")
                if inc is not None and rec.seq <= len(inc.records):
                    raise ValueError("duplicate (seq already applied)")
                self._st.apply(rec)
                applied += 1
            except (KeyError, ValueError, TypeError) as exc:
                where = f"{getattr(item, 'incident', '?')}#{getattr(item, 'seq', '?')}"
                skipped.append(f"{where}: {type(exc).__name__}: {exc}")
        self._prune()
        opened = tuple(i.id for i in self._st.open_incidents())
        return RestoreSummary(applied, opened, tuple(skipped))

    # -- the incident's life ---------------------------------------------------------------

    def _get(self, incident_id: str) -> LiveIncident:
        inc = self._st.incidents.get(incident_id)
        if inc is None:
            open_ids = ", ".join(i.id for i in self._st.open_incidents()) or "none"
            raise IncidentError(f"no incident {incident_id!r} (open: {open_ids})")
        return inc

    def _open(self, ref: ZoneRef, by: str, drill: bool, out: Out) -> LiveIncident:
        day = datetime.fromtimestamp(self._clock.wall_ms() / 1000, UTC).strftime("%Y%m%d")
        stem = f"{self._prefixes[drill]}-{day}"
        inc_id = f"{stem}-{self._st.id_seq.get(stem, 0) + 1:04d}"
        same_floor = [
            i.id
            for i in self._st.open_incidents()
            if not i.drill and i.building == ref.building and i.floor == ref.floor
        ]
        data = {
            "building": ref.building,
            "zone": ref.zone,
            "floor": ref.floor,
            "drill": drill,
            "chain": list(self.linkage.chain(ref.building)),
            "linked": same_floor if ref.floor is not None and not drill else [],
        }
        rec = AuditRecord(inc_id, 1, self._clock.wall_ms(), k.OPENED, by, data)
        self._st.apply(rec)
        out.audits.append(Audit(rec))
        return self._st.incidents[inc_id]

    def _confirmation(self, inc: LiveIncident, kind: str, device: str, now: float) -> str | None:
        """Why this alarm confirms the pre-alarm, or None (GB 50116 "AND" logic)."""
        if kind == "callpoint":
            return "callpoint"
        others = [s for d, s in inc.sources.items() if d != device]
        if others and (kind == "camera" or any(s.kind == "camera" for s in others)):
            return "camera"
        if any(now - s.last_mono <= self._s.confirm_window_s for s in others):
            return "second_detector"
        return None

    def _confirm(self, inc: LiveIncident, reason: str, by: str, out: Out) -> None:
        self._r.transition(inc, State.CONFIRMED, by, reason, out, publish=False)
        self._r.release_doors(inc, out)
        self._r.announce(inc, out, fresh=True)
        self._r.publish_alert(inc, out)
        if not inc.chain:
            self._r.record(out, inc, k.NOTE, GATEWAY, {"note": "no fire team in the site model"})
            return
        team = inc.chain[0]
        tier = self.linkage.tier(team)
        ack_ms = round(self._s.ack_s * 1000)
        ack_due = self._clock.wall_ms() + ack_ms if len(inc.chain) > 1 else None
        data = {"team": team, "tier": tier, "chain_index": 0, "ack_due_at": ack_due}
        self._r.record(out, inc, k.DISPATCH, GATEWAY, data)
        self._r.transition(inc, State.DISPATCHED, GATEWAY, "dispatch", out, extra={"team": team})
        self._r.notify(inc, team, tier, "dispatch", out)

    def _close(self, inc: LiveIncident, to: State, by: str, reason: str, out: Out) -> None:
        self._r.transition(inc, to, by, reason, out)
        self._r.withdraw(inc, out)
        self._r.free_doors(inc, by, out)
        for team in inc.notified:
            self._r.notify(inc, team, self.linkage.tier(team), reason, out)
        self._prune()

    def _end_drills(self, building: str, out: Out) -> None:
        """A real alarm in a building ends its drills (their texts must not stay up)."""
        for inc in self._st.open_incidents():
            if inc.drill and inc.building == building:
                self._close(inc, State.RESOLVED, GATEWAY, "real_alarm", out)

    def _prune(self) -> None:
        """Forget the oldest closed incidents beyond `keep_closed` (the spool keeps them)."""
        busy = {cmd.incident for cmd in self._st.commands}  # teardown still awaiting acks
        closed = [i.id for i in self._st.incidents.values() if not i.open and i.id not in busy]
        for inc_id in closed[: max(0, len(closed) - self._keep_closed)]:
            del self._st.incidents[inc_id]

    # -- timers ----------------------------------------------------------------------------

    def _next_item(self) -> tuple[float, str, Any] | None:
        """The earliest pending timer of any sort: (due, what, key)."""
        items: list[tuple[float, str, Any]] = []
        for inc in self._st.open_incidents():
            items += [(t.due, "timer", t) for t in timers_of(inc, self._s)]
        if (due := self._st.commands.next_due()) is not None:
            items.append((due, "retry", self._st.commands.due(due)[0].cmd_id))
        if (due := self._st.doors.next_due()) is not None:
            items.append((due, "door", self._st.doors.due(due)[0].door))
        for terminal, entry in self._st.ledger.entries.items():
            if not entry.pending and self._r.covering(terminal) is not None:
                items.append((entry.refresh_at, "refresh", terminal))
        return min(items, key=lambda item: item[0]) if items else None

    def _fire_timer(self, timer: EscalationTimer, out: Out) -> None:
        inc = self._st.incidents[timer.incident]
        if timer.name == "verify":
            self._confirm(inc, REASONS["verify"], TIMER, out)
            return
        target = target_for(timer.name, inc, self.linkage)
        due_at = self._st.to_wall(timer.due)
        data: dict[str, Any] = {
            "level": inc.escalation + 1,
            "reason": REASONS[timer.name],
            "team": target.team,
            "tier": target.tier,
            "due_at": due_at,
        }
        if timer.name == "ack":
            data["chain_index"] = inc.chain_index if target.team is None else target.chain_index
            data["ack_due_at"] = due_at + round(self._s.ack_s * 1000) if target.has_next else None
        self._r.record(out, inc, k.ESCALATION, TIMER, data)
        self._r.publish_alert(inc, out)
        if target.team is not None:
            self._r.notify(inc, target.team, target.tier or 0, REASONS[timer.name], out)
        self._r.announce(inc, out, fresh=True)

    # -- bulk-lane events ------------------------------------------------------------------

    def _ack(self, msg: DeviceMessage, out: Out) -> None:
        cmd_id, ok = msg.fields.get("cmd_id"), msg.fields.get("ok")
        cmd = self._st.commands.get(cmd_id) if isinstance(cmd_id, str) else None
        if cmd is None or cmd.terminal[2] != msg.topic.device or not isinstance(ok, bool):
            return  # not ours, late, or from another device
        inc = self._st.incidents[cmd.incident]
        data: dict[str, Any] = {"cmd_id": cmd.cmd_id, "ok": ok}
        error = msg.fields.get("error")
        if isinstance(error, str):
            data["error"] = error[:200]
        self._r.record(out, inc, k.ACK, msg.topic.device, data)
        if cmd.action == "release" and ok:
            for door in cmd.doors:
                self._r.door_confirmed(door, "ack", msg.topic.device, out)
        elif not ok and cmd.action != "release":
            detail = {"trouble": "command_rejected", "cmd_id": cmd.cmd_id, "action": cmd.action}
            detail.update(incident=inc.id, error=data.get("error", ""))
            self._r.trouble(cmd.terminal, "event", detail, out)

    def _swipe(self, msg: DeviceMessage, out: Out) -> None:
        card = msg.fields.get("card_hash")
        team = self.linkage.card_team(card) if isinstance(card, str) else None
        if team is not None:
            where = {"device": msg.topic.device, "checkpoint": msg.tags.get("checkpoint")}
            where["door"] = msg.tags.get("door")
            self._arrived(team, msg.topic.building, "card", where, out)

    def _seen(self, msg: DeviceMessage, out: Out) -> None:
        """A camera recognised a member of `team` (below the site's threshold: nothing)."""
        team, conf = msg.tags.get("team"), msg.fields.get("confidence")
        if team is None or not isinstance(conf, float | int) or conf < self._s.team_seen_confidence:
            return
        cp = msg.tags.get("checkpoint")
        where: dict[str, Any] = {"device": msg.topic.device, "checkpoint": cp, "confidence": conf}
        self._arrived(team, msg.topic.building, "camera", where, out)

    def _arrived(
        self, team: str, topic_building: str, via: str, where: dict[str, Any], out: Out
    ) -> None:
        """`team` is at a checkpoint: on scene for every open incident it was alerted to."""
        checkpoint = where["checkpoint"]
        for inc in self._st.open_incidents():
            if (
                inc.state in AWAITING
                and team in inc.notified
                and self.linkage.reaches(topic_building, checkpoint, inc.building)
            ):
                self._r.transition(inc, State.ON_SCENE, team, via, out, extra=where)

    def _clear(self, msg: DeviceMessage, out: Out) -> None:
        t = msg.topic
        ref = self.linkage.locate(t.building, t.kind, t.device, msg.tags.get("zone"))
        inc_id = self._st.open_by_zone.get((ref.building, ref.zone))
        inc = self._st.incidents[inc_id] if inc_id else None
        src = inc.sources.get(t.device) if inc else None
        if inc is None or src is None:
            return
        if src.clears == 0:
            self._r.record(out, inc, k.CLEAR, t.device, {"device": t.device})
        else:
            src.clears += 1  # a flood: counted, not recorded again
            src.active = False
