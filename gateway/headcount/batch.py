"""A micro-batch of decoded messages as the columnar arrays the head-count kernels count.

Three kinds of rows, each a set of equal-length int64 arrays:
- swipes: access `swipe` and `passage` events as (checkpoint, ts_ms, code), where
  `code = passage_class * 3 + auth_class` (see `swipe_code`);
- counts: people crossing a line in a period, (checkpoint, ts_ms, in, out), `ts_ms` the end
  of the period: camera `line_crossing` in period mode and the gateway's vision crossings;
- cumulative: camera counters since the camera's last reset, (camera slot, checkpoint,
  ts_ms, in, out); the engine turns them into counts per camera.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gateway.decode.message import DeviceMessage
from gateway.headcount.index import HeadcountIndex

I64 = NDArray[np.int64]

# Passage classes: the event moves a person through the checkpoint (the profile's
# `passage_event`, granted), in which direction.
PASS_NONE: Final = 0
PASS_IN: Final = 1
PASS_OUT: Final = 2
PASS_NODIR: Final = 3
# Authorization classes: only `swipe` events are authorizations.
AUTH_NONE: Final = 0
AUTH_GRANTED: Final = 1
AUTH_DENIED: Final = 2
N_CODES: Final = 12
_DIR_CLASS: Final = {"in": PASS_IN, "out": PASS_OUT}


def swipe_code(passage_class: int, auth_class: int) -> int:
    """The code of a swipe row: what it counts as (0 = nothing, never a row)."""
    return passage_class * 3 + auth_class


def _i64(values: ArrayLike) -> I64:
    return np.ascontiguousarray(values, dtype=np.int64).reshape(-1)


_EMPTY: Final = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False  # shared default of every field: nobody may write into it


def _empty() -> I64:
    return _EMPTY


@dataclass(slots=True)
class HeadcountBatch:
    """The rows of one micro-batch, plus what was left out and why."""

    swipe_checkpoint: I64 = field(default_factory=_empty)
    swipe_ts_ms: I64 = field(default_factory=_empty)
    swipe_code: I64 = field(default_factory=_empty)
    count_checkpoint: I64 = field(default_factory=_empty)
    count_ts_ms: I64 = field(default_factory=_empty)
    count_in: I64 = field(default_factory=_empty)
    count_out: I64 = field(default_factory=_empty)
    cumulative_camera: I64 = field(default_factory=_empty)
    cumulative_checkpoint: I64 = field(default_factory=_empty)
    cumulative_ts_ms: I64 = field(default_factory=_empty)
    cumulative_in: I64 = field(default_factory=_empty)
    cumulative_out: I64 = field(default_factory=_empty)
    retransmissions: int = 0
    unknown_checkpoint: int = 0
    no_checkpoint: int = 0
    cameras_over_limit: int = 0
    # Set by build_batch, whose indices come from the index itself: the engine skips the
    # range checks it makes on arrays from anywhere else.
    trusted: bool = False

    def __len__(self) -> int:
        """Rows in the batch (swipes + counts + cumulative reports)."""
        return len(self.swipe_ts_ms) + len(self.count_ts_ms) + len(self.cumulative_ts_ms)

    @classmethod
    def swipes(cls, checkpoint: ArrayLike, ts_ms: ArrayLike, code: ArrayLike) -> HeadcountBatch:
        """A batch of swipe rows only."""
        return cls(
            swipe_checkpoint=_i64(checkpoint), swipe_ts_ms=_i64(ts_ms), swipe_code=_i64(code)
        )

    @classmethod
    def counts(
        cls, checkpoint: ArrayLike, ts_ms: ArrayLike, n_in: ArrayLike, n_out: ArrayLike
    ) -> HeadcountBatch:
        """A batch of period counts only (camera line crossings, vision crossings)."""
        return cls(
            count_checkpoint=_i64(checkpoint),
            count_ts_ms=_i64(ts_ms),
            count_in=_i64(n_in),
            count_out=_i64(n_out),
        )

    @classmethod
    def crossings(cls, rows: Sequence[tuple[int, int, int, int]]) -> HeadcountBatch:
        """Period counts from (checkpoint index, ts_ms, in, out) tuples, e.g. vision output."""
        if not rows:
            return cls()
        table = np.array(rows, dtype=np.int64).reshape(-1, 4)
        return cls.counts(table[:, 0], table[:, 1], table[:, 2], table[:, 3])

    @classmethod
    def cumulative(
        cls,
        camera: ArrayLike,
        checkpoint: ArrayLike,
        ts_ms: ArrayLike,
        in_total: ArrayLike,
        out_total: ArrayLike,
    ) -> HeadcountBatch:
        """A batch of cumulative counter reports only (retransmissions already left out)."""
        return cls(
            cumulative_camera=_i64(camera),
            cumulative_checkpoint=_i64(checkpoint),
            cumulative_ts_ms=_i64(ts_ms),
            cumulative_in=_i64(in_total),
            cumulative_out=_i64(out_total),
        )


def build_batch(messages: Iterable[DeviceMessage], index: HeadcountIndex) -> HeadcountBatch:
    """Pick the head-count rows out of a micro-batch of decoded messages, in one pass.

    Counted, not silently lost: swipes without a checkpoint tag (door and reader unknown
    to the site model), rows naming a checkpoint the site model lacks, retransmitted
    cumulative reports (the next live total covers them).
    """
    cps = index.checkpoint_index
    camera_slot = index.camera_slot
    s_cp: list[int] = []
    s_ts: list[int] = []
    s_code: list[int] = []
    c_cp: list[int] = []
    c_ts: list[int] = []
    c_in: list[Any] = []
    c_out: list[Any] = []
    u_cam: list[int] = []
    u_cp: list[int] = []
    u_ts: list[int] = []
    u_in: list[Any] = []
    u_out: list[Any] = []
    retrans = unknown = no_cp = over = 0
    for m in messages:
        event = m.event
        if event is None:
            continue
        kind = m.topic.kind
        if kind == "access":
            if event == "swipe":
                auth = AUTH_GRANTED if m.fields.get("granted") is True else AUTH_DENIED
            elif event == "passage":
                auth = AUTH_NONE
            else:
                continue
            tags = m.tags
            code = auth
            if m.fields.get("passage") is True:
                code += 3 * _DIR_CLASS.get(tags.get("dir", ""), PASS_NODIR)
            if code == 0:
                continue
            cp_id = tags.get("checkpoint")
            if cp_id is None:
                no_cp += 1
                continue
            i = cps.get(cp_id)
            if i is None:
                unknown += 1
                continue
            s_cp.append(i)
            s_ts.append(m.ts_ms)
            s_code.append(code)
        elif kind == "camera" and event == "line_crossing":
            fields = m.fields
            i = cps.get(m.tags.get("checkpoint", ""))
            if i is None:
                unknown += 1
                continue
            if fields.get("cumulative") is True:
                if fields.get("retransmission") is True:
                    retrans += 1
                    continue
                slot = camera_slot(m.topic.device)
                if slot < 0:
                    over += 1
                    continue
                u_cam.append(slot)
                u_cp.append(i)
                u_ts.append(m.ts_ms)
                u_in.append(fields.get("in", 0))
                u_out.append(fields.get("out", 0))
            else:
                c_cp.append(i)
                c_ts.append(m.ts_ms)
                c_in.append(fields.get("in", 0))
                c_out.append(fields.get("out", 0))
    batch = HeadcountBatch(
        retransmissions=retrans,
        unknown_checkpoint=unknown,
        no_checkpoint=no_cp,
        cameras_over_limit=over,
        trusted=True,
    )
    if s_ts:
        batch.swipe_checkpoint = np.array(s_cp, dtype=np.int64)
        batch.swipe_ts_ms = np.array(s_ts, dtype=np.int64)
        batch.swipe_code = np.array(s_code, dtype=np.int64)
    if c_ts:
        batch.count_checkpoint = np.array(c_cp, dtype=np.int64)
        batch.count_ts_ms = np.array(c_ts, dtype=np.int64)
        batch.count_in = np.array(c_in, dtype=np.int64)
        batch.count_out = np.array(c_out, dtype=np.int64)
    if u_ts:
        batch.cumulative_camera = np.array(u_cam, dtype=np.int64)
        batch.cumulative_checkpoint = np.array(u_cp, dtype=np.int64)
        batch.cumulative_ts_ms = np.array(u_ts, dtype=np.int64)
        batch.cumulative_in = np.array(u_in, dtype=np.int64)
        batch.cumulative_out = np.array(u_out, dtype=np.int64)
    return batch
