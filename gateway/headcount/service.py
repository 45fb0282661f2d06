"""Runs the head-count engine inside the gateway: batches in; points, states, alerts out.

The engine is pure numpy over index arrays; this adapter feeds it each committed batch's
decoded messages, turns its output into spool rows (committed with the batch), retained
`state/occupancy/{checkpoint}` messages and `alerts/crowding|tailgating`, and tells it when
a reader or camera goes offline so its windows are marked uncertain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from gateway.decode.message import DeviceMessage, SpoolClass
from gateway.devices.alerts import Alert
from gateway.headcount.batch import build_batch
from gateway.headcount.engine import HeadcountEngine
from gateway.headcount.records import HeadcountOutput
from gateway.spool import SpoolRow

log = logging.getLogger(__name__)

PublishFn = Callable[[str, bytes, int, bool], None]


class HeadcountService:
    """The head-count stage of the bulk lane (event-loop thread only)."""

    def __init__(
        self, engine: HeadcountEngine, *, root: str, site_id: str, publish: PublishFn
    ) -> None:
        self.engine = engine
        self._root = root
        self._site = site_id
        self._publish = publish
        self.alerts_published = 0

    def on_batch(self, messages: Sequence[DeviceMessage]) -> list[SpoolRow]:
        """Count a batch; the rows to commit with it."""
        batch = build_batch(messages, self.engine.index)
        if len(batch):
            self.engine.ingest(batch)
        return self.tick()

    def tick(self) -> list[SpoolRow]:
        """Closed windows, states and alerts due now (call after each batch and every second)."""
        return self._emit(self.engine.tick())

    def on_alert(self, alert: Alert) -> None:
        """Device liveness from the registry: offline readers/cameras make windows uncertain."""
        if alert.type != "device_offline":
            return
        if alert.state == "raised":
            last_seen = alert.detail.get("last_seen")
            self.engine.mark_offline(
                alert.device, last_seen if isinstance(last_seen, int) else None
            )
        elif alert.state == "cleared":
            self.engine.mark_online(alert.device)

    def correct(self, target: str, value: int, by: str) -> SpoolRow:
        """A person's occupancy correction; the audit row to commit."""
        record = self.engine.correct_occupancy(target, value, by)
        log.info("occupancy of %s corrected to %d by %s", target, value, by)
        line = record.line()
        return SpoolRow(SpoolClass.EVENT, record.ts_ms, record.ts_ms, line)

    def _emit(self, out: HeadcountOutput) -> list[SpoolRow]:
        rows = [SpoolRow(SpoolClass.EVENT, _ts(line), _ts(line), line) for line in out.lines()]
        for checkpoint, state in out.states:
            topic = f"{self._root}/{self._site}/state/occupancy/{checkpoint}"
            body = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
            self._publish(topic, body, 1, True)
        for alert in out.alerts:
            topic = f"{self._root}/{self._site}/alerts/{alert.type}"
            self._publish(topic, alert.payload(self._site), 1, False)
            line = alert.line(self._site)
            rows.append(SpoolRow(SpoolClass.EVENT, _ts(line), _ts(line), line))
            self.alerts_published += 1
        return rows


def _ts(line: str) -> int:
    """The timestamp of a line-protocol point (its last field)."""
    return int(line.rsplit(" ", 1)[1])
