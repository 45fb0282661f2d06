"""The gateway's one MQTT connection: persistent session, manual acks, publish, last will.

paho-mqtt runs its network loop in its own thread and reconnects by itself with
exponential backoff; this class adapts it to the gateway: every inbound message is handed
to a sink as a `RawMessage` (from paho's thread), and the pipeline acknowledges it later,
only after the spool has committed what it produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.ingest.fastclient import IngestClient
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RawMessage:
    """An MQTT message as it came off the wire, with what is needed to acknowledge it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ms: int
    received_mono: float


MessageSink = Callable[[RawMessage], None]


def apply_credentials(client: paho.Client, cfg: GatewayConfig) -> None:
    """User name, password and TLS from `[mqtt]`, for every connection the gateway opens."""
    m = cfg.mqtt
    if m.username:
        client.username_pw_set(m.username, cfg.read_secret(m.password_file))
    if m.tls_ca:
        client.tls_set(
            ca_certs=str(m.tls_ca),
            certfile=str(m.tls_cert) if m.tls_cert else None,
            keyfile=str(m.tls_key) if m.tls_key else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )


class MqttLink:
    """Owns the paho client of the gateway."""

    def __init__(
        self,
        cfg: GatewayConfig,
        sink: MessageSink,
        metrics: GatewayMetrics,
        clock: Clock,
        room: Callable[[float], bool] | None = None,
    ) -> None:
        """`room(timeout_s)` is asked before each read: False pauses reading (backpressure)."""
        self._cfg = cfg
        self._sink = sink
        self._room = room
        self._metrics = metrics
        self._clock = clock
        self._generation = 0
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._root = cfg.mqtt.root
        self._site = cfg.gateway.site
        self.status_topic = f"{self._root}/{self._site}/gateway/status"
        self.subscription = f"{self._root}/{self._site}/+/+/+/+"
        self._v5 = cfg.mqtt.protocol == "5"
        self._client = self._build_client()

    @property
    def connected(self) -> bool:
        """True while a session with the broker is established."""
        return self._connected.is_set()

    def _build_client(self) -> IngestClient:
        m = self._cfg.mqtt
        client = IngestClient(
            deliver=self._deliver,
            room=self._room,
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._cfg.client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        client.max_queued_messages_set(0)
        # No window for the gateway's own publishes: under a backlog the broker's PUBACKs
        # queue behind what it delivers to us, and a fire command would wait behind
        # thousands of unacknowledged alerts (3,298 in bench/ingest.py); paho also scans
        # the whole window on every PUBACK. Brokers that enforce a Receive Maximum
        # (Mosquitto 2.0 announces 20 and does not) are in docs/architecture.md.
        client.max_inflight_messages_set(0)
        client.reconnect_delay_set(
            max(1, round(m.reconnect_min_s)), max(1, round(m.reconnect_max_s))
        )
        apply_credentials(client, self._cfg)
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _connect_properties(self) -> Properties | None:
        if not self._v5:
            return None
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._cfg.mqtt.session_expiry_s
        props.ReceiveMaximum = self._cfg.mqtt.receive_maximum
        return props

    async def run(self) -> None:
        """Connect (retrying in the background until the broker answers) until cancelled."""
        m = self._cfg.mqtt
        self._client.connect_async(
            m.host,
            m.port,
            keepalive=m.keepalive_s,
            clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=self._connect_properties(),
        )
        self._client.loop_start()
        log.info("MQTT: connecting to %s:%d as %s", m.host, m.port, self._cfg.client_id)
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        if self.connected:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._metrics.mqtt_connected.set(0)
        log.info("MQTT: disconnected")

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected; False on timeout."""
        return await asyncio.to_thread(self._connected.wait, timeout_s)

    # --- paho callbacks (paho's network thread) ---

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT: broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        if self._v5:
            options = SubscribeOptions(qos=1, noLocal=True)
            client.subscribe(self.subscription, options=options)
        else:
            client.subscribe(self.subscription, qos=1)
        status = {"ts": self._clock.wall_ms(), "state": "online", "id": self._cfg.gateway.id}
        client.publish(self.status_topic, json.dumps(status), qos=1, retain=True)
        self._connected.set()
        self._metrics.mqtt_connected.set(1)
        log.info(
            "MQTT: connected (session present: %s), subscribed to %s",
            flags.session_present,
            self.subscription,
        )

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: Any,
        properties: Any,
    ) -> None:
        self._connected.clear()
        self._metrics.mqtt_connected.set(0)
        with self._lock:
            # Acks still pending for the old connection must not be sent on the next one.
            self._generation += 1
        if reason.is_failure:
            log.warning("MQTT: connection lost (%s); reconnecting with backoff", reason)

    def _deliver(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        try:
            self._sink(
                RawMessage(
                    topic,
                    payload,
                    mid,
                    qos,
                    self._generation,
                    self._clock.wall_ms(),
                    self._clock.monotonic(),
                )
            )
        except Exception:  # a sink failure must never kill paho's network thread
            log.exception("MQTT: message sink failed on %r", topic)

    # --- used by the pipeline and the engines (any thread) ---

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge committed messages of the current connection; returns how many."""
        with self._lock:
            generation = self._generation
        if not self.connected:
            return 0
        mids = [raw.mid for raw in messages if raw.qos == 1 and raw.generation == generation]
        self._client.ack_many(mids)
        return len(mids)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Queue a publish; paho delivers it (and re-delivers QoS 1 after a reconnect)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)
