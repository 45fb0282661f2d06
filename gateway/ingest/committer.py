"""Turns a micro-batch into spool rows, commits them in one transaction, then fans out.

After the commit (and only then) the pipeline acknowledges the batch to the broker; this
class publishes the alerts the batch raised and wakes the forwarder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from gateway.decode.message import SpoolClass
from gateway.decode.redact import redact_cards
from gateway.devices.alerts import Alert
from gateway.devices.registry import DeviceRegistry
from gateway.forward.lineproto import encode_point, message_line
from gateway.ingest.pipeline import Batch, BatchSink
from gateway.metrics import GatewayMetrics
from gateway.site import SiteIndex
from gateway.spool import AuditRow, DeadLetter, Spool, SpoolRow

log = logging.getLogger(__name__)

BeforeCommit = Callable[[Batch], tuple[list[SpoolRow], list[AuditRow]]]
_LOG_EVERY_S = 10.0


class SpoolCommitter(BatchSink):
    """The bulk lane's last step: encode, commit, publish alerts, notify the forwarder."""

    def __init__(
        self,
        *,
        site_id: str,
        site: SiteIndex,
        spool: Spool,
        registry: DeviceRegistry,
        publish_alert: Callable[[Alert], None],
        on_committed: Callable[[], None],
        before_commit: BeforeCommit,
        metrics: GatewayMetrics,
    ) -> None:
        self._site_id = site_id
        self._places = site.places
        self._spool = spool
        self._registry = registry
        self._publish_alert = publish_alert
        self._on_committed = on_committed
        self._before_commit = before_commit
        self._metrics = metrics
        self._last_dead_log = 0.0
        self._dead_since_log = 0

    async def commit(self, batch: Batch) -> None:
        """Commit one batch durably; see the module docstring."""
        places = self._places
        rows = []
        unprovisioned = 0
        for msg in batch.messages:
            t = msg.topic
            place = places.get((t.building, t.kind, t.device))
            if place is None:
                unprovisioned += 1
            rows.append(
                SpoolRow(msg.spool_class, msg.ts_ms, msg.received_ms, message_line(msg, place))
            )
        alerts = self._registry.observe(batch.messages)
        rows.extend(self._alert_rows(alerts))
        for action, raw in batch.actions:
            fields: dict[str, float | int | bool | str] = {
                "payload": raw.payload.decode("utf-8", "replace")[:4096]
            }
            tags = {"site": self._site_id, "incident": action.incident}
            line = encode_point("incident_action", tags, fields, raw.received_ms)
            rows.append(SpoolRow(SpoolClass.EVENT, raw.received_ms, raw.received_ms, line))
        dead = [
            DeadLetter(raw.received_ms, raw.topic, redact_cards(raw.payload), reason, stage)
            for raw, stage, reason in batch.dead
        ]
        extra_rows, audit = self._before_commit(batch)
        rows.extend(extra_rows)
        await asyncio.to_thread(self._spool.commit_batch, rows, dead, audit)
        if unprovisioned:
            self._metrics.unprovisioned.inc(unprovisioned)
        if batch.rate_limited:
            self._metrics.rate_limited.inc(batch.rate_limited)
        if dead:
            self._report_dead(batch)
        self.publish(alerts)
        self._on_committed()

    async def commit_alerts(self, alerts: list[Alert]) -> None:
        """Store alerts raised outside a batch (liveness checks), then publish them."""
        if not alerts:
            return
        await self.commit_rows(self._alert_rows(alerts), [])
        self.publish(alerts)

    async def commit_rows(self, rows: list[SpoolRow], audit: list[AuditRow]) -> None:
        """Store rows produced outside a batch (timers, people's actions) in one transaction."""
        await asyncio.to_thread(self._spool.commit_batch, rows, (), audit)
        self._on_committed()

    def publish(self, alerts: list[Alert]) -> None:
        """Publish alerts and count them."""
        for alert in alerts:
            self._publish_alert(alert)
            self._metrics.alerts.labels(alert.type).inc()

    def _alert_rows(self, alerts: list[Alert]) -> list[SpoolRow]:
        return [SpoolRow(SpoolClass.EVENT, a.ts_ms, a.ts_ms, a.line(self._site_id)) for a in alerts]

    def _report_dead(self, batch: Batch) -> None:
        for _, stage, _ in batch.dead:
            self._metrics.dead_letters.labels(stage).inc()
            if stage == "decode":
                self._metrics.decode_errors.inc()
        self._dead_since_log += len(batch.dead)
        now = time.monotonic()
        if now - self._last_dead_log >= _LOG_EVERY_S:
            raw, stage, reason = batch.dead[0]
            log.warning(
                "dead-lettered %d message(s) since last report; latest: %s error on %r: %s",
                self._dead_since_log,
                stage,
                raw.topic,
                reason,
            )
            self._last_dead_log = now
            self._dead_since_log = 0
