"""What the head-count engine hands back: storage records, state payloads and alerts.

Plain values; the composition root publishes, spools and forwards them. The storage
schema (`checkpoint_flow`, `occupancy`, `occupancy_correction`, `alert`) is in
docs/headcount.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.decode.message import FieldValue
from gateway.forward.lineproto import encode_point

AlertState = Literal["raised", "cleared"]


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One closed window of one checkpoint: measurement `checkpoint_flow`, time = window start."""

    site: str
    checkpoint: str
    window: str
    start_ms: int
    people_in: int
    people_out: int
    granted: int
    denied: int
    camera_in: int
    camera_out: int
    late: int
    early: int
    uncertain: bool

    @property
    def net(self) -> int:
        """People in minus people out."""
        return self.people_in - self.people_out

    def fields(self) -> dict[str, FieldValue]:
        """The stored fields, under their storage names."""
        return {
            "in": self.people_in,
            "out": self.people_out,
            "net": self.net,
            "granted": self.granted,
            "denied": self.denied,
            "camera_in": self.camera_in,
            "camera_out": self.camera_out,
            "late": self.late,
            "early": self.early,
            "uncertain": self.uncertain,
        }

    def line(self) -> str:
        """The line-protocol point."""
        tags = {"site": self.site, "checkpoint": self.checkpoint, "window": self.window}
        return encode_point("checkpoint_flow", tags, self.fields(), self.start_ms)


@dataclass(frozen=True, slots=True)
class OccupancyRecord:
    """A building's (or the site's, `target == "site"`) occupancy sampled at `ts_ms`."""

    site: str
    target: str
    ts_ms: int
    occupancy: int
    clamped: int
    uncertain: bool

    def line(self) -> str:
        """The line-protocol point of measurement `occupancy` (tag `building`)."""
        fields: dict[str, FieldValue] = {
            "occupancy": self.occupancy,
            "clamped": self.clamped,
            "uncertain": self.uncertain,
        }
        return encode_point(
            "occupancy", {"site": self.site, "building": self.target}, fields, self.ts_ms
        )


@dataclass(frozen=True, slots=True)
class OccupancyCorrection:
    """A person set an occupancy by hand: who, when, from what to what."""

    site: str
    target: str
    ts_ms: int
    old: int
    new: int
    by: str

    def line(self) -> str:
        """The audit point of measurement `occupancy_correction`."""
        fields: dict[str, FieldValue] = {"old": self.old, "new": self.new, "by": self.by}
        return encode_point(
            "occupancy_correction",
            {"site": self.site, "building": self.target},
            fields,
            self.ts_ms,
        )


@dataclass(frozen=True, slots=True)
class HeadcountAlert:
    """A crowding or tailgating alert changing state; published on `alerts/{type}`."""

    type: Literal["crowding", "tailgating"]
    state: AlertState
    scope: Literal["checkpoint", "building", "site"]
    target: str
    metric: Literal["inflow_per_min", "occupancy", "tailgating"]
    value: float
    limit: float
    ts_ms: int
    details: dict[str, int | float] = field(default_factory=dict, compare=True)

    def body(self, site: str) -> dict[str, Any]:
        """The alert as a JSON-ready object (docs/headcount.md)."""
        where = "checkpoint" if self.scope == "checkpoint" else "building"
        return {
            "ts": self.ts_ms,
            "type": self.type,
            "site": site,
            "state": self.state,
            "scope": self.scope,
            where: self.target,
            "metric": self.metric,
            "value": self.value,
            "limit": self.limit,
            **self.details,
        }

    def payload(self, site: str) -> bytes:
        """The JSON published on `{root}/{site}/alerts/{type}`."""
        return json.dumps(self.body(site), ensure_ascii=False, separators=(",", ":")).encode()

    def line(self, site: str) -> str:
        """The `alert` point stored for reports and audits."""
        where = "checkpoint" if self.scope == "checkpoint" else "building"
        tags = {"site": site, "type": self.type, where: self.target, "metric": self.metric}
        fields: dict[str, FieldValue] = {
            "state": self.state,
            "value": self.value,
            "limit": self.limit,
            **self.details,
        }
        return encode_point("alert", tags, fields, self.ts_ms)


@dataclass(slots=True)
class HeadcountOutput:
    """Everything one `tick()` produced."""

    flows: list[FlowRecord] = field(default_factory=list)
    occupancy: list[OccupancyRecord] = field(default_factory=list)
    states: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    alerts: list[HeadcountAlert] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Line protocol of the flow and occupancy records (alerts: `HeadcountAlert.line`)."""
        return to_lines([*self.flows, *self.occupancy])


def to_lines(records: Iterable[FlowRecord | OccupancyRecord | OccupancyCorrection]) -> list[str]:
    """Render storage records as InfluxDB line protocol (millisecond timestamps)."""
    return [record.line() for record in records]
