"""The notices' state, changed only by applying their records (live and after a restart).

Per terminal of a notice, a `Delivery` keeps the last command sent there and what became
of it. Per terminal and priority level, `owners` says whose text the level holds: a new
`show`/`say` at a level replaces the previous one (that delivery becomes `replaced`), and a
`clear`/`stop` empties its level and every level below (CONTRACT.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from gateway.clock import Clock
from gateway.fire.linkage import Terminal
from gateway.notices import records as k
from gateway.notices.records import NoticeRecord
from gateway.notices.spec import RANK, NoticeSpec
from gateway.notices.targets import Targets

# Delivery statuses (docs/api.md).
SKIPPED: Final = "skipped"  # a fire message was on the terminal when the notice was posted
PENDING: Final = "pending"  # sent, no answer yet (retried)
ACKED: Final = "acked"
FAILED: Final = "failed"  # the terminal answered ok: false
GIVEN_UP: Final = "given_up"  # no answer after the retries
PREEMPTED: Final = "preempted"  # a fire message took the terminal over afterwards
REPLACED: Final = "replaced"  # a newer command to the terminal took this one's place
SHOWING: Final = frozenset({PENDING, ACKED, GIVEN_UP})  # may be on the terminal now
ANNOUNCE: Final = frozenset({"show", "say"})


@dataclass(slots=True)
class Delivery:
    """One terminal of one notice: its latest command and what became of it."""

    terminal: Terminal
    status: str = PENDING
    incident: str | None = None  # the fire that skipped or preempted it
    replaced_by: str | None = None  # the notice whose command took its place
    cmd_id: str | None = None
    action: str | None = None
    level: str = "notice"  # the priority the command acts on
    topic: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    needs_audio: bool = False
    attempts: int = 0
    due: float | None = None  # next retry (monotonic)
    sent_ms: int | None = None
    acked_ms: int | None = None
    error: str | None = None


@dataclass(slots=True)
class Notice:
    """A notice as posted, its deliveries, and whether it was cleared."""

    id: str
    by: str
    spec: NoticeSpec
    targets: Targets
    created_ms: int
    created_mono: float
    deliveries: dict[Terminal, Delivery] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    cleared_by: str | None = None
    cleared_ms: int | None = None
    clear_skipped: list[dict[str, Any]] = field(default_factory=list)
    cmd_seq: int = 0
    records: list[NoticeRecord] = field(default_factory=list)

    @property
    def expires_mono(self) -> float:
        """When the screens' copy runs out (monotonic)."""
        return self.created_mono + self.spec.ttl_s

    def state(self, now: float) -> str:
        """`active`, `expired` (its ttl ran out) or `cleared` (an operator took it down)."""
        if self.cleared_ms is not None:
            return "cleared"
        return "active" if now < self.expires_mono else "expired"

    def busy(self) -> bool:
        """True while a command of it still awaits an answer."""
        return any(d.due is not None for d in self.deliveries.values())

    def view(self, now: float) -> dict[str, Any]:
        """The notice as the API shows it (times in wall ms since the epoch)."""
        return {
            "id": self.id,
            "by": self.by,
            **self.spec.fields(),
            "targets": self.targets.to_dict(),
            "created_at": self.created_ms,
            "expires_at": self.created_ms + self.spec.ttl_s * 1000,
            "state": self.state(now),
            "cleared_by": self.cleared_by,
            "cleared_at": self.cleared_ms,
            "terminals": [_delivery_view(d) for d in self.deliveries.values()],
            "skipped": [_skip_view(item) for item in self.skipped],
            "clear_skipped": [_skip_view(item) for item in self.clear_skipped],
        }


