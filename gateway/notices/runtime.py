"""Operator notices inside the gateway: the API's entry point and a guest of the fire runtime.

`NoticeRuntime` attaches itself to the `FireRuntime`, so every notice decision runs under
the fire engine's lock (a fire message cannot reach a terminal between the check and the
send), acknowledgements arrive with the fire engine's bulk-lane messages, retries run on
its timer loop, and the records are committed and restored with the fire audit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage, SpoolClass
from gateway.fire.runtime import Covering, FireRuntime, GuestAction, Stored
from gateway.notices.board import NoticeAction, NoticeBoard
from gateway.notices.records import NoticeRecord, is_notice_record
from gateway.notices.spec import NoticeSpec
from gateway.notices.targets import Targets
from gateway.spool import SpoolRow

if TYPE_CHECKING:
    from gateway.config import FireSection

log = logging.getLogger(__name__)


class NoticeRuntime:
    """Thread-safe front of a `NoticeBoard`, sharing the fire runtime's lock and loop."""

    def __init__(
        self, fire: FireRuntime, settings: FireSection, root: str, site_id: str, clock: Clock
    ) -> None:
        self.board = NoticeBoard(settings, fire.engine.linkage, clock, root, site_id)
        self._fire = fire
        self._site_id = site_id
        self._clock = clock
        fire.attach(self)

    # --- the API (any thread); NoticeError says what is wrong with a request ---

    def post(self, spec: NoticeSpec, targets: Targets, by: str) -> dict[str, Any]:
        """Send a notice now; its view, with the terminals skipped for a fire message."""

        def run(covering: Covering) -> tuple[dict[str, Any], list[GuestAction]]:
            notice, actions = self.board.post(spec, targets, by, covering)
            return notice.view(self._clock.monotonic()), self._convert(actions)

        return self._fire.share(run)

    def clear(self, notice_id: str, by: str) -> dict[str, Any]:
        """Take a notice down (UnknownNotice when there is none); its view."""

        def run(covering: Covering) -> tuple[dict[str, Any], list[GuestAction]]:
            notice, actions = self.board.clear(notice_id, by, covering)
            return notice.view(self._clock.monotonic()), self._convert(actions)

        return self._fire.share(run)

    def get(self, notice_id: str) -> dict[str, Any]:
        """One notice's view (UnknownNotice when there is none)."""
        return self._fire.share(
            lambda _: (self.board.notice(notice_id).view(self._clock.monotonic()), [])
        )

    def recent(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        """The newest notices first (only those in `state`, when given)."""

        def run(_: Covering) -> tuple[list[dict[str, Any]], list[GuestAction]]:
            now = self._clock.monotonic()
            views = [n.view(now) for n in reversed(self.board.notices())]
            return [v for v in views if state in (None, v["state"])][:limit], []

        return self._fire.share(run)

    # --- the fire runtime's guest (called with its lock held) ---

    def owns(self, record: Mapping[str, Any]) -> bool:
        """True for a stored notice record."""
        return is_notice_record(record)

    def restore(self, records: list[dict[str, Any]], covering: Covering) -> list[GuestAction]:
        """Rebuild the notices; a screen freed while the gateway was down is shown again."""
        applied, skipped = self.board.restore(records)
        for reason in skipped[:20]:
            log.warning("restore skipped a notice record: %s", reason)
        if applied:
            log.info("notices: %d records replayed, %d notices", applied, len(self.board.notices()))
        return self._convert(self.board.after_fire(covering))

    def on_messages(self, msgs: Sequence[DeviceMessage]) -> list[GuestAction]:
        """Acknowledgements of notice commands."""
        return self._convert(self.board.on_messages(msgs))

    def after_fire(self, covering: Covering) -> list[GuestAction]:
        """Yield terminals a fire message took; take back those it freed."""
        return self._convert(self.board.after_fire(covering))

    def tick(self, covering: Covering) -> list[GuestAction]:
        """Retries that are due."""
        return self._convert(self.board.tick(covering))

    def next_deadline(self) -> float | None:
        """Monotonic time of the next retry."""
        return self.board.next_deadline()

    def _convert(self, actions: list[NoticeAction]) -> list[GuestAction]:
        out: list[GuestAction] = []
        for action in actions:
            if isinstance(action, NoticeRecord):
                line = action.line(self._site_id)
                row = SpoolRow(SpoolClass.EVENT, action.ts, action.ts, line)
                out.append(Stored(row, action.audit_row()))
            else:
                out.append(action)
        return out
