"""Operator notices on screens and voice terminals: requests in, commands and records out.

Synchronous, deterministic and clock-injected like the fire engine. Every call that may
send takes `covering(terminal)`: the open fire incident whose announcement is on the
terminal, or None. The caller reads it under the fire runtime's lock and publishes what
comes back before releasing it, so the answer cannot go stale in between. Rules:
- a terminal with a fire message is skipped (posting) or left alone (clearing);
- a screen whose notice a fire took over gets it back when the fire is gone, for what is
  left of its `ttl_s`; a voice announcement is not repeated (it was a moment);
- commands are acknowledged, retried every `command_retry_s` at most
  `command_max_retries` times, then given up (the `[fire]` settings).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage
from gateway.fire.actions import Publish
from gateway.fire.linkage import SiteLinkage, Terminal
from gateway.fire.respond import GATEWAY, TIMER
from gateway.ingest.topic import device_topic
from gateway.notices import records as k
from gateway.notices import state as s
from gateway.notices.records import NoticeRecord
from gateway.notices.spec import RANK, NoticeError, NoticeSpec, UnknownNotice, check_by, check_text
from gateway.notices.state import Notice, NoticeState
from gateway.notices.targets import Targets, resolve

if TYPE_CHECKING:
    from gateway.config import FireSection

log = logging.getLogger(__name__)

Covering = Callable[[Terminal], str | None]
NoticeAction = Publish | NoticeRecord


class NoticeBoard:
    """Notices, their deliveries and retries; `keep` finished notices stay listed."""

    def __init__(
        self,
        settings: FireSection,
        linkage: SiteLinkage,
        clock: Clock,
        root: str,
        site_id: str,
        *,
        id_prefix: str = "notice",
        keep: int = 500,
    ) -> None:
        self._max_retries = settings.command_max_retries
        self._link = linkage
        self._clock = clock
        self._root = root
        self._site_id = site_id
        self._prefix = id_prefix
        self._keep = keep
        self.state = NoticeState(clock, settings.command_retry_s)
        self._live: dict[str, Notice] = {}  # active, or with a command awaiting its answer

    # -- queries ---------------------------------------------------------------------------

    def notices(self) -> list[Notice]:
        """Every notice in memory, oldest first."""
        return list(self.state.notices.values())

    def notice(self, notice_id: str) -> Notice:
        """One notice; UnknownNotice when there is none with this id."""
        notice = self.state.notices.get(notice_id)
        if notice is None:
            raise UnknownNotice(f"no notice {notice_id!r}")
        return notice

    def next_deadline(self) -> float | None:
        """Monotonic time of the next retry."""
        dues = [d.due for n in self._live.values() for d in n.deliveries.values()]
        return min((due for due in dues if due is not None), default=None)

    # -- operators -------------------------------------------------------------------------

    def post(
        self, spec: NoticeSpec, targets: Targets, by: str, covering: Covering
    ) -> tuple[Notice, list[NoticeAction]]:
        """Send a notice to its terminals, except those with a fire message (skipped)."""
        by = check_by(by)
        terminals = resolve(self._link, targets)
        spec = dataclasses.replace(spec, text=check_text(spec.text, {t[1] for t in terminals}))
        skipped = []
        for t in terminals:
            incident = covering(t)
            if incident is not None:
                skipped.append({"terminal": list(t), "incident": incident})
        data: dict[str, Any] = spec.fields()
        data.update(
            targets=targets.to_dict(), terminals=[list(t) for t in terminals], skipped=skipped
        )
        out: list[NoticeAction] = []
        notice_id = self._new_id()
        self._record(out, notice_id, k.POSTED, by, data)
        notice = self.state.notices[notice_id]
        self._live[notice_id] = notice
        for t, delivery in notice.deliveries.items():
            if delivery.status != s.SKIPPED:
                self._announce(notice, t, out)
        self._prune()
        return notice, out

    def clear(
        self, notice_id: str, by: str, covering: Covering
    ) -> tuple[Notice, list[NoticeAction]]:
        """Take a notice down (`clear`/`stop` at its priority), never over a fire message.

        Clearing a level clears the levels below it too, so a lower notice still active on
        that screen is shown again. A notice already cleared is left as it is.
        """
        notice = self.notice(notice_id)
        by = check_by(by)
        now = self._clock.monotonic()
        state = notice.state(now)
        if state == "cleared":
            return notice, []
        skipped, to_clear = [], []
        for t, delivery in notice.deliveries.items():
            if state != "active" or delivery.status not in s.SHOWING:
                continue  # expired, or nothing of this notice is on the terminal
            incident = covering(t)
            if incident is not None:
                skipped.append({"terminal": list(t), "incident": incident})
            else:
                to_clear.append(t)
        out: list[NoticeAction] = []
        self._record(out, notice.id, k.CLEARED, by, {"skipped": skipped, "was": state})
        level = notice.spec.priority
        for t in to_clear:
            below = [
                other
                for p, rank in RANK.items()
                if rank < RANK[level]
                and (other := self.state.owner(t, p, now)) is not None
                and other.id != notice.id
                and other.deliveries[t].status in s.SHOWING
            ]
            action = "clear" if t[1] == "screen" else "stop"
            self._command(notice, t, action, {"priority": level}, out)
            if t[1] == "screen":
                for other in below:
                    self._announce(other, t, out, self._left_s(other, now))
        return notice, out

    # -- devices and the fire --------------------------------------------------------------

    def on_messages(self, msgs: Sequence[DeviceMessage]) -> list[NoticeAction]:
        """Acknowledgements of notice commands (others are ignored)."""
        out: list[NoticeAction] = []
        if not self.state.by_cmd:
            return out
        for msg in msgs:
            if msg.topic.channel != "ack":
                continue
            cmd_id, ok = msg.fields.get("cmd_id"), msg.fields.get("ok")
            found = self.state.by_cmd.get(cmd_id) if isinstance(cmd_id, str) else None
            if found is None or not isinstance(ok, bool) or not isinstance(cmd_id, str):
                continue
            notice_id, t = found
            if (msg.topic.building, msg.topic.kind, msg.topic.device) != t:
                continue  # an ack from another device than the addressee
            delivery = self.state.notices[notice_id].deliveries[t]
            if delivery.cmd_id != cmd_id or delivery.status not in (s.PENDING, s.GIVEN_UP):
                continue  # late, repeated, or its place was taken
            data: dict[str, Any] = {"cmd_id": cmd_id, "ok": ok}
            error = msg.fields.get("error")
            if isinstance(error, str):
                data["error"] = error[:200]
            if not ok:
                log.warning("notice %s: %s refused %s: %s", notice_id, "/".join(t), cmd_id, error)
            self._record(out, notice_id, k.ACK, msg.topic.device, data)
        return out

    def after_fire(self, covering: Covering) -> list[NoticeAction]:
        """The fire engine changed something: yield terminals it took, take back the rest.

        A screen whose notice a fire message covers is `preempted`; once no open incident
        covers it, the notice is shown again for the rest of its `ttl_s` (the fire's
        `clear`, at fire priority, also wiped the lower levels). A voice announcement still
        in flight is `preempted` for good.
        """
        out: list[NoticeAction] = []
        now = self._clock.monotonic()
        for notice in list(self._live.values()):
            active = notice.state(now) == "active"
            for t, delivery in notice.deliveries.items():
                screen = t[1] == "screen"
                if delivery.status == s.PREEMPTED:
                    if active and screen and covering(t) is None:
                        self._announce(notice, t, out, self._left_s(notice, now))
                    continue
                held = active and screen and delivery.action == "show"
                if delivery.status == s.PENDING or (held and delivery.status in s.SHOWING):
                    incident = covering(t)
                    if incident is not None:
                        self._preempted(notice, t, incident, out)
        return out

    def tick(self, covering: Covering) -> list[NoticeAction]:
        """Retry what is due, or give it up (bounded retries; an expired notice at once)."""
        out: list[NoticeAction] = []
        now = self._clock.monotonic()
        for notice in list(self._live.values()):
            for t, d in notice.deliveries.items():
                if d.due is None or d.due > now or d.cmd_id is None:
                    continue
                incident = covering(t)
                if incident is not None:
                    self._preempted(notice, t, incident, out)
                elif d.action in s.ANNOUNCE and notice.state(now) != "active":
                    self._record(out, notice.id, k.GIVEN_UP, TIMER, _given_up(d, "expired"))
                elif d.attempts >= self._max_retries:
                    log.warning(
                        "notice %s: %s never acknowledged %s %s (%d retries)",
                        notice.id, "/".join(t), d.action, d.cmd_id, d.attempts,
                    )  # fmt: skip
                    self._record(out, notice.id, k.GIVEN_UP, TIMER, _given_up(d, "no_ack"))
                else:
                    data = {"cmd_id": d.cmd_id, "attempt": d.attempts + 1}
                    self._record(out, notice.id, k.RETRY, TIMER, data)
                    out.append(Publish(d.topic, d.payload, needs_audio=d.needs_audio))
        for notice_id, notice in list(self._live.items()):
            if notice.state(now) != "active" and not notice.busy():
                del self._live[notice_id]
        return out

    def restore(self, stored: Iterable[NoticeRecord | dict[str, Any]]) -> tuple[int, list[str]]:
        """Rebuild notices from their stored records, in order: (applied, skipped with why)."""
        applied, skipped = 0, []
        for item in stored:
            try:
                rec = item if isinstance(item, NoticeRecord) else NoticeRecord.from_dict(item)
                notice = self.state.notices.get(rec.notice)
                if rec.kind != k.POSTED and notice is None:
                    raise ValueError("no 'posted' record before it")
                if notice is not None and rec.seq <= len(notice.records):
                    raise ValueError("duplicate (seq already applied)")
                self.state.apply(rec)
                applied += 1
            except (KeyError, ValueError, TypeError, NoticeError) as exc:
                where = item.notice if isinstance(item, NoticeRecord) else _get(item, "notice")
                skipped.append(f"{where}: {type(exc).__name__}: {exc}")
        now = self._clock.monotonic()
        self._live = {
            n.id: n for n in self.state.notices.values() if n.state(now) == "active" or n.busy()
        }
        self._prune()
        return applied, skipped

    # -- helpers ---------------------------------------------------------------------------

    def _new_id(self) -> str:
        day = datetime.fromtimestamp(self._clock.wall_ms() / 1000, UTC).strftime("%Y%m%d")
        stem = f"{self._prefix}-{day}"
        return f"{stem}-{self.state.id_seq.get(stem, 0) + 1:04d}"

    def _record(
        self, out: list[NoticeAction], notice_id: str, kind: str, by: str, data: dict[str, Any]
    ) -> None:
        notice = self.state.notices.get(notice_id)
        seq = len(notice.records) + 1 if notice is not None else 1
        rec = NoticeRecord(notice_id, seq, self._clock.wall_ms(), kind, by, data)
        self.state.apply(rec)
        out.append(rec)

    def _announce(
        self, notice: Notice, t: Terminal, out: list[NoticeAction], ttl_s: int | None = None
    ) -> None:
        spec = notice.spec
        fields: dict[str, Any]
        if t[1] == "screen":
            fields = {"text": spec.text, "priority": spec.priority, "ttl_s": ttl_s or spec.ttl_s}
            if spec.color is not None:
                fields["color"] = spec.color
            self._command(notice, t, "show", fields, out)
        else:
            fields = {"text": spec.text, "lang": spec.lang, "repeat": spec.repeat}
            self._command(notice, t, "say", {**fields, "priority": spec.priority}, out)

    def _command(
        self,
        notice: Notice,
        t: Terminal,
        action: str,
        fields: dict[str, Any],
        out: list[NoticeAction],
    ) -> None:
        """One command (CONTRACT.md) with a fresh `cmd_id`, plus `notice`: its id."""
        building, kind, device = t
        cmd_id = f"{notice.id}-c{notice.cmd_seq + 1:03d}"
        payload: dict[str, Any] = {"cmd_id": cmd_id, "ts": self._clock.wall_ms()}
        payload.update(action=action, **fields, notice=notice.id)
        topic = device_topic(self._root, self._site_id, building, kind, device, "cmd")
        needs_audio = action == "say" and self._link.needs_audio(device)
        data: dict[str, Any] = {"cmd_id": cmd_id, "terminal": list(t), "action": action}
        data.update(topic=topic, payload=payload, needs_audio=needs_audio)
        self._record(out, notice.id, k.COMMAND, GATEWAY, data)
        out.append(Publish(topic, payload, needs_audio=needs_audio))

    def _preempted(
        self, notice: Notice, t: Terminal, incident: str, out: list[NoticeAction]
    ) -> None:
        data = {"terminal": list(t), "incident": incident, "cmd_id": notice.deliveries[t].cmd_id}
        self._record(out, notice.id, k.PREEMPTED, GATEWAY, data)

    def _left_s(self, notice: Notice, now: float) -> int:
        """What is left of the notice's lifetime, in whole seconds (at least 1)."""
        return max(1, math.ceil(notice.expires_mono - now))

    def _prune(self) -> None:
        """Forget the oldest finished notices beyond `keep` (the spool keeps them)."""
        finished = [n for n in self.state.notices if n not in self._live]
        for notice_id in finished[: max(0, len(finished) - self._keep)]:
            self.state.forget(notice_id)


def _given_up(d: s.Delivery, reason: str) -> dict[str, Any]:
    return {"cmd_id": d.cmd_id, "reason": reason, "attempts": d.attempts}


def _get(item: Any, key: str) -> str:
    return str(item.get(key, "?")) if isinstance(item, dict) else "?"
