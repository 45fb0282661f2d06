"""What the fire engine returns: values the composition root publishes, delivers and stores.

The engine never talks to MQTT, webhooks or the spool itself; it returns these, in the
order they should happen (commands before alerts, so linkage is never behind paperwork).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from gateway.devices.alerts import Alert
from gateway.forward.lineproto import encode_point

# Audit record kinds (docs/fire.md has the data of each).
OPENED: Final = "opened"
SOURCE: Final = "source"
CLEAR: Final = "clear"
STATE: Final = "state"
DISPATCH: Final = "dispatch"
ESCALATION: Final = "escalation"
COMMAND: Final = "command"
RETRY: Final = "retry"
ACK: Final = "ack"
COMMAND_FAILED: Final = "command_failed"
DOORS_HELD: Final = "doors_held"
DOORS_FREED: Final = "doors_freed"
DOOR_CONFIRMED: Final = "door_confirmed"
DOOR_UNCONFIRMED: Final = "door_unconfirmed"
NOTE: Final = "note"
AUDIT_KINDS: Final = frozenset(
    {OPENED, SOURCE, CLEAR, STATE, DISPATCH, ESCALATION, COMMAND, RETRY, ACK,
     COMMAND_FAILED, DOORS_HELD, DOORS_FREED, DOOR_CONFIRMED, DOOR_UNCONFIRMED, NOTE}
)  # fmt: skip


def checked_record(obj: Any, id_key: str, kinds: frozenset[str], what: str) -> dict[str, Any]:
    """A stored record's dict (`{id_key, seq, ts, kind, by, data}`) with every key of the
    right type and a known kind; ValueError says which key is wrong. Shared by the fire
    engine's and the notices' audit records."""
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be an object, got {type(obj).__name__}")
    types = {id_key: str, "seq": int, "ts": int, "kind": str, "by": str, "data": dict}
    for key, want in types.items():
        value = obj.get(key)
        if not isinstance(value, want) or isinstance(value, bool):
            raise ValueError(f"{what} key {key!r}: expected {want.__name__}")
    if obj["kind"] not in kinds:
        raise ValueError(f"{what} kind {obj['kind']!r} is unknown")
    return obj


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event of an incident's timeline: who (`by`) did what (`kind`, `data`) when (`ts`).

    The engine's state is rebuilt from these alone (`FireEngine.restore`), so every record
    that changes state carries what the change needs. `seq` orders records of one incident.
    """

    incident: str
    seq: int
    ts: int
    kind: str
    by: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form stored in the spool."""
        return {
            "incident": self.incident,
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "by": self.by,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> AuditRecord:
        """Parse a stored record; ValueError says which key is wrong."""
        obj = checked_record(obj, "incident", AUDIT_KINDS, "audit record")
        return cls(obj["incident"], obj["seq"], obj["ts"], obj["kind"], obj["by"], obj["data"])

    def line(self, site: str) -> str:
        """The `incident` point for InfluxDB: one per record, scalar data as fields.

        `seq` is a tag: records of one incident made in the same millisecond stay apart
        (a point with the same series and time would overwrite the earlier one).
        """
        tags = {"site": site, "incident": self.incident, "kind": self.kind, "seq": str(self.seq)}
        fields: dict[str, float | int | bool | str] = {"by": self.by}
        for key, value in self.data.items():
            if isinstance(value, bool | int | float | str) and key != "by":
                fields[key] = value
        return encode_point("incident", tags, fields, self.ts)


@dataclass(frozen=True, slots=True)
class Publish:
    """An MQTT message: a command to a device or a fire alert.

    `needs_audio`: a `say` command to a terminal that cannot synthesize speech; the
    publisher attaches `audio` (base64 WAV of `payload["text"]`) before sending.
    """

    topic: str
    payload: dict[str, Any]
    qos: int = 1
    retain: bool = False
    needs_audio: bool = False


@dataclass(frozen=True, slots=True)
class Notify:
    """A message for a fire team's channels (webhooks): who, at which tier, and why."""

    team: str
    tier: int
    reason: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Audit:
    """A record to store durably (spool, InfluxDB) and feed back to `restore` after a restart."""

    record: AuditRecord


@dataclass(frozen=True, slots=True)
class Trouble:
    """A trouble alert (`alerts/trouble`): e.g. a door that did not confirm its release."""

    alert: Alert


Action = Publish | Notify | Audit | Trouble
