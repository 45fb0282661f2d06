"""The notices' audit trail: one record per thing that happened, stored like the fire's.

Records go to the spool's `audit` table (column `incident` = the notice id, never evicted)
and to InfluxDB as `notice` points; at start they rebuild the notices (`NoticeState`). The
stored JSON has the key `notice` where a fire record has `incident`, which is how the
fire runtime tells them apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.fire.actions import checked_record
from gateway.forward.lineproto import encode_point
from gateway.spool import AuditRow

POSTED: Final = "posted"  # who, what, which terminals, which were skipped (fire on them)
COMMAND: Final = "command"  # show/say/clear/stop sent to one terminal
RETRY: Final = "retry"  # the same command sent again
ACK: Final = "ack"  # the terminal answered
GIVEN_UP: Final = "given_up"  # no answer after the retries (or the notice expired first)
PREEMPTED: Final = "preempted"  # a fire message took the terminal over
CLEARED: Final = "cleared"  # an operator took the notice down
KINDS: Final = frozenset({POSTED, COMMAND, RETRY, ACK, GIVEN_UP, PREEMPTED, CLEARED})


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """One event of a notice: who (`by`) did what (`kind`, `data`) when (`ts`, wall ms)."""

    notice: str
    seq: int
    ts: int
    kind: str
    by: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form stored in the spool."""
        return {
            "notice": self.notice,
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "by": self.by,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> NoticeRecord:
        """Parse a stored record; ValueError says which key is wrong."""
        obj = checked_record(obj, "notice", KINDS, "notice record")
        return cls(obj["notice"], obj["seq"], obj["ts"], obj["kind"], obj["by"], obj["data"])

    def line(self, site: str) -> str:
        """The `notice` point for InfluxDB: tags `site, notice, kind, seq`, scalar data."""
        tags = {"site": site, "notice": self.notice, "kind": self.kind, "seq": str(self.seq)}
        fields: dict[str, float | int | bool | str] = {"by": self.by}
        for key, value in self.data.items():
            if isinstance(value, bool | int | float | str) and key != "by":
                fields[key] = value
        if "terminal" in self.data:
            fields["terminal"] = "/".join(self.data["terminal"])
        return encode_point("notice", tags, fields, self.ts)

    def audit_row(self) -> AuditRow:
        """The row for the spool's `audit` table."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
        return AuditRow(self.ts, self.notice, text)


def is_notice_record(obj: Any) -> bool:
    """True for a stored notice record (a fire record has `incident` instead)."""
    return isinstance(obj, dict) and "notice" in obj and "incident" not in obj
