"""The people-facing devices bench/fire.py measures: which commands each call point's
alarm must produce (from the site model alone), and MQTT clients in the role of screens,
voice terminals and door controllers that record when each command arrives and ack it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from systems import BenchError

from gateway.config import GatewayConfig
from gateway.decode import ProfileSet
from gateway.site import SiteIndex

LINKAGE = frozenset({"show", "say", "release"})
TEARDOWN = frozenset({"clear", "stop", "normal"})
Expected = Counter[tuple[str, str]]  # (topic, action) → how many commands


@dataclass(frozen=True)
class Target:
    """One call point to press and the commands its fire must bring (docs/fire.md)."""

    building: str
    zone: str
    callpoint: str
    linkage: Expected
    teardown: Expected


def targets(cfg: GatewayConfig) -> list[Target]:
    """Every zone with a call point, buildings interleaved (consecutive alarms differ)."""
    site, prefix = cfg.site, f"{cfg.mqtt.root}/{cfg.gateway.site}"
    cp_doors = {d: cp for cp in site.checkpoints for d in cp.doors}
    rounds: list[list[Target]] = []
    for b in site.buildings:
        terminals = [(b.id, "screen", d, "show", "clear") for d in b.screens]
        if cfg.fire.gate_screens_on_fire:
            terminals += [("gates", "screen", d, "show", "clear") for d in site.gate_screens]
        terminals += [(b.id, "voice", d, "say", "stop") for d in b.voice]
        zones = [z for z in b.zones if z.callpoints]
        for k, z in enumerate(zones):
            linkage: Expected = Counter()
            teardown: Expected = Counter()
            for building, kind, dev, on, off in terminals:
                topic = f"{prefix}/{building}/{kind}/{dev}/cmd"
                linkage[(topic, on)] += 1
                teardown[(topic, off)] += 1
            scope = b.zones if cfg.fire.release_scope == "building" else [z]
            controllers: set[tuple[str, str]] = set()
            for door in {d for zz in scope for d in zz.egress_doors}:
                # A checkpoint's door by the checkpoint's controllers, others by the building's.
                cp = cp_doors.get(door)
                if cp is not None:
                    controllers |= {(cp.building, a) for a in cp.access}
                else:
                    controllers |= {(b.id, a) for a in b.access}
            for building, dev in controllers:
                topic = f"{prefix}/{building}/access/{dev}/cmd"
                linkage[(topic, "release")] += 1
                teardown[(topic, "normal")] += 1
            if len(rounds) <= k:
                rounds.append([])
            rounds[k].append(Target(b.id, z.id, z.callpoints[0], linkage, teardown))
    return [t for r in rounds for t in r]


def amplifiers(cfg: GatewayConfig) -> list[str]:
    """Voice terminals whose profile cannot synthesize: their `say` carries audio."""
    profiles = ProfileSet.load(cfg.gateway.profiles_dir)
    index = SiteIndex(cfg.site)
    return [
        dev
        for b in cfg.site.buildings
        for dev in b.voice
        if not profiles.get("voice", index.profile_for("voice", dev)).can_synthesize
    ]


# --- the simulated devices ------------------------------------------------------------------


@dataclass
class Command:
    t_ns: int
    topic: str
    action: str
    incident: str
    audio_bytes: int  # size of the `audio` field (0: text only)


class Devices:
    """One client for every screen, voice terminal and door controller: record and ack."""

    def __init__(self, port: int, prefix: str) -> None:
        self.commands: list[Command] = []
        self.cond = threading.Condition()
        self._client = connect_client(port, f"bench-fire-devices-{os.getpid()}")
        self._client.on_message = self._on_command
        done = threading.Event()
        self._client.on_subscribe = lambda *_: done.set()
        self._client.subscribe(f"{prefix}/+/+/+/cmd", qos=1)
        if not done.wait(10):
            self.stop()
            raise BenchError("device simulator: no SUBACK")

    def _on_command(self, client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        t_ns = time.time_ns()
        cmd = json.loads(msg.payload)
        client.publish(
            msg.topic[:-3] + "ack", b'{"cmd_id":"%s","ok":true}' % cmd["cmd_id"].encode()
        )
        with self.cond:
            audio = len(cmd.get("audio", ""))
            self.commands.append(
                Command(t_ns, msg.topic, cmd["action"], cmd.get("incident", ""), audio)
            )
            self.cond.notify_all()

    def wait(self, want: Expected, start: int, incident: str | None, timeout_s: float) -> Any:
        """Commands from index `start` until `want` is covered for one incident.

        `incident=None`: the first incident not seen before `start`. Returns (incident,
        its commands) — whatever arrived when the time is up.
        """
        deadline = time.monotonic() + timeout_s
        with self.cond:
            seen = {c.incident for c in self.commands[:start]}
            while True:
                new = self.commands[start:]
                if incident is None:
                    ids = [c.incident for c in new if c.incident not in seen]
                    incident = ids[0] if ids else None
                mine = [c for c in new if incident is not None and c.incident == incident]
                got = Counter((c.topic, c.action) for c in mine)
                left = deadline - time.monotonic()
                if all(got[k] >= n for k, n in want.items()) or left <= 0:
                    return incident, mine
                self.cond.wait(left)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def connect_client(port: int, client_id: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    up = threading.Event()
    client.on_connect = lambda *_: up.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not up.wait(10):
        raise BenchError(f"MQTT broker 127.0.0.1:{port}: no CONNACK")
    return client
