"""The counting kernels: index arrays in, per-checkpoint per-bucket counts out.

One flat key per row, `(code * span + bucket - first) * n_checkpoints + checkpoint`, and
one `np.bincount` over it; the key space covers only the buckets the batch touches, so a
micro-batch costs a few passes over its rows whatever the ring's size. Codes outermost:
each code's counts come out as a contiguous [bucket, checkpoint] plane, and the
quantities are sums of whole planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.batch import N_CODES
from gateway.headcount.windows import (
    NQ,
    Q_CAMERA_IN,
    Q_CAMERA_OUT,
    Q_DENIED,
    Q_GRANTED,
    Q_READER_ANY,
    Q_READER_IN,
)

I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Counted:
    """A batch's counts: `block[quantity, j, checkpoint]` for bucket `first_b + j`.

    With `late` set, `block[:, 0]` holds the late rows (not bucket `first_b`): they count
    for occupancy but in no window. `late`/`early`: rows per checkpoint.
    """

    first_b: int
    block: I64
    late: I64 | None
    early: I64 | None


def _place(
    bucket: I64, checkpoint: I64, n_cp: int, first_open: int, last_open: int, place_b: int
) -> tuple[int, int, I64 | None, I64 | None]:
    """Rows past the open buckets go to `place_b` (early: the device clock is ahead), rows
    before them to a pseudo-bucket below every other row (late), which becomes index 0 of
    the block. Modifies `bucket` in place."""
    lo = int(bucket.min())
    hi = int(bucket.max())
    late = early = None
    if hi > last_open:
        mask = bucket > last_open
        bucket[mask] = place_b
        early = np.bincount(checkpoint[mask], minlength=n_cp)
    if lo < first_open:
        mask = bucket < first_open
        late = np.bincount(checkpoint[mask], minlength=n_cp)
        # The pseudo-bucket sits just below the lowest placed row, so the batch's key
        # space stays as narrow as its open rows (it is not an open bucket's slot).
        placed = bucket[~mask]
        bucket[mask] = (int(placed.min()) if len(placed) else first_open) - 1
    if late is not None or early is not None:
        lo = int(bucket.min())
        hi = int(bucket.max())
    return lo, hi, late, early


def count_swipes(checkpoint: I64, ts_ms: I64, code: I64, n_cp: int, bucket_ms: int,
                 first_open: int, last_open: int, place_b: int) -> Counted:  # fmt: skip
    """Count swipe rows by checkpoint, bucket (of `ts_ms`) and code."""
    bucket = ts_ms // bucket_ms
    lo, hi, late, early = _place(bucket, checkpoint, n_cp, first_open, last_open, place_b)
    span = hi - lo + 1
    plane = span * n_cp
    key = bucket
    key -= lo
    key *= n_cp
    key += checkpoint
    key += code * plane
    counts = np.bincount(key, minlength=N_CODES * plane).reshape(4, 3, span, n_cp)
    block = np.zeros((NQ, span, n_cp), dtype=np.int64)
    np.add.reduce(counts[:, 1:], axis=0, out=block[Q_GRANTED : Q_DENIED + 1])  # auth class
    np.add.reduce(counts[1:], axis=1, out=block[Q_READER_IN : Q_READER_ANY + 1])  # passage
    return Counted(lo, block, late, early)


def count_crossings(checkpoint: I64, ts_ms: I64, n_in: I64, n_out: I64, n_cp: int,
                    bucket_ms: int, first_open: int, last_open: int,
                    place_b: int) -> Counted:  # fmt: skip
    """Sum period counts by checkpoint and bucket; a period ending at `ts_ms` is counted in
    the bucket holding `ts_ms - 1` (a report at 08:01:00.000 covers the minute before)."""
    bucket = ts_ms - 1
    bucket //= bucket_ms
    lo, hi, late, early = _place(bucket, checkpoint, n_cp, first_open, last_open, place_b)
    span = hi - lo + 1
    key = bucket
    key -= lo
    key *= n_cp
    key += checkpoint
    size = span * n_cp
    # float64 weights: exact for sums below 2**53 people.
    block = np.zeros((NQ, span, n_cp), dtype=np.int64)
    block[Q_CAMERA_IN] = np.bincount(key, weights=n_in, minlength=size).reshape(span, n_cp)
    block[Q_CAMERA_OUT] = np.bincount(key, weights=n_out, minlength=size).reshape(span, n_cp)
    return Counted(lo, block, late, early)
