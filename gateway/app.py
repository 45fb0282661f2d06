"""The one composition root: builds every component from the config and runs them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gateway import systemd
from gateway.clock import Clock, SystemClock
from gateway.config import GatewayConfig
from gateway.decode import Decoder, Profile, ProfileSet
from gateway.decode.message import DeviceMessage, SpoolClass
from gateway.devices.alerts import Alert
from gateway.devices.registry import DeviceRegistry
from gateway.fire import AlarmRecorder, FireEngine
from gateway.fire.actions import Notify, Publish
from gateway.fire.audio import SpeechRenderer
from gateway.fire.delivery import AudioAttacher, texts_to_render
from gateway.fire.runtime import FireRuntime
from gateway.fire.webhooks import Delivery, WebhookNotifier
from gateway.forward import Forwarder, make_writer
from gateway.forward.lineproto import encode_point, message_line
from gateway.headcount import HeadcountEngine
from gateway.headcount.service import HeadcountService
from gateway.ingest.alarmlink import AlarmLink
from gateway.ingest.committer import SpoolCommitter
from gateway.ingest.mqtt import MqttLink, RawMessage
from gateway.ingest.pipeline import Batch, IngestPipeline
from gateway.ingest.ratelimit import DeviceRateLimiter
from gateway.ingest.topic import DeviceTopic, alert_topic
from gateway.metrics import GatewayMetrics
from gateway.notices import NoticeRuntime
from gateway.protocols.gb26875 import PanelReceiver
from gateway.site import SiteIndex
from gateway.spool import AuditRow, Spool, SpoolRow

if TYPE_CHECKING:
    from gateway.vision import CameraEvent, Crossing, VisionService

log = logging.getLogger(__name__)

SUPERVISION_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 60.0
SPEECH_MEMORY_BYTES = 4 * 1024 * 1024  # ~6 texts; the disk cache holds the rest
RESTORE_WINDOW_MS = 7 * 24 * 3600 * 1000  # audit replayed at start: open incidents and today's ids


class Gateway:
    """One gateway: MQTT link → ingest pipeline → spool → forwarder, plus supervision and API."""

    def __init__(
        self,
        cfg: GatewayConfig,
        clock: Clock | None = None,
        alarm_hook: Callable[[DeviceMessage], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.site = SiteIndex(cfg.site)
        self.profiles = ProfileSet.load(cfg.gateway.profiles_dir)
        self.profiles.check_site(cfg.site)
        self.decoder = Decoder(
            self.profiles, self.site, cfg.card_salt(), cfg.ingest.max_payload_bytes
        )
        cfg.spool.path.parent.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(
            cfg.spool.path,
            max_bytes=cfg.spool.max_bytes,
            max_age_h=cfg.spool.max_age_h,
            synchronous=cfg.spool.synchronous,
            clock=self.clock,
            keep_history=cfg.influx.api == "none",
            history_days=cfg.spool.history_days,
        )
        self.writer = make_writer(cfg)
        self.forwarder = (
            Forwarder(
                self.spool,
                self.writer,
                self.metrics,
                self.clock,
                batch_lines=cfg.influx.batch_lines,
                backoff_min_s=cfg.influx.backoff_min_s,
                backoff_max_s=cfg.influx.backoff_max_s,
            )
            if self.writer is not None
            else None
        )
        self.registry = DeviceRegistry(self.site, self._profile_for, self.clock)
        self.alarms = AlarmRecorder(self.site, self.clock)
        self.fire = FireRuntime(
            FireEngine(
                cfg.fire,
                self.site,
                cfg.gateway.site,
                cfg.mqtt.root,
                self.clock,
                can_synthesize=self._can_synthesize,
            ),
            site_id=cfg.gateway.site,
            clock=self.clock,
            publish=self._publish,
            publish_alert=self._publish_alert,
            notify=self._notify_team,
            attach_audio=self._attach_audio,
        )
        # Operator notices share the fire runtime's lock, acks, timers and commits.
        self.notices = NoticeRuntime(
            self.fire, cfg.fire, cfg.mqtt.root, cfg.gateway.site, self.clock
        )
        self.headcount = (
            HeadcountService(
                HeadcountEngine(cfg.site, cfg.headcount, self.clock, site_id=cfg.gateway.site),
                root=cfg.mqtt.root,
                site_id=cfg.gateway.site,
                publish=self._publish,
            )
            if cfg.headcount.enabled
            else None
        )
        self.speech = SpeechRenderer(
            cache_dir=cfg.spool.path.parent / "speech", memory_bytes=SPEECH_MEMORY_BYTES
        )
        self.audio = AudioAttacher(self.speech, self.fire.publish)
        self.webhooks = WebhookNotifier(
            {t.id: t.webhook_url for t in cfg.site.fire_teams if t.webhook_url},
            self.clock,
            on_delivery=self._on_delivery,
        )
        self.vision: VisionService | None = None
        if cfg.vision.enabled and cfg.vision.cameras:
            from gateway.vision import VisionService  # OpenCV is loaded only with cameras

            self.vision = VisionService(
                cfg.vision,
                self.clock,
                on_crossings=self._on_crossings,
                on_events=self._on_camera_events,
                on_status=self._on_camera_status,
            )
        self.panels = (
            PanelReceiver(
                cfg.panels,
                cfg.gateway.site,
                self.clock,
                on_messages=self._on_panel_messages,
                on_alerts=self.committer_alerts,
            )
            if cfg.panels.enabled
            else None
        )
        # Panel components report only on change: the panel's own heartbeat supervises them.
        for unit in cfg.panels.units if cfg.panels.enabled else ():
            for comp in unit.components:
                for kind in ("smoke", "heat", "callpoint"):
                    rec = self.registry.devices.get((unit.building, kind, comp.device))
                    if rec is not None:
                        rec.heartbeat_s = float("inf")
        self._camera_building = {
            dev: building for (building, kind, dev) in self.site.places if kind == "camera"
        }
        self.committer = SpoolCommitter(
            site_id=cfg.gateway.site,
            site=self.site,
            spool=self.spool,
            registry=self.registry,
            publish_alert=self._publish_alert,
            on_committed=self._on_committed,
            before_commit=self._before_commit,
            metrics=self.metrics,
        )
        self.pipeline = IngestPipeline(
            root=cfg.mqtt.root,
            site=cfg.gateway.site,
            decode=self.decoder.decode,
            sink=self.committer,
            ack=self._ack,
            alarm_hook=alarm_hook or self._on_alarm,
            metrics=self.metrics,
            clock=self.clock,
            batch_max_ms=cfg.ingest.batch_max_ms,
            batch_max_msgs=cfg.ingest.batch_max_msgs,
            limiter=DeviceRateLimiter(cfg.ingest.device_rate_per_s, cfg.ingest.device_burst),
            relieve=self.spool.relieve,
            capacity=cfg.mqtt.receive_maximum,
        )
        self.link = MqttLink(
            cfg, self.pipeline.submit, self.metrics, self.clock, room=self.pipeline.wait_for_room
        )
        # Alarms behind a backlog on `link` would wait for it: they also come this way.
        self.alarm_link = AlarmLink(cfg, self.pipeline.alarm_only, self.clock)

    def _profile_for(self, kind: str, device: str) -> Profile:
        return self.profiles.get(kind, self.site.profile_for(kind, device))

    def _ack(self, raws: Sequence[RawMessage]) -> int:
        # The link is built after the pipeline (it needs pipeline.submit), hence the indirection.
        return self.link.ack(raws)

    def _publish_alert(self, alert: Alert) -> None:
        # Registry alerts arrive on the loop thread; the fire engine's troubles (MQTT
        # thread) are never `device_offline`, the only type the head-count engine reads.
        if self.headcount is not None:
            self.headcount.on_alert(alert)
        topic = alert_topic(self.cfg.mqtt.root, self.cfg.gateway.site, alert.type)
        self.link.publish(topic, alert.payload(self.cfg.gateway.site), qos=1)

    def _on_committed(self) -> None:
        if self.forwarder is not None:
            self.forwarder.notify()

    def _can_synthesize(self, voice_device: str) -> bool:
        return self._profile_for("voice", voice_device).can_synthesize

    def _notify_team(self, notify: Notify) -> bool:
        return self.webhooks.submit(notify)

    def _attach_audio(self, command: Publish) -> None:
        self.audio.submit(command)

    def _on_delivery(self, d: Delivery) -> None:
        tags = {"site": self.cfg.gateway.site, "team": d.team, "reason": d.reason}
        if d.incident:
            tags["incident"] = d.incident
        fields: dict[str, float | int | bool | str] = {
            "ok": d.ok,
            "attempts": d.attempts,
            "error": d.error,
            "delay_ms": d.last_ms - d.first_ms,
        }
        if d.status is not None:
            fields["status"] = d.status
        line = encode_point("webhook_delivery", tags, fields, d.last_ms)
        self.fire.record(SpoolRow(SpoolClass.EVENT, d.last_ms, d.last_ms, line))

    def _on_crossings(self, crossings: list[Crossing]) -> None:
        """Vision line crossings count like a smart camera's (loop thread)."""
        if self.headcount is None:
            return
        index = self.headcount.engine.index
        rows = [
            (index.checkpoint(c.checkpoint), c.ts_ms, c.n_in, c.n_out)
            for c in crossings
            if c.checkpoint in index.checkpoint_index
        ]
        if rows:
            self.headcount.engine.ingest_crossings(rows)

    def _on_camera_events(self, events: list[CameraEvent]) -> None:
        """Vision fire/smoke detections take the same path as a smart camera's events."""
        for e in events:
            building = self._camera_building.get(e.camera) or self._zone_building(e.zone)
            if building is None:
                log.warning("vision: camera %s zone %s is in no building", e.camera, e.zone)
                continue
            topic = DeviceTopic(self.cfg.gateway.site, building, "camera", e.camera, "event")
            msg = DeviceMessage(
                topic, e.ts_ms, "gateway", e.ts_ms, event=e.kind,
                fields={"confidence": e.confidence, "vision": True}, tags={"zone": e.zone},
            )  # fmt: skip
            self._on_alarm(msg)
            line = message_line(msg, self.site.place(building, "camera", e.camera))
            self.fire.record(SpoolRow(SpoolClass.ALARM, e.ts_ms, e.ts_ms, line))

    async def _on_panel_messages(self, msgs: list[DeviceMessage], alarm: bool) -> None:
        """A fire alarm panel's frame (GB/T 26875.3): same paths as MQTT; the panel is
        confirmed only after this commit."""
        if alarm:
            for msg in msgs:
                if msg.is_alarm:
                    self._on_alarm(msg)
        await self.committer.commit(Batch(messages=msgs))

    async def committer_alerts(self, alerts: list[Alert]) -> None:
        """Store and publish alerts raised outside a batch (panels, transmitters)."""
        await self.committer.commit_alerts(alerts)

    def _zone_building(self, zone: str) -> str | None:
        for b in self.cfg.site.buildings:
            if any(z.id == zone for z in b.zones):
                return b.id
        return None

    def _on_camera_status(self, camera: str, up: bool, reason: str) -> None:
        building = self._camera_building.get(camera, "gates")
        alert = Alert(
            "trouble", self.clock.wall_ms(), building, "camera", camera,
            "cleared" if up else "raised", {"trouble": "stream_down", "reason": reason},
        )  # fmt: skip
        self.committer.publish([alert])
        self.fire.record(
            SpoolRow(SpoolClass.EVENT, alert.ts_ms, alert.ts_ms, alert.line(self.cfg.gateway.site))
        )

    def _speech_texts(self) -> list[str]:
        f = self.cfg.fire
        templates = [f.text_fire, f.text_drill]
        if f.prealarm_notify_screens:
            templates.append(f.text_prealarm)
        return texts_to_render(self.fire.engine.linkage, templates)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.link.publish(topic, payload, qos=qos, retain=retain)

    def _on_alarm(self, msg: DeviceMessage) -> None:
        """The alarm lane's hook (MQTT thread): the fire engine links at once."""
        self.alarms(msg)
        self.fire.on_alarm(msg)

    def _before_commit(self, batch: Batch) -> tuple[list[SpoolRow], list[AuditRow]]:
        """Feed the batch to the fire engine; its audit joins the batch's transaction."""
        for action, raw in batch.actions:
            self.fire.on_action_message(action.incident, raw.payload)
        if self.vision is not None:
            for raw in batch.raws:
                if raw.topic.endswith("/frame"):
                    parts = raw.topic.split("/")
                    if len(parts) == 6 and parts[3] == "camera":
                        self.vision.submit_jpeg(parts[4], raw.payload)
        self.fire.on_messages(batch.messages)
        rows, audit = self.fire.take_pending()
        if self.headcount is not None:
            rows.extend(self.headcount.on_batch(batch.messages))
        return rows, audit

    async def _restore_incidents(self) -> None:
        since = self.clock.wall_ms() - RESTORE_WINDOW_MS
        records = await asyncio.to_thread(self.spool.audit_records, since)
        if records:
            summary = self.fire.restore(records)
            log.info(
                "fire: %d audit records replayed, open incidents: %s",
                summary.applied,
                ", ".join(summary.open_incidents) or "none",
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then drain, commit, acknowledge and disconnect."""
        try:
            await self._restore_incidents()
            async with asyncio.TaskGroup() as tg:
                link = tg.create_task(self.link.run(), name="mqtt")
                pipeline = tg.create_task(self.pipeline.run(), name="pipeline")
                others = [
                    tg.create_task(self.alarm_link.run(), name="mqtt-alarms"),
                    tg.create_task(self._supervise(), name="supervision"),
                    tg.create_task(self._prune(), name="prune"),
                    tg.create_task(self.fire.run(self.committer.commit_rows), name="fire"),
                    tg.create_task(self.audio.run(self._speech_texts()), name="speech"),
                    tg.create_task(self.webhooks.run(), name="webhooks"),
                ]
                if self.vision is not None:
                    others.append(tg.create_task(self.vision.run(), name="vision"))
                if self.panels is not None:
                    others.append(tg.create_task(self.panels.run(), name="gb26875"))
                if self.forwarder is not None:
                    if self.writer is not None and hasattr(self.writer, "ensure_database"):
                        others.append(tg.create_task(self.writer.ensure_database()))
                    others.append(tg.create_task(self.forwarder.run(), name="forwarder"))
                if self.cfg.api.enabled:
                    from gateway.api.server import serve_api

                    others.append(tg.create_task(serve_api(self), name="api"))
                await stop.wait()
                log.info("stopping: draining the ingest pipeline")
                systemd.notify("STOPPING=1")
                self.pipeline.stop()
                await pipeline
                await self.pipeline.drain()
                for task in others:
                    task.cancel()
                link.cancel()
        finally:
            await asyncio.to_thread(self.spool.close)
            if self.writer is not None:
                await self.writer.aclose()
            log.info("stopped")

    async def _supervise(self) -> None:
        systemd.notify("READY=1")
        while True:
            await asyncio.sleep(SUPERVISION_INTERVAL_S)
            # The loop still turns: tell systemd's watchdog (no-op outside systemd).
            systemd.notify("WATCHDOG=1")
            await self.committer.commit_alerts(self.registry.check_liveness())
            if self.headcount is not None:
                rows = self.headcount.tick()
                if rows:
                    await self.committer.commit_rows(rows, [])
            for state, n in self.registry.counts().items():
                self.metrics.devices.labels(state).set(n)
            stats = await asyncio.to_thread(self.spool.stats)
            self.metrics.spool_rows.set(stats.rows)
            self.metrics.spool_bytes.set(stats.bytes)

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            dropped = await asyncio.to_thread(self.spool.prune)
            if dropped:
                log.info(
                    "spool: pruned %d telemetry rows older than %.0f h",
                    dropped,
                    self.cfg.spool.max_age_h,
                )
