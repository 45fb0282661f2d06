"""The ingest benchmark's workload: messages generated once and fed unchanged to every
system under test, and what they should produce in InfluxDB (bench/README.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gateway.config import GatewayConfig
from gateway.forward.lineproto import measurement_for
from gateway.sim.traffic import SimMessage, TrafficModel

TRACER_STRIDE = 12  # one building in 12 of each measurement is polled for latency


@dataclass
class Workload:
    """Pre-generated messages, fed unchanged to every system, and what they should produce."""

    messages: list[SimMessage]
    measurement: list[str]
    ts_ms: np.ndarray
    alarms: int

    def head(self, n: int) -> Workload:
        """The first n messages (the naive bridge's subset)."""
        ms = self.messages[:n]
        return Workload(ms, self.measurement[:n], self.ts_ms[:n], sum(m.is_alarm for m in ms))

    def expected(self) -> dict[str, int]:
        """Points per measurement: every message is one distinct point."""
        out: dict[str, int] = {}
        for m in self.measurement:
            out[m] = out.get(m, 0) + 1
        return out

    def tracer_buildings(self) -> tuple[str, ...]:
        """Every TRACER_STRIDE-th building of each measurement (so every kind is sampled)."""
        per: dict[str, set[str]] = {}
        for msg, m in zip(self.messages, self.measurement, strict=True):
            per.setdefault(m, set()).add(msg.building)
        chosen = {b for bs in per.values() for b in sorted(bs)[::TRACER_STRIDE]}
        return tuple(sorted(chosen))

    def tracer_mask(self) -> np.ndarray:
        """True for the messages of the tracer buildings."""
        chosen = set(self.tracer_buildings())
        return np.array([m.building in chosen for m in self.messages], dtype=bool)

    def finals(self) -> tuple[tuple[str, str, int], ...]:
        """(measurement, device, ts) of the newest message of each measurement."""
        last: dict[str, SimMessage] = {}
        for msg, m in zip(self.messages, self.measurement, strict=True):
            if m not in last or msg.ts_ms >= last[m].ts_ms:
                last[m] = msg
        return tuple((m, msg.device, msg.ts_ms) for m, msg in sorted(last.items()))


def make_workload(cfg: GatewayConfig, n: int, seed: int, alarm_every: int) -> Workload:
    """n messages, timestamps 1 ms apart and in the past, one smoke alarm per `alarm_every`."""
    model = TrafficModel(cfg, seed)
    alarms = n // alarm_every if alarm_every else 0
    start_ms = time.time_ns() // 1_000_000 - n - 60_000
    messages: list[SimMessage] = []
    inserted = 0
    for i, msg in enumerate(model.messages(n - alarms, start_ms, 1000), start=1):
        messages.append(msg)
        if inserted < alarms and i % (alarm_every - 1) == 0:
            messages.append(model.alarm(msg.ts_ms))
            inserted += 1
    names: dict[tuple[str, str], str] = {}
    measurement = []
    for m in messages:
        key = (m.kind, m.channel)
        if key not in names:
            names[key] = measurement_for(m.kind, m.channel)
        measurement.append(names[key])
    ts = np.array([m.ts_ms for m in messages], dtype=np.int64)
    return Workload(messages, measurement, ts, inserted)
