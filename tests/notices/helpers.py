"""A fire engine and its runtime on a manual clock, with the notices attached as in the gateway.

`Bench` records every MQTT message the runtime publishes (in order) and every `say` handed
to the audio attacher, and reads back the records a spool commit would take.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.config import FireSection
from gateway.fire import Publish
from gateway.fire.runtime import FireRuntime
from gateway.notices import NoticeRecord, NoticeRuntime, NoticeSpec, Targets, TerminalRef
from tests.fire.helpers import ROOT, SITE, alarm, make_engine, msg

B1_TERMINALS = {"b1/screen/SCR-b1-a", "b1/screen/SCR-b1-b", "b1/voice/VT-b1", "b1/voice/AMP-b1"}
B2_TERMINALS = {"b2/screen/SCR-b2", "b2/voice/VT-b2"}
TEXT = "今晚20:00至22:00停水检修，请提前储水。"


class Bench:
    """The fire runtime (engine on a manual clock) with a `NoticeRuntime` attached."""

    def __init__(self, clock: Any = None, **settings: Any) -> None:
        self.engine, self.clock = make_engine(clock, **settings)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.audio: list[Publish] = []
        self.fire = FireRuntime(
            self.engine,
            site_id=SITE,
            clock=self.clock,
            publish=self._publish,
            publish_alert=lambda _alert: None,
            attach_audio=self.audio.append,
        )
        self.notices = NoticeRuntime(self.fire, FireSection(**settings), ROOT, SITE, self.clock)

    def _publish(self, topic: str, body: bytes, qos: int, retain: bool) -> None:
        assert qos == 1
        self.sent.append((topic, json.loads(body)))

    # --- operators ---

    def post(
        self,
        text: str = TEXT,
        buildings: tuple[str, ...] = (),
        terminals: tuple[TerminalRef, ...] = (),
        gates: bool = False,
        kinds: tuple[str, ...] = ("screen", "voice"),
        by: str = "op-1",
        **spec: Any,
    ) -> dict[str, Any]:
        """Post a notice through the runtime (as the API does); its view."""
        targets = Targets(terminals, buildings, gates, kinds)
        return self.notices.post(NoticeSpec(text, **spec), targets, by)

    def clear(self, notice_id: str, by: str = "op-1") -> dict[str, Any]:
        return self.notices.clear(notice_id, by)

    def tick(self) -> None:
        """What the runtime's timer loop does for the notices when it wakes."""
        self.fire.share(lambda covering: (None, self.notices.tick(covering)))

    # --- the fire ---

    def confirm_fire(self, building: str = "b1") -> str:
        """Two detectors (b1) or a detector and a call point (b2): the confirmed incident."""
        if building == "b1":
            self.fire.on_alarm(alarm("SD-1"))
            self.fire.on_alarm(alarm("SD-2"))
        else:
            self.fire.on_alarm(alarm("SD-21", "b2"))
            self.fire.on_alarm(alarm("CP-21", "b2", "callpoint"))
        (inc,) = [i for i in self.engine.incidents(open_only=True) if i.building == building]
        return inc.id

    # --- devices ---

    def commands(
        self, terminal: str | None = None, action: str | None = None, notices_only: bool = True
    ) -> list[dict[str, Any]]:
        """Command payloads sent (to `building/kind/device`), in order."""
        out = []
        for topic, payload in self.sent:
            if not topic.endswith("/cmd"):
                continue
            where = "/".join(topic.split("/")[2:5])
            if terminal is not None and where != terminal:
                continue
            if notices_only and "notice" not in payload:
                continue
            if action is None or payload["action"] == action:
                out.append(payload)
        return out

    def targets(self, since: int = 0) -> set[str]:
        """`building/kind/device` of every notice command sent after `self.sent[since]`."""
        return {
            "/".join(t.split("/")[2:5])
            for t, p in self.sent[since:]
            if t.endswith("/cmd") and "notice" in p
        }

    def ack(self, terminal: str, payload: dict[str, Any], ok: bool = True, **extra: Any) -> None:
        """The terminal answers a command (through the fire runtime's bulk-lane hook)."""
        building, kind, device = terminal.split("/")
        fields = {"cmd_id": payload["cmd_id"], "ok": ok, **extra}
        self.fire.on_messages([msg(building, kind, device, "ack", fields=fields)])

    def ack_all(self, since: int = 0) -> None:
        """Every terminal answers every notice command sent after `self.sent[since]`."""
        for topic, payload in list(self.sent[since:]):
            if topic.endswith("/cmd") and "notice" in payload:
                self.ack("/".join(topic.split("/")[2:5]), payload)
        for command in self.audio:
            self.ack("/".join(command.topic.split("/")[2:5]), command.payload)

    # --- storage ---

    def stored(self) -> list[NoticeRecord]:
        """Notice records waiting for a commit, checked to survive the JSON round trip."""
        rows, audit = self.fire.take_pending()
        out = []
        for row in audit:
            obj = json.loads(row.record)
            if "notice" in obj:
                rec = NoticeRecord.from_dict(obj)
                assert row.incident == rec.notice and rec.line(SITE) in {r.line for r in rows}
                out.append(rec)
        return out


def status(view: dict[str, Any]) -> dict[str, str]:
    """`building/kind/device` → status of a notice view."""
    return {t["terminal"]: t["status"] for t in view["terminals"]}
