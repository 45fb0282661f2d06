"""Forwarding: line protocol encoding, database writers and the spool-draining forwarder.

The concrete writers live in `gateway.forward.influx_v1` / `influx_v2` and are built by
`make_writer`; they are not imported here, so the hot path's `lineproto` stays cheap to
import (the InfluxDB client library takes half a second).
"""

from gateway.forward.forwarder import Forwarder, ForwarderStats, OutboxRowLike, SpoolLike
from gateway.forward.lineproto import encode_point, measurement_for, message_line
from gateway.forward.writer import LineWriter, WriteOutcome, make_writer

__all__ = [
    "Forwarder",
    "ForwarderStats",
    "LineWriter",
    "OutboxRowLike",
    "SpoolLike",
    "WriteOutcome",
    "encode_point",
    "make_writer",
    "measurement_for",
    "message_line",
]
