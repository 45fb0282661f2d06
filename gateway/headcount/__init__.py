"""Head-count at checkpoints: vectorized flows, occupancy, crowding and tailgating.

See docs/headcount.md. The composition root builds one `HeadcountEngine`, feeds it
`build_batch(messages, engine.index)` per micro-batch and publishes what `tick()` returns.
"""

from gateway.headcount.batch import HeadcountBatch, build_batch, swipe_code
from gateway.headcount.counters import CounterState
from gateway.headcount.engine import HeadcountEngine, HeadcountStats
from gateway.headcount.errors import HeadcountError
from gateway.headcount.index import SITE, HeadcountIndex
from gateway.headcount.records import (
    FlowRecord,
    HeadcountAlert,
    HeadcountOutput,
    OccupancyCorrection,
    OccupancyRecord,
    to_lines,
)
from gateway.headcount.settings import HeadcountSettings

__all__ = [
    "SITE",
    "CounterState",
    "FlowRecord",
    "HeadcountAlert",
    "HeadcountBatch",
    "HeadcountEngine",
    "HeadcountError",
    "HeadcountIndex",
    "HeadcountOutput",
    "HeadcountSettings",
    "HeadcountStats",
    "OccupancyCorrection",
    "OccupancyRecord",
    "build_batch",
    "swipe_code",
    "to_lines",
]
