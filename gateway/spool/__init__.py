"""The durable spool: SQLite (WAL) outbox for the forwarder and embedded history store."""

from gateway.spool.history import HISTORY_MEASUREMENTS
from gateway.spool.records import (
    DEAD_LETTER_PAYLOAD_MAX,
    AuditRow,
    CommitResult,
    DeadLetter,
    OutboxRow,
    SpoolRow,
    SpoolStats,
    StoredDeadLetter,
)
from gateway.spool.schema import SCHEMA_VERSION
from gateway.spool.store import MAX_DEAD_LETTERS, Spool

__all__ = [
    "DEAD_LETTER_PAYLOAD_MAX",
    "HISTORY_MEASUREMENTS",
    "MAX_DEAD_LETTERS",
    "SCHEMA_VERSION",
    "AuditRow",
    "CommitResult",
    "DeadLetter",
    "OutboxRow",
    "Spool",
    "SpoolRow",
    "SpoolStats",
    "StoredDeadLetter",
]
