"""Runs the fire engine inside the gateway: one lock, timers, and where its actions go.

The engine is pure; this is the adapter the composition root builds around it. The alarm
lane calls `on_alarm` on the MQTT thread and the linkage commands leave from that thread
at once. Audit records and alert points wait in `pending` until a spool commit takes them:
the bulk lane's commit takes everything pending before it (so an alarm is acknowledged to
the broker only once its incident is on disk), and `run` commits what timers and people's
actions produce.

Guests (`attach`: operator notices) share the screens and voice terminals: they run under
the same lock, timers and commits, and are told after every engine call so they yield to
fire messages (`covering`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage, SpoolClass
from gateway.devices.alerts import Alert
from gateway.fire.actions import Action, Audit, Notify, Publish, Trouble
from gateway.fire.engine import FireEngine, RestoreSummary
from gateway.fire.incident import CLOSED, IncidentError, parse_action
from gateway.fire.linkage import Terminal
from gateway.spool import AuditRow, SpoolRow

log = logging.getLogger(__name__)

MAX_TIMER_WAIT_S = 1.0
_TERMINAL_ACTIONS = frozenset({"show", "say", "clear", "stop"})
PublishFn = Callable[[str, bytes, int, bool], None]
CommitFn = Callable[[list[SpoolRow], list[AuditRow]], Awaitable[None]]
Covering = Callable[[Terminal], str | None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stored:
    """A point, and optionally an audit row, a guest wants in the next spool commit."""

    row: SpoolRow
    audit: AuditRow | None = None


GuestAction = Publish | Stored


class TerminalGuest(Protocol):
    """Another sender of screen and voice commands (operator notices) that yields to fire.

    Every call is made with the runtime's lock held: what `covering(terminal)` says (the
    open incident whose announcement is on the terminal) stays true until the returned
    commands are published.
    """

    def owns(self, record: Mapping[str, Any]) -> bool:
        """True for a stored audit record of this guest (the engine never sees it)."""
        ...

    def restore(self, records: list[dict[str, Any]], covering: Covering) -> list[GuestAction]:
        """Rebuild from the guest's stored records, in order."""
        ...

    def on_messages(self, msgs: Sequence[DeviceMessage]) -> list[GuestAction]:
        """Bulk-lane messages (acks) before their commit."""
        ...

    def after_fire(self, covering: Covering) -> list[GuestAction]:
        """The engine just acted: give way to fire messages, take back freed terminals."""
        ...

    def tick(self, covering: Covering) -> list[GuestAction]:
        """Run what is due (retries)."""
        ...

    def next_deadline(self) -> float | None:
        """Monotonic time of the guest's next timer."""
        ...


