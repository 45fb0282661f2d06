"""Alerts the gateway raises for people: `alerts/trouble`, `alerts/device_offline`, …."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.forward.lineproto import encode_point


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: published on `{root}/{site}/alerts/{type}` and kept in the spool."""

    type: str
    ts_ms: int
    building: str
    kind: str
    device: str
    state: str  # raised | cleared | event
    detail: dict[str, Any] = field(default_factory=dict)

    def payload(self, site: str) -> bytes:
        """The JSON published to MQTT (documented in docs/contract.md)."""
        body = {
            "ts": self.ts_ms,
            "type": self.type,
            "site": site,
            "building": self.building,
            "kind": self.kind,
            "device": self.device,
            "state": self.state,
            **self.detail,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def line(self, site: str) -> str:
        """The `alert` point stored for reports and audits."""
        tags = {
            "site": site,
            "type": self.type,
            "building": self.building,
            "kind": self.kind,
            "device": self.device,
        }
        fields: dict[str, float | int | bool | str] = {"state": self.state}
        for key, value in self.detail.items():
            if isinstance(value, bool | int | float | str):
                fields[key] = value
        return encode_point("alert", tags, fields, self.ts_ms)
