"""A second MQTT connection that carries only the events that may be alarms.

MQTT delivers one session's messages in order, so on the gateway's one connection an
alarm published behind a backlog (a broker replaying its queue after an outage, a burst
beyond what the gateway commits per second) reaches the alarm lane only after everything
in front of it: seconds, or minutes after a long outage. This connection subscribes to the
fire-capable event topics alone (`{root}/{site}/+/{smoke,heat,callpoint,camera}/+/event`),
so there is never a backlog in front of an alarm.

It is a fast path, not a store: clean session, QoS 0 (no acknowledgements, no state in
the broker), nothing spooled, and the same lean PUBLISH reader as the main connection
(`IngestClient`: camera line crossings share the topic, so it reads a few percent of all
traffic). The same message still arrives on the main connection, which stores it and
acknowledges it after the commit; the pipeline hands each alarm to the fire engine once,
whichever connection brings it first (`IngestPipeline.alarm_only`). An alarm this
connection misses (it was reconnecting) still comes the main way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.decode.message import FIRE_DETECTOR_KINDS
from gateway.ingest.fastclient import IngestClient
from gateway.ingest.mqtt import MessageSink, RawMessage, apply_credentials

log = logging.getLogger(__name__)

ALARM_KINDS = (*sorted(FIRE_DETECTOR_KINDS), "camera")


class AlarmLink:
    """The alarm fast path's connection: `{client_id}-alarms`, clean session, QoS 0."""

    def __init__(self, cfg: GatewayConfig, sink: MessageSink, clock: Clock) -> None:
        """`sink` gets every message of the alarm topics, on the link's network thread."""
        self._cfg = cfg
        self._sink = sink
        self._clock = clock
        self._connected = threading.Event()
        root, site = cfg.mqtt.root, cfg.gateway.site
        self.subscriptions = [f"{root}/{site}/+/{kind}/+/event" for kind in ALARM_KINDS]
        self.client_id = f"{cfg.client_id}-alarms"
        self._v5 = cfg.mqtt.protocol == "5"
        client = IngestClient(
            CallbackAPIVersion.VERSION2,
            deliver=self._deliver,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            clean_session=None if self._v5 else True,
        )
        client.reconnect_delay_set(
            max(1, round(cfg.mqtt.reconnect_min_s)), max(1, round(cfg.mqtt.reconnect_max_s))
        )
        apply_credentials(client, cfg)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    @property
    def connected(self) -> bool:
        """Connected and subscribed."""
        return self._connected.is_set()

    async def run(self) -> None:
        """Connect (paho retries with backoff) and stay connected until cancelled."""
        m = self._cfg.mqtt
        if self._v5:
            self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s, clean_start=True)
        else:
            self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self._client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(self._shutdown)

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected and subscribed; False on timeout."""
        return await asyncio.to_thread(self._connected.wait, timeout_s)

    def _shutdown(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # --- paho callbacks (paho's network thread) ---

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT alarm link: broker refused the connection: %s", reason)
            return
        client.subscribe([(topic, 0) for topic in self.subscriptions])
        self._connected.set()
        log.info("MQTT alarm link: connected as %s", self.client_id)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            log.warning("MQTT alarm link: connection lost (%s); reconnecting", reason)

    def _deliver(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        now_ms, now = self._clock.wall_ms(), self._clock.monotonic()
        self._sink(RawMessage(topic, payload, mid, qos, 0, now_ms, now))
