"""Simulated devices: deterministic site traffic and a paced MQTT publisher (load generator)."""

from gateway.sim.publisher import PublishReport, publish, simulate
from gateway.sim.traffic import MIX, SimMessage, TrafficModel
from gateway.sim.vendor import EncodeError, VendorEncoder, VendorTraffic
from gateway.sim.wire import PublishError

__all__ = [
    "MIX",
    "EncodeError",
    "PublishError",
    "PublishReport",
    "SimMessage",
    "TrafficModel",
    "VendorEncoder",
    "VendorTraffic",
    "publish",
    "simulate",
]
