"""Simulated people-facing devices of a fire response, each a real MQTT client.

Every actor is its own paho client (MQTT 3.1.1, clean session), connected and subscribed
before its constructor returns, and records what it receives with the receive time:
- `Terminal`: a screen or voice terminal; answers each command on `…/ack` with the same
  `cmd_id` (CONTRACT.md), or never (`ack=False`), or refuses it (`ok=False`);
- `DoorController`: an access controller; confirms a `release` by its ack, by a status
  report (`{"state": "released"}` on `…/status`), or not at all (docs/fire.md);
- `FireTeamApp`: a fire team's phone: watches `alerts/fire/#` and acts on
  `alerts/fire/{incident}/action`;
- `Field`: the detectors, call points and cameras of the site, publishing at QoS 1;
- `Listener`: anything else (trouble alerts, the gateway's status).

Waits are async (`until`) because the gateway under test runs on the test's event loop:
blocking it would stall the very gateway the test is waiting for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 10.0
PUBLISH_TIMEOUT_S = 10.0
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Received:
    """One message as a simulated device got it."""

    t_ns: int
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        """The payload as JSON (commands and alerts are JSON objects)."""
        return json.loads(self.payload)


Predicate = Callable[[Received], bool]


class Inbox:
    """Everything an actor received, in order; safe to read while paho's thread appends."""

    def __init__(self) -> None:
        self._items: list[Received] = []
        self._lock = threading.Lock()

    def put(self, item: Received) -> None:
        with self._lock:
            self._items.append(item)

    def items(self, pred: Predicate | None = None) -> list[Received]:
        """What arrived so far (matching `pred`)."""
        with self._lock:
            items = list(self._items)
        return [m for m in items if pred is None or pred(m)]

    async def until(
        self, pred: Predicate, n: int = 1, timeout_s: float = 10.0, what: str = "message"
    ) -> list[Received]:
        """Wait until `n` received messages match `pred`; AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.items(pred)
            if len(found) >= n:
                return found
            if time.monotonic() >= deadline:
                tail = [f"{m.topic} {m.payload[:160]!r}" for m in self.items()[-8:]]
                raise AssertionError(
                    f"{what}: {len(found)} of {n} within {timeout_s} s; last received: {tail}"
                )
            await asyncio.sleep(0.005)


class MqttActor:
    """A paho client with a unique id, subscribed to `topics` (QoS 1) once constructed."""

    def __init__(self, port: int, name: str, topics: Iterable[str] = ()) -> None:
        self.inbox = Inbox()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{os.getpid()}-{next(_ids)}",
            protocol=paho.MQTTv311,
        )
        self._client.max_inflight_messages_set(0)
        self._client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._client.on_connect = lambda *_: self._connected.set()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(HOST, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise AssertionError(f"{name}: no CONNACK from 127.0.0.1:{port}")
        topics = list(topics)
        if topics:
            self._client.subscribe([(t, 1) for t in topics])
            if not self._subscribed.wait(CONNECT_TIMEOUT_S):
                self.close()
                raise AssertionError(f"{name}: no SUBACK for {topics}")

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        item = Received(time.time_ns(), msg.topic, bytes(msg.payload), bool(msg.retain))
        self.inbox.put(item)
        self.received(item)

    def received(self, item: Received) -> None:
        """Hook for subclasses that answer (paho's thread: must not block)."""

    def send(self, topic: str, payload: Any, retain: bool = False) -> paho.MQTTMessageInfo:
        """Publish at QoS 1 (dicts as compact JSON) without waiting for the PUBACK."""
        if not isinstance(payload, bytes | str):
            payload = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return self._client.publish(topic, payload, qos=1, retain=retain)

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Publish at QoS 1 and wait until the broker acknowledged it."""
        info = self.send(topic, payload, retain)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        assert info.is_published(), f"broker did not acknowledge a publish to {topic}"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class Terminal(MqttActor):
    """A screen or a voice terminal at `{root}/{site}/{building}/{kind}/{device}`."""

    def __init__(
        self,
        port: int,
        prefix: str,
        building: str,
        kind: str,
        device: str,
        *,
        ack: bool = True,
        ok: bool = True,
    ) -> None:
        self.building, self.kind, self.device = building, kind, device
        self.base = f"{prefix}/{building}/{kind}/{device}"
        self.ack, self.ok = ack, ok
        super().__init__(port, device, [f"{self.base}/cmd"])

    def received(self, item: Received) -> None:
        cmd = item.json()
        if self.ack:
            self.send(f"{self.base}/ack", {"cmd_id": cmd["cmd_id"], "ok": self.ok})

    def commands(self, action: str | None = None, incident: str | None = None) -> list[Any]:
        """Command payloads received (of one action / incident), in order."""
        return [
            c
            for c in (m.json() for m in self.inbox.items())
            if (action is None or c["action"] == action)
            and (incident is None or c.get("incident") == incident)
        ]

    async def until_command(
        self, action: str, incident: str | None = None, n: int = 1, timeout_s: float = 10.0
    ) -> list[Any]:
        """Wait for `n` commands of `action` (for `incident`); their payloads."""

        def match(m: Received) -> bool:
            c = m.json()
            return bool(c["action"] == action and incident in (None, c.get("incident")))

        found = await self.inbox.until(match, n, timeout_s, f"{self.device}: {action}")
        return [m.json() for m in found]


DoorConfirm = Literal["ack", "status", "none"]


class DoorController(Terminal):
    """An access controller that confirms released doors by `ack`, by `status`, or not."""

    def __init__(
        self,
        port: int,
        prefix: str,
        building: str,
        device: str,
        *,
        confirm: DoorConfirm = "ack",
    ) -> None:
        self.confirm = confirm
        super().__init__(port, prefix, building, "access", device, ack=confirm == "ack")

    def received(self, item: Received) -> None:
        cmd = item.json()
        if self.confirm == "ack":
            self.send(f"{self.base}/ack", {"cmd_id": cmd["cmd_id"], "ok": True})
        elif self.confirm == "status":
            state = "released" if cmd["action"] == "release" else "normal"
            self.send(f"{self.base}/status", {"state": state, "doors": cmd["doors"]})

    def report_released(self) -> None:
        """A late status report: every door of this controller is released."""
        self.publish(f"{self.base}/status", {"state": "released"})


class FireTeamApp(MqttActor):
    """A fire team's app: the fire alerts of the site, and the action buttons."""

    def __init__(self, port: int, prefix: str, team: str) -> None:
        self.prefix, self.team = prefix, team
        self.stream = f"{prefix}/alerts/fire"
        super().__init__(port, f"app-{team}", [f"{self.stream}/#"])  # `#` matches the parent

    def alerts(self, incident: str | None = None, retained_topic: bool = False) -> list[Any]:
        """Alert objects from `alerts/fire` (or from the per-incident retained topic)."""
        out = []
        for m in self.inbox.items():
            if m.topic.endswith("/action"):
                continue  # people's actions share the topic tree
            if (m.topic != self.stream) == retained_topic:
                alert = m.json()
                if incident is None or alert["id"] == incident:
                    out.append(alert)
        return out

    async def until_alert(
        self, pred: Callable[[Any], bool], timeout_s: float = 10.0, what: str = "fire alert"
    ) -> Any:
        """The first alert on the stream topic matching `pred`."""

        def match(m: Received) -> bool:
            return m.topic == self.stream and bool(pred(m.json()))

        return (await self.inbox.until(match, 1, timeout_s, what))[0].json()

    def act(self, incident: str, action: str, by: str | None = None) -> None:
        """Press a button: `{"by", "action"}` on `alerts/fire/{incident}/action`."""
        body = {"by": by or self.team, "action": action}
        self.publish(f"{self.stream}/{incident}/action", body)

    def act_raw(self, incident: str, payload: bytes) -> None:
        """Publish any payload on an action topic (malformed input)."""
        self.publish(f"{self.stream}/{incident}/action", payload)


class Field(MqttActor):
    """The site's detectors, call points and cameras: one publisher for all of them."""

    def __init__(self, port: int, prefix: str, wall_ms: Callable[[], int]) -> None:
        self.prefix = prefix
        self._wall_ms = wall_ms
        super().__init__(port, "field")

    def topic(self, building: str, kind: str, device: str, channel: str) -> str:
        return f"{self.prefix}/{building}/{kind}/{device}/{channel}"

    def event(self, building: str, kind: str, device: str, event: str, **extra: Any) -> None:
        """A device event (alarm, clear, camera fire …) stamped with the gateway's clock."""
        body = {"ts": self._wall_ms(), "event": event, **extra}
        self.publish(self.topic(building, kind, device, "event"), body)

    def alarm(self, building: str, kind: str, device: str) -> None:
        self.event(building, kind, device, "alarm")

    def publish_all(self, items: list[tuple[str, bytes]]) -> None:
        """Publish many messages back to back, then wait for every PUBACK (blocking)."""
        infos = [self.send(topic, payload) for topic, payload in items]
        deadline = time.monotonic() + 30.0
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge every publish"


class Listener(MqttActor):
    """Records a topic filter (trouble alerts, gateway status)."""

    def __init__(self, port: int, topic: str) -> None:
        super().__init__(port, "listener", [topic])

    def json(self, pred: Callable[[Any], bool] | None = None) -> list[Any]:
        """JSON payloads received (matching `pred`); non-JSON payloads are skipped."""
        out = []
        for m in self.inbox.items():
            try:
                doc = m.json()
            except ValueError:
                continue
            if pred is None or pred(doc):
                out.append(doc)
        return out
