"""Fire scenarios for `community-gateway simulate --scenario NAME`.

Each scenario is a short script of device messages (and, for a false alarm, the duty
room's verdict) published to the site's broker on a schedule, to watch the gateway's fire
response: pre-alarm, confirmation rules, linkage, escalation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.site import Building, Zone


class ScenarioError(GatewayError):
    """The scenario cannot run on this site (e.g. no zone with two detectors)."""


@dataclass(frozen=True, slots=True)
class Step:
    """Publish `payload` on `topic` `at_s` seconds after the start."""

    at_s: float
    topic: str
    payload: dict[str, object]
    note: str


def _zone_with(cfg: GatewayConfig, need: Callable[[Zone], bool]) -> tuple[Building, Zone]:
    for b in cfg.site.buildings:
        for z in b.zones:
            if need(z):
                return b, z
    raise ScenarioError("no zone of the site model fits this scenario")


def _alarm(cfg: GatewayConfig, b: Building, kind: str, dev: str, at: float, note: str) -> Step:
    topic = f"{cfg.mqtt.root}/{cfg.gateway.site}/{b.id}/{kind}/{dev}/event"
    return Step(
        at, topic, {"event": "alarm", "smoke": 4.2} if kind == "smoke" else {"event": "alarm"}, note
    )


def build(cfg: GatewayConfig, name: str) -> list[Step]:
    """The steps of scenario `name` on this site."""
    if name in {"single-detector", "silent-team", "false-alarm"}:
        b, z = _zone_with(cfg, lambda z: bool(z.smoke))
        steps = [_alarm(cfg, b, "smoke", z.smoke[0], 0.0, f"one detector in {z.id}: pre-alarm")]
        if name == "false-alarm":
            steps.append(Step(5.0, "", {"action": "false_alarm", "by": "duty-room"},
                              "the duty room checks and calls it a false alarm"))  # fmt: skip
        return steps
    if name == "two-detectors":
        b, z = _zone_with(cfg, lambda z: len(z.smoke) >= 2)
        return [
            _alarm(cfg, b, "smoke", z.smoke[0], 0.0, f"first detector in {z.id}: pre-alarm"),
            _alarm(cfg, b, "smoke", z.smoke[1], 10.0, "second detector: confirmed, linkage"),
        ]
    if name == "callpoint":
        b, z = _zone_with(cfg, lambda z: bool(z.callpoints))
        return [_alarm(cfg, b, "callpoint", z.callpoints[0], 0.0, f"call point in {z.id}")]
    if name == "storm":
        b, z = _zone_with(cfg, lambda z: len(z.smoke) >= 2)
        return [
            _alarm(cfg, b, "smoke", z.smoke[i % len(z.smoke)], i * 0.005, "storm")
            for i in range(200)
        ]
    raise ScenarioError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")


SCENARIOS = ("single-detector", "two-detectors", "callpoint", "false-alarm", "storm", "silent-team")


def run(
    cfg: GatewayConfig,
    name: str,
    echo: Callable[[str], None] = print,
    time_scale: float = 1.0,
) -> int:
    """Play scenario `name` against the config's broker; returns the messages published.

    `time_scale` < 1 plays the schedule faster (tests).
    """
    steps = build(cfg, name)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"scenario-{name}-{time.time_ns()}")
    if cfg.mqtt.username:
        client.username_pw_set(cfg.mqtt.username, cfg.read_secret(cfg.mqtt.password_file))
    if cfg.mqtt.tls_ca:
        client.tls_set(ca_certs=str(cfg.mqtt.tls_ca))
    incidents: list[str] = []
    alerts = f"{cfg.mqtt.root}/{cfg.gateway.site}/alerts/fire"

    def on_alert(c: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
        try:
            alert = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(alert, dict) and alert.get("id") not in incidents:
            incidents.append(str(alert.get("id")))
            echo(f"  incident {alert.get('id')}: {alert.get('state')}")

    client.on_message = on_alert
    try:
        client.connect(cfg.mqtt.host, cfg.mqtt.port)
    except OSError as exc:
        raise ScenarioError(f"broker {cfg.mqtt.host}:{cfg.mqtt.port}: {exc}") from None
    client.subscribe(alerts, qos=1)
    client.loop_start()
    start = time.monotonic()
    try:
        for step in steps:
            time.sleep(max(0.0, start + step.at_s * time_scale - time.monotonic()))
            payload = dict(step.payload)
            topic = step.topic
            if not topic:  # a person's verdict on the incident the scenario opened
                if not incidents:
                    echo("  no incident to act on (is the gateway running?)")
                    continue
                topic = f"{alerts}/{incidents[-1]}/action"
            else:
                payload["ts"] = time.time_ns() // 1_000_000
            client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
            if step.note != "storm" or step.at_s == 0.0:
                echo(f"{step.at_s:6.1f} s  {step.note}")
        time.sleep(2.0 * time_scale)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(steps)
