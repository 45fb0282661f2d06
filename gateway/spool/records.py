"""The values that go in and out of the spool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

DEAD_LETTER_PAYLOAD_MAX: Final = 4096  # bytes kept per dead letter: enough to diagnose


class OutboxRow(NamedTuple):
    """A row waiting to be forwarded."""

    id: int
    cls: int
    received_ms: int
    line: str


class SpoolRow(NamedTuple):
    """What the pipeline commits: one line-protocol point and its priority class."""

    cls: int  # gateway.decode.message.SpoolClass: 0 telemetry (evictable), 1 event, 2 alarm
    ts_ms: int  # point time
    received_ms: int  # gateway receive time (for age and lag)
    line: str  # InfluxDB line protocol


class AuditRow(NamedTuple):
    """One fire-engine audit record (never evicted; replayed at start to rebuild incidents)."""

    ts_ms: int
    incident: str
    record: str  # JSON of gateway.fire.AuditRecord


class DeadLetter(NamedTuple):
    """Input the gateway could not use, kept for diagnosis."""

    received_ms: int
    topic: str
    payload: bytes
    reason: str
    stage: str  # "topic" | "decode" | "forward" | ...


class StoredDeadLetter(NamedTuple):
    """A dead letter as read back; payloads over DEAD_LETTER_PAYLOAD_MAX bytes are truncated."""

    id: int
    received_ms: int
    stage: str
    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class CommitResult:
    """What one `commit_batch` stored, dead-lettered and evicted."""

    rows: int
    dead: int
    evicted: int


@dataclass(frozen=True)
class SpoolStats:
    """A snapshot of the spool; the `*_total` counters survive restarts.

    `bytes` is the UTF-8 size of the outbox lines, `history_bytes` that of the history's
    (`max_bytes` bounds their sum), not the file size.
    """

    rows: int
    bytes: int
    rows_by_class: dict[int, int]
    oldest_received_ms: int | None
    evicted_total: int
    dead_letters_total: int
    forwarded_total: int
    pruned_total: int = 0  # telemetry dropped by `prune` (older than max_age_h)
    dead_letters: int = 0  # dead letters stored now (at most MAX_DEAD_LETTERS)
    dead_letters_evicted_total: int = 0  # oldest dead letters dropped to respect that bound
    history_rows: int = 0  # forwarded points kept for reports (gateway.spool.history)
    history_bytes: int = 0
    history_evicted_total: int = 0  # history dropped for max_bytes or a full disk


def clip_dead_letter(dead: DeadLetter) -> DeadLetter:
    """Keep at most DEAD_LETTER_PAYLOAD_MAX bytes of a payload, saying so in the reason."""
    if len(dead.payload) <= DEAD_LETTER_PAYLOAD_MAX:
        return dead
    kept = DEAD_LETTER_PAYLOAD_MAX
    reason = f"{dead.reason} [payload truncated: {len(dead.payload)} bytes, first {kept} kept]"
    return dead._replace(payload=bytes(dead.payload[:kept]), reason=reason)
