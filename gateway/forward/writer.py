"""What the forwarder writes lines through: a `LineWriter` and the outcome of one write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

WriteStatus = Literal["ok", "retry", "rejected"]
# Statuses that blame the lines themselves; splitting the batch finds the bad ones.
# 401/403/404 (credentials, missing database or bucket) are the operator's to fix and
# would otherwise dead-letter every line: they are retried like an outage.
REJECTING_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result of one write: the forwarder's only signal from the database.

    `retry`: connection error, timeout, 5xx, 429, or a configuration problem (401, 403,
    404) — the same lines can succeed later. `rejected`: the server refused the lines
    (400, 413, 422). `reason` is a short, bounded label for metrics (`http_503`,
    `connect`, `timeout`); `message` is the server's message or the exception text.
    """

    status: WriteStatus
    message: str = ""
    reason: str = ""


OK = WriteOutcome("ok")


def outcome_for_status(status: int, message: str) -> WriteOutcome:
    """Classify a non-success HTTP answer from a database's write endpoint."""
    if status in REJECTING_STATUSES:
        return WriteOutcome("rejected", message, f"http_{status}")
    return WriteOutcome("retry", message, f"http_{status}")


class LineWriter(Protocol):
    """Writes batches of line-protocol lines (millisecond timestamps) to a database."""

    async def write(self, lines: Sequence[str]) -> WriteOutcome:
        """Write all lines; never raises for server or network trouble."""
        ...

    async def aclose(self) -> None:
        """Release connections; the writer is not used afterwards."""
        ...


def make_writer(cfg: GatewayConfig) -> LineWriter | None:
    """The writer `[influx]` asks for; None for `api = "none"` (the spool keeps history)."""
    # Imported here because both writers import WriteOutcome from this module.
    influx = cfg.influx
    if influx.api == "v1":
        from gateway.forward.influx_v1 import InfluxV1Writer

        return InfluxV1Writer(
            url=influx.url,
            database=influx.database,
            retention_policy=influx.retention_policy,
            username=influx.username,
            password=cfg.read_secret(influx.password_file),
            timeout_s=influx.timeout_s,
        )
    if influx.api == "v2":
        from gateway.forward.influx_v2 import InfluxV2Writer

        return InfluxV2Writer(
            url=influx.url,
            org=influx.org,
            bucket=influx.bucket,
            token=cfg.read_secret(influx.token_file),
            timeout_s=influx.timeout_s,
        )
    return None
