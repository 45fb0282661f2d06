"""Simulated devices: deterministic site traffic and a paced MQTT publisher (load generator)."""

from gateway.sim.publisher import PublishError, PublishReport, publish, simulate
from gateway.sim.traffic import MIX, SimMessage, TrafficModel

__all__ = [
    "MIX",
    "PublishError",
    "PublishReport",
    "SimMessage",
    "TrafficModel",
    "publish",
    "simulate",
]
