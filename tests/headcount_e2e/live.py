"""MQTT helpers of the morning-rush test: a player publishing on schedule and a watcher."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.sim.rush import AlertFlip, RushMessage

T = TypeVar("T", AlertFlip, dict[str, Any])


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def by_target(alerts: Iterable[T]) -> dict[tuple[str, str], list[T]]:
    """Alert payloads or truth flips by (type, checkpoint or building), in order: alerts of
    different targets at the same moment may come in any order."""
    out: dict[tuple[str, str], list[T]] = {}
    for a in alerts:
        body = a.body if isinstance(a, AlertFlip) else a
        target = body.get("checkpoint") or body.get("building") or body.get("device", "?")
        out.setdefault((str(body.get("type")), str(target)), []).append(a)
    return out


@dataclass(frozen=True, slots=True)
class Received:
    """A message the watcher got, when, and whether the broker sent it as retained."""

    topic: str
    payload: bytes
    retained: bool
    at_ms: int


class Watcher:
    """A real MQTT subscriber (QoS 1) collecting what arrives on `topics`."""

    def __init__(self, port: int, topics: list[str], client_id: str) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._port = port

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.retain), wall_ms())
            )

    def __enter__(self) -> Watcher:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"no SUBACK from the broker on port {self._port} in 10 s")
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self, prefix: str = "") -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(prefix)]


class Player(threading.Thread):
    """Publishes each message at its `publish_ms` (QoS 1) and waits for every PUBACK."""

    def __init__(self, port: int, messages: list[RushMessage], client_id: str) -> None:
        super().__init__(name="rush-player", daemon=True)
        self._messages = messages
        self._port = port
        self._client_id = client_id
        self.max_lag_ms = 0
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id)
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        try:
            client.connect("127.0.0.1", self._port)
            client.loop_start()
            infos = []
            for m in self._messages:
                ahead = m.publish_ms / 1000 - time.time()
                if ahead > 0:
                    time.sleep(ahead)
                self.max_lag_ms = max(self.max_lag_ms, wall_ms() - m.publish_ms)
                infos.append(client.publish(m.topic, m.payload, qos=1))
            deadline = time.monotonic() + 20
            for info in infos:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
                if not info.is_published():
                    raise TimeoutError("the broker did not acknowledge every rush message")
        except BaseException as exc:  # handed to the test thread
            self.error = exc
        finally:
            client.disconnect()
            client.loop_stop()
            self.done.set()
