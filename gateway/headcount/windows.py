"""Ring buffers of per-checkpoint counts by time bucket, and the windows closed from them.

`counts[quantity, slot, checkpoint]` holds bucket `b` in slot `b % n_ring` (checkpoints
innermost: adding a batch and summing a window walk contiguous memory). Buckets before
`emitted` are closed (their windows written); buckets up to `head` are open for counting.
The ring is long enough for an hour window plus the lateness and the future tolerance,
so a slot is reused only after every window reading it has been closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.settings import WINDOWS_S

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]

Q_GRANTED: Final = 0
Q_DENIED: Final = 1
Q_READER_IN: Final = 2
Q_READER_OUT: Final = 3
Q_READER_ANY: Final = 4  # passages whose reader gave no direction
Q_CAMERA_IN: Final = 5
Q_CAMERA_OUT: Final = 6
Q_LATE: Final = 7
Q_EARLY: Final = 8
NQ: Final = 9


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """Sums of one window over every checkpoint, ready to become records."""

    window: str
    start_bucket: int
    sums: I64  # [NQ, n_checkpoints]
    uncertain: Mask  # [n_checkpoints]


class FlowRing:
    """Per-checkpoint bucket counts for the last hour (and the open buckets beyond)."""

    def __init__(
        self, n_checkpoints: int, bucket_ms: int, lateness_ms: int, future_ms: int, now_ms: int
    ) -> None:
        self.bucket_ms = bucket_ms
        self.lateness_ms = lateness_ms
        self.future_ms = future_ms
        self.windows: tuple[tuple[str, int], ...] = tuple(
            (name, seconds * 1000 // bucket_ms) for name, seconds in WINDOWS_S.items()
        )
        self.hour_b = WINDOWS_S["1h"] * 1000 // bucket_ms
        late_b = -(-lateness_ms // bucket_ms)
        future_b = -(-future_ms // bucket_ms)
        self.n_ring = self.hour_b + late_b + future_b + 3
        self.counts: I64 = np.zeros((NQ, self.n_ring, n_checkpoints), dtype=np.int64)
        self.uncertain: Mask = np.zeros((self.n_ring, n_checkpoints), dtype=bool)
        self.emitted = self.open_bucket(now_ms)
        self.head = self.head_bucket(now_ms)
        self.skipped_windows = 0
        # Buckets before the start were not observed: their windows are uncertain.
        first = self.head - self.n_ring + 1
        now_b = now_ms // bucket_ms
        if now_b > first:
            self.uncertain[self._slots(first, now_b - 1)] = True

    def open_bucket(self, now_ms: int) -> int:
        """The oldest bucket still open at `now_ms`: older ones are past the lateness."""
        return (now_ms - self.lateness_ms) // self.bucket_ms

    def head_bucket(self, now_ms: int) -> int:
        """The newest bucket a row may count in at `now_ms` (later: the clock is ahead)."""
        return (now_ms + self.future_ms) // self.bucket_ms

    def _slots(self, first: int, last: int) -> NDArray[np.intp]:
        return np.arange(first, last + 1, dtype=np.intp) % self.n_ring

    def advance(self, now_ms: int, offline: Mask) -> list[ClosedWindow]:
        """Close the buckets past the lateness, open those up to the future tolerance;
        the windows closed.

        New buckets are uncertain for checkpoints with a device offline (`offline`). After
        a silence longer than the ring (the gateway was suspended), every window holding
        data is still closed, and the empty windows of the silence are skipped and counted.
        """
        open_b = self.open_bucket(now_ms)
        head_b = self.head_bucket(now_ms)
        closed: list[ClosedWindow] = []
        if open_b - self.emitted > self.n_ring + self.hour_b:
            data_end = -(-(self.head + 1) // self.hour_b) * self.hour_b
            self._close_until(data_end, offline, closed)
            resume = open_b // self.hour_b * self.hour_b
            if resume > self.emitted:
                self.skipped_windows += sum(
                    (resume - self.emitted) // width for _, width in self.windows
                )
                self.counts[:] = 0
                self.uncertain[:] = offline
                self.emitted = resume
                self.head = resume - 1
        self._close_until(open_b, offline, closed)
        if head_b > self.head:
            self._extend(head_b, offline)
        return closed

    def _extend(self, head_b: int, offline: Mask) -> None:
        first = max(self.head + 1, head_b - self.n_ring + 1)
        slots = self._slots(first, head_b)
        self.counts[:, slots] = 0
        self.uncertain[slots] = offline
        self.head = head_b

    def _close_until(self, end_b: int, offline: Mask, closed: list[ClosedWindow]) -> None:
        while self.emitted < end_b:
            b = self.emitted
            if b > self.head:
                self._extend(b, offline)
            for name, width in self.windows:
                if (b + 1) % width == 0:
                    sums, uncertain = self.range_sum(b + 1 - width, b)
                    closed.append(ClosedWindow(name, b + 1 - width, sums, uncertain))
            self.emitted = b + 1

    def range_sum(self, first: int, last: int) -> tuple[I64, Mask]:
        """Sums of buckets `first..last` per checkpoint, and whether any was uncertain."""
        s0 = first % self.n_ring
        s1 = last % self.n_ring
        sums: I64
        unc: Mask
        if s0 <= s1:
            sums = self.counts[:, s0 : s1 + 1].sum(axis=1)
            unc = np.logical_or.reduce(self.uncertain[s0 : s1 + 1], axis=0)
        else:
            sums = self.counts[:, s0:].sum(axis=1) + self.counts[:, : s1 + 1].sum(axis=1)
            unc = np.logical_or.reduce(self.uncertain[s0:], axis=0)
            unc |= np.logical_or.reduce(self.uncertain[: s1 + 1], axis=0)
        return sums, unc

    def add_block(self, first_b: int, block: I64) -> None:
        """Add `block[quantity, j, checkpoint]` to buckets `first_b + j` (all open)."""
        span = block.shape[1]
        if span == 0:
            return
        s0 = first_b % self.n_ring
        if s0 + span <= self.n_ring:
            self.counts[:, s0 : s0 + span] += block
        else:
            self.counts[:, self._slots(first_b, first_b + span - 1)] += block

    def add_column(self, bucket: int, quantity: int, values: I64) -> None:
        """Add per-checkpoint `values` to one quantity of one open bucket."""
        self.counts[quantity, bucket % self.n_ring] += values

    def mark(self, checkpoints: list[int], first_b: int, last_b: int, value: bool) -> None:
        """Set or clear `uncertain` on buckets `first_b..last_b` (clipped to the ring)."""
        first_b = max(first_b, self.head - self.n_ring + 1)
        last_b = min(last_b, self.head)
        if first_b > last_b or not checkpoints:
            return
        rows = np.asarray(checkpoints, dtype=np.intp)
        self.uncertain[np.ix_(self._slots(first_b, last_b), rows)] = value