class NoticeState:
    """Every notice in memory, commands by id, and who holds each terminal's levels."""

    def __init__(self, clock: Clock, retry_s: float) -> None:
        self.clock = clock
        self.retry_s = retry_s
        self.notices: dict[str, Notice] = {}
        self.by_cmd: dict[str, tuple[str, Terminal]] = {}
        self.owners: dict[tuple[Terminal, str], str] = {}
        self.on_terminal: dict[Terminal, dict[str, None]] = {}  # notices with a delivery there
        self.id_seq: dict[str, int] = {}

    def to_mono(self, ts_ms: int) -> float:
        """The monotonic time of a wall timestamp (exact for records made just now)."""
        return self.clock.monotonic() - (self.clock.wall_ms() - ts_ms) / 1000.0

    def apply(self, rec: NoticeRecord) -> None:
        """Change the state as `rec` says; KeyError/ValueError/TypeError on a bad record."""
        if rec.kind == k.POSTED:
            self._posted(rec)
            return
        notice = self.notices[rec.notice]
        notice.records.append(rec)
        d = rec.data
        if rec.kind == k.COMMAND:
            self._command(notice, rec)
        elif rec.kind == k.CLEARED:
            notice.cleared_by, notice.cleared_ms = rec.by, rec.ts
            notice.clear_skipped = list(d.get("skipped", ()))
        elif rec.kind == k.PREEMPTED:
            delivery = notice.deliveries[_terminal(d["terminal"])]
            delivery.status, delivery.incident, delivery.due = PREEMPTED, str(d["incident"]), None
        else:
            sent = self._delivery(notice, str(d["cmd_id"]))
            if sent is None:
                return
            if rec.kind == k.RETRY:
                sent.attempts = int(d["attempt"])
                sent.due = self.to_mono(rec.ts) + self.retry_s
            elif rec.kind == k.ACK:
                sent.status = ACKED if d["ok"] is True else FAILED
                sent.acked_ms, sent.due = rec.ts, None
                sent.error = str(d["error"]) if "error" in d else None
            elif rec.kind == k.GIVEN_UP:
                sent.status, sent.due = GIVEN_UP, None

    def forget(self, notice_id: str) -> None:
        """Drop a finished notice from memory (the spool keeps its records)."""
        notice = self.notices.pop(notice_id)
        for t, d in notice.deliveries.items():
            if d.cmd_id is not None:
                self.by_cmd.pop(d.cmd_id, None)
            here = self.on_terminal.get(t, {})
            here.pop(notice_id, None)
            if not here:
                self.on_terminal.pop(t, None)
            for p in RANK:
                if self.owners.get((t, p)) == notice_id:
                    del self.owners[(t, p)]

    def owner(self, terminal: Terminal, level: str, now: float) -> Notice | None:
        """The active notice whose text holds `level` of `terminal`."""
        notice = self.notices.get(self.owners.get((terminal, level), ""))
        return notice if notice is not None and notice.state(now) == "active" else None

    def _delivery(self, notice: Notice, cmd_id: str) -> Delivery | None:
        found = self.by_cmd.get(cmd_id)
        delivery = notice.deliveries.get(found[1]) if found else None
        return delivery if delivery is not None and delivery.cmd_id == cmd_id else None

    def _posted(self, rec: NoticeRecord) -> None:
        d = rec.data
        spec = NoticeSpec(
            str(d["text"]),
            str(d["priority"]),
            int(d["ttl_s"]),
            d.get("color"),
            str(d.get("lang", "zh")),
            int(d.get("repeat", 1)),
        )
        notice = Notice(
            rec.notice,
            rec.by,
            spec,
            Targets.from_dict(d.get("targets", {})),
            rec.ts,
            self.to_mono(rec.ts),
            skipped=list(d.get("skipped", ())),
        )
        skipped = {_terminal(s["terminal"]): str(s["incident"]) for s in notice.skipped}
        for item in d["terminals"]:
            t = _terminal(item)
            incident = skipped.get(t)
            status = SKIPPED if incident is not None else PENDING
            notice.deliveries[t] = Delivery(t, status, incident, level=spec.priority)
            self.on_terminal.setdefault(t, {})[notice.id] = None
        notice.records.append(rec)
        self.notices[notice.id] = notice
        stem, _, n = notice.id.rpartition("-")
        if n.isdigit():
            self.id_seq[stem] = max(self.id_seq.get(stem, 0), int(n))

    def _command(self, notice: Notice, rec: NoticeRecord) -> None:
        d = rec.data
        t = _terminal(d["terminal"])
        action, level = str(d["action"]), str(d["payload"]["priority"])
        self._supersede(notice.id, t, action, level)
        delivery = notice.deliveries[t]
        if delivery.cmd_id is not None:
            self.by_cmd.pop(delivery.cmd_id, None)
        delivery.status, delivery.incident, delivery.replaced_by = PENDING, None, None
        delivery.cmd_id, delivery.action, delivery.level = str(d["cmd_id"]), action, level
        delivery.topic, delivery.payload = str(d["topic"]), dict(d["payload"])
        delivery.needs_audio = bool(d.get("needs_audio", False))
        delivery.attempts, delivery.error, delivery.acked_ms = 0, None, None
        delivery.sent_ms, delivery.due = rec.ts, self.to_mono(rec.ts) + self.retry_s
        self.by_cmd[delivery.cmd_id] = (notice.id, t)
        cmd_n = delivery.cmd_id.rpartition("-c")[2]
        if cmd_n.isdigit():
            notice.cmd_seq = max(notice.cmd_seq, int(cmd_n))
        if action in ANNOUNCE:
            self.owners[(t, level)] = notice.id

    def _supersede(self, notice_id: str, t: Terminal, action: str, level: str) -> None:
        """A command to `t` from `notice_id`: what other notices had there is taken over.

        A `show`/`say` replaces the text of its level; a `clear`/`stop` empties its level
        and those below; a clear still in flight would wipe a newer text at or below its
        level, so it is not retried.
        """
        announce = action in ANNOUNCE
        if not announce:
            for p, rank in RANK.items():
                if rank <= RANK[level]:
                    self.owners.pop((t, p), None)
        for other_id in self.on_terminal.get(t, {}):
            other = self.notices.get(other_id)
            theirs = other.deliveries.get(t) if other is not None else None
            if other_id == notice_id or theirs is None or theirs.action is None:
                continue
            if theirs.action in ANNOUNCE:
                reached = theirs.level == level if announce else RANK[theirs.level] <= RANK[level]
                hit = reached and (theirs.status in SHOWING or theirs.status == PREEMPTED)
            else:
                hit = announce and theirs.status == PENDING and RANK[level] <= RANK[theirs.level]
            if hit:
                theirs.status, theirs.replaced_by, theirs.due = REPLACED, notice_id, None


def _terminal(item: Any) -> Terminal:
    building, kind, device = item
    return (str(building), str(kind), str(device))


def _delivery_view(d: Delivery) -> dict[str, Any]:
    building, kind, device = d.terminal
    return {
        "terminal": "/".join(d.terminal),
        "building": building,
        "kind": kind,
        "device": device,
        "status": d.status,
        "action": d.action,
        "cmd_id": d.cmd_id,
        "attempts": d.attempts,
        "incident": d.incident,
        "replaced_by": d.replaced_by,
        "error": d.error,
        "sent_at": d.sent_ms,
        "acked_at": d.acked_ms,
    }


def _skip_view(item: dict[str, Any]) -> dict[str, Any]:
    t = _terminal(item["terminal"])
    incident = str(item["incident"])
    label = "screen" if t[1] == "screen" else "voice terminal"
    return {
        "terminal": "/".join(t),
        "reason": f"fire message on {label} (incident {incident})",
        "incident": incident,
    }
