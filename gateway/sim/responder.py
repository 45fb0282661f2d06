"""Simulated people-facing devices and a fire team for the demo and the simulator.

`DeviceResponder` plays every screen, voice terminal and door controller of a site: it
acknowledges each command on `…/ack` with its `cmd_id`. `TeamApp` plays the duty phone of
the fire teams: it acknowledges each new incident, reports on scene, then resolves it, on
a schedule of its own.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


def _client(host: str, port: int, client_id: str, protocol: str) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if protocol == "5" else paho.MQTTv311,
    )
    client.connect(host, port)
    return client


class DeviceResponder:
    """Acknowledges every command sent to a site's devices (screens, voice, doors)."""

    def __init__(self, host: str, port: int, root: str, site: str, protocol: str = "5") -> None:
        self.commands = 0
        self._client = _client(host, port, f"sim-devices-{site}", protocol)
        self._client.on_message = self._on_command
        self._client.subscribe(f"{root}/{site}/+/+/+/cmd", qos=1)

    def _on_command(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            cmd = json.loads(msg.payload)
            reply = {"cmd_id": cmd["cmd_id"], "ok": True}
        except (ValueError, KeyError, TypeError):
            return
        self.commands += 1
        client.publish(msg.topic[: -len("cmd")] + "ack", json.dumps(reply), qos=1)

    def start(self) -> None:
        """Answer commands in a background thread."""
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(frozen=True, slots=True)
class TeamTiming:
    """Seconds after an incident is dispatched at which the simulated team acts."""

    ack_s: float = 8.0
    on_scene_s: float = 25.0
    resolve_s: float = 45.0


class TeamApp:
    """A fire team's phone: acknowledges, arrives and resolves each dispatched incident."""

    def __init__(
        self,
        host: str,
        port: int,
        root: str,
        site: str,
        timing: TeamTiming = TeamTiming(),
        protocol: str = "5",
    ) -> None:
        self._prefix = f"{root}/{site}/alerts/fire"
        self._timing = timing
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._client = _client(host, port, f"sim-team-{site}", protocol)
        self._client.on_message = self._on_alert
        self._client.subscribe(f"{self._prefix}/+", qos=1)

    def _on_alert(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            alert = json.loads(msg.payload)
            incident, state, team = alert["id"], alert["state"], alert.get("team")
        except (ValueError, KeyError, TypeError):
            return
        if state != "dispatched" or not team:
            return
        with self._lock:
            if incident in self._seen:
                return
            self._seen.add(incident)
            t = self._timing
            for delay, action in (
                (t.ack_s, "ack"),
                (t.on_scene_s, "on_scene"),
                (t.resolve_s, "resolve"),
            ):
                timer = threading.Timer(delay, self._act, (incident, action, team))
                timer.daemon = True
                timer.start()
                self._timers.append(timer)

    def _act(self, incident: str, action: str, team: str) -> None:
        body = json.dumps({"by": team, "action": action})
        self._client.publish(f"{self._prefix}/{incident}/action", body, qos=1)

    def start(self) -> None:
        """Act on incidents in a background thread."""
        self._client.loop_start()

    def stop(self) -> None:
        """Cancel pending actions and disconnect."""
        for timer in self._timers:
            timer.cancel()
        self._client.disconnect()
        self._client.loop_stop()
