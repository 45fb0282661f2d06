"""A small synchronous MQTT 5 client for security tests: every wait has a deadline.

Denials are often silent in MQTT, so the tests use both the reason codes Mosquitto
returns to MQTT 5 clients (CONNACK, PUBACK, SUBACK) and a second client that watches.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

HOST = "127.0.0.1"
WAIT_S = 5.0
NOT_AUTHORIZED = 0x87


class MqttUser:
    """One connected (or refused) client; messages land in `self.messages`."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"t-{username or 'anon'}",
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._pubacks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(HOST, port, keepalive=10)
        self.client.loop_start()
        try:
            self.connack = self._connack.get(timeout=WAIT_S)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"no CONNACK for {username!r} within {WAIT_S} s") from None

    @property
    def connected(self) -> bool:
        return not self.connack.is_failure

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._connack.put(rc)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._connack.put(rc)  # a refused CONNECT may surface only as a disconnect

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        self.messages.put((msg.topic, bytes(msg.payload)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._pubacks[mid] = rc
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = rcs
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish at QoS 1; returns the PUBACK reason code (0 success, 0x87 not authorized)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._cond:
            if not self._cond.wait_for(lambda: info.mid in self._pubacks, WAIT_S):
                raise TimeoutError(f"no PUBACK for {topic!r} within {WAIT_S} s")
            return int(self._pubacks[info.mid].value)

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; returns the SUBACK reason code (granted QoS or 0x87)."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._subacks, WAIT_S):
                raise TimeoutError(f"no SUBACK for {topic!r} within {WAIT_S} s")
            return int(self._subacks[mid][0].value)

    def receive(self, timeout_s: float = WAIT_S) -> tuple[str, bytes] | None:
        """The next message, or None when nothing arrives within `timeout_s`."""
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def receive_all(self, timeout_s: float) -> list[tuple[str, bytes]]:
        """Everything that arrives within `timeout_s`."""
        out = []
        while (msg := self.receive(timeout_s)) is not None:
            out.append(msg)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