class FireRuntime:
    """Thread-safe front of a `FireEngine`: dispatches its actions, keeps its audit pending."""

    def __init__(
        self,
        engine: FireEngine,
        *,
        site_id: str,
        clock: Clock,
        publish: PublishFn,
        publish_alert: Callable[[Alert], None],
        notify: Callable[[Notify], bool] | None = None,
        attach_audio: Callable[[Publish], None] | None = None,
    ) -> None:
        self.engine = engine
        self._site_id = site_id
        self._clock = clock
        self._publish = publish
        self._publish_alert = publish_alert
        self._notify = notify
        self._attach_audio = attach_audio
        self._lock = threading.RLock()
        self._pending: collections.deque[tuple[SpoolRow, AuditRow | None]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guests: list[TerminalGuest] = []

    # --- inputs (any thread) ---

    def on_alarm(self, msg: DeviceMessage) -> None:
        """Alarm-lane hook (MQTT thread): linkage commands are published before returning."""
        with self._lock:
            self._dispatch(self.engine.on_alarm(msg))

    def on_messages(self, msgs: Sequence[DeviceMessage]) -> None:
        """Bulk-lane messages (acks, door status, swipes, clears) before their commit."""
        with self._lock:
            self._dispatch(self.engine.on_messages(msgs))
            for guest in self._guests:
                self._send(guest.on_messages(msgs))

    def act(self, incident_id: str, action: str, by: str) -> None:
        """A person's action; IncidentError (nothing changes) for an unknown id or illegal step."""
        with self._lock:
            self._dispatch(self.engine.act(incident_id, action, by))
        self.wake()

    def on_action_message(self, incident_id: str, payload: bytes) -> str | None:
        """An `…/alerts/fire/{incident}/action` message; returns the error text, if any."""
        try:
            action, by = parse_action(payload)
            self.act(incident_id, action, by)
        except IncidentError as exc:
            log.warning("fire action on %s refused: %s", incident_id, exc)
            return str(exc)
        return None

    def drill(self, building: str, zone: str, by: str) -> str:
        """Run the whole chain as a drill (commands marked `drill: true`); the incident id."""
        with self._lock:
            before = {i.id for i in self.engine.incidents()}
            self._dispatch(self.engine.drill(building, zone, by))
            new = [i.id for i in self.engine.incidents() if i.id not in before]
        self.wake()
        return new[0] if new else ""

    def restore(self, records: Iterable[str]) -> RestoreSummary:
        """Rebuild open incidents from stored audit records (JSON text), then run due timers."""
        parsed: list[Any] = []
        theirs: list[list[dict[str, Any]]] = [[] for _ in self._guests]
        for text in records:
            try:
                obj = json.loads(text)
            except ValueError:
                log.error("skipping an unreadable audit record: %.80r", text)
                continue
            owner = next((i for i, g in enumerate(self._guests) if g.owns(obj)), None)
            (parsed if owner is None else theirs[owner]).append(obj)
        with self._lock:
            summary = self.engine.restore(parsed)
            for guest, own in zip(self._guests, theirs, strict=True):
                self._send(guest.restore(own, self._still()))
            self._dispatch(self.engine.tick())
        for reason in summary.skipped[:20]:
            log.warning("restore skipped an audit record: %s", reason)
        if summary.open_incidents:
            log.warning("restored open incidents: %s", ", ".join(summary.open_incidents))
        return summary

    def incident(self, incident_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One incident's alert object and its timeline; IncidentError when unknown."""
        with self._lock:
            inc = self.engine.incident(incident_id)
            timeline = [r.to_dict() for r in self.engine.timeline(incident_id)]
        return inc.alert(self._clock.wall_ms()), timeline

    def snapshot(self, closed: int = 5) -> list[dict[str, Any]]:
        """Open incidents and the latest `closed` ones, as alert objects (for the API)."""
        now = self._clock.wall_ms()
        with self._lock:
            incidents = self.engine.incidents()
        open_ = [i.alert(now) for i in incidents if i.state not in CLOSED]
        done = [i.alert(now) for i in incidents if i.state in CLOSED][-closed:] if closed else []
        return open_ + done

    # --- terminals shared with guests ---

    def attach(self, guest: TerminalGuest) -> None:
        """Share the terminals with `guest`: it runs under this lock, timers and commits."""
        with self._lock:
            self._guests.append(guest)

    def covering(self, terminal: Terminal) -> str | None:
        """The open incident whose announcement is on `terminal` now, or None."""
        with self._lock:
            return self.engine.covering(terminal)

    def _still(self) -> Covering:
        """`covering`, remembered per terminal: valid while the lock is held and the engine
        is not called (one guest call)."""
        seen: dict[Terminal, str | None] = {}

        def covering(terminal: Terminal) -> str | None:
            if terminal not in seen:
                seen[terminal] = self.covering(terminal)
            return seen[terminal]

        return covering

    def share(self, fn: Callable[[Covering], tuple[T, list[GuestAction]]]) -> T:
        """Run `fn(covering)` with the engine held still; send what it returns at once."""
        with self._lock:
            result, actions = fn(self._still())
            self._send(actions)
        return result

    # --- storage ---

    def record(self, row: SpoolRow) -> None:
        """Keep a point for the next commit (e.g. a webhook delivery); any thread."""
        self._pending.append((row, None))
        self.wake()

    def take_pending(self) -> tuple[list[SpoolRow], list[AuditRow]]:
        """Everything waiting for a commit (each item is handed out once)."""
        return _split(self._take_items())

    def _take_items(self) -> list[tuple[SpoolRow, AuditRow | None]]:
        items = []
        pending = self._pending
        while pending:
            items.append(pending.popleft())
        return items

    async def run(self, commit: CommitFn) -> None:
        """Fire timers on time and commit what they and people's actions produce."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            with self._lock:
                dues = [self.engine.next_deadline(), *(g.next_deadline() for g in self._guests)]
                deadline = min((d for d in dues if d is not None), default=None)
            wait = MAX_TIMER_WAIT_S
            if deadline is not None:
                wait = min(max(deadline - self._clock.monotonic(), 0.0), MAX_TIMER_WAIT_S)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the event being set, and shutdown would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            with self._lock:
                self._dispatch(self.engine.tick())
                covering = self._still()
                for guest in self._guests:
                    self._send(guest.tick(covering))
            items = self._take_items()
            if items:
                try:
                    await commit(*_split(items))
                except Exception:
                    self._pending.extendleft(reversed(items))  # kept for the next commit
                    raise

    def wake(self) -> None:
        """Make `run` re-check timers and pending records now (any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    # --- dispatch (called with the lock held) ---

    def _dispatch(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Publish):
                self._command(action)
            elif isinstance(action, Audit):
                record = action.record
                row = SpoolRow(SpoolClass.EVENT, record.ts, record.ts, record.line(self._site_id))
                audit_row = AuditRow(
                    record.ts,
                    record.incident,
                    json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")),
                )
                self._pending.append((row, audit_row))
            elif isinstance(action, Trouble):
                self._publish_alert(action.alert)
                alert = action.alert
                line = alert.line(self._site_id)
                self._pending.append(
                    (SpoolRow(SpoolClass.EVENT, alert.ts_ms, alert.ts_ms, line), None)
                )
            elif isinstance(action, Notify) and self._notify is not None:
                self._notify(action)
        if actions:
            # Only the engine's own screen/voice commands (announce, withdraw) change what
            # covers a terminal; anything else (a storm's sources) leaves the guests alone.
            if self._guests and any(_to_terminal(a) for a in actions):
                covering = self._still()
                for guest in self._guests:
                    self._send(guest.after_fire(covering))
            self.wake()

    def _send(self, actions: Sequence[GuestAction]) -> None:
        for action in actions:
            if isinstance(action, Stored):
                self._pending.append((action.row, action.audit))
            else:
                self._command(action)
        if actions:
            self.wake()

    def _command(self, action: Publish) -> None:
        if action.needs_audio and self._attach_audio is not None:
            self._attach_audio(action)
        else:
            self.publish(action)

    def publish(self, action: Publish) -> None:
        """Publish one engine message as compact UTF-8 JSON."""
        body = json.dumps(action.payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._publish(action.topic, body, action.qos, action.retain)


def _to_terminal(action: Action) -> bool:
    return isinstance(action, Publish) and action.payload.get("action") in _TERMINAL_ACTIONS


def _split(
    items: list[tuple[SpoolRow, AuditRow | None]],
) -> tuple[list[SpoolRow], list[AuditRow]]:
    return [row for row, _ in items], [a for _, a in items if a is not None]
