"""Cumulative vendor counters (Hikvision-style `enter`/`exit` since reset) → counts per report.

Per camera, within each batch, reports are taken in timestamp order (ties: arrival
order). A report whose timestamp is not after the camera's last accepted one is stale (a
re-delivery or a duplicate) and is dropped and counted. The first report of a camera is
its baseline: it counts nothing, since the counter's value at the gateway's start says
nothing about when those people passed. After that a report counts `total - previous`;
when either total went down the camera was reset or rebooted, and the new totals
themselves are the increments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
_NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class CounterState:
    """One camera's last accepted report: what the next one is differenced against."""

    ts_ms: int
    in_total: int
    out_total: int


class CameraCounters:
    """Last accepted totals per camera slot, and what happened to the reports."""

    def __init__(self) -> None:
        self._ts: I64 = np.zeros(0, dtype=np.int64)
        self._in: I64 = np.zeros(0, dtype=np.int64)
        self._out: I64 = np.zeros(0, dtype=np.int64)
        self._seen: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.stale = 0
        self.resets = 0
        self.baselines = 0

    def _grow(self, size: int) -> None:
        if size <= len(self._ts):
            return
        size = max(size, 2 * len(self._ts), 16)
        extra = size - len(self._ts)
        self._ts = np.concatenate([self._ts, np.full(extra, _NEVER, dtype=np.int64)])
        self._in = np.concatenate([self._in, np.zeros(extra, dtype=np.int64)])
        self._out = np.concatenate([self._out, np.zeros(extra, dtype=np.int64)])
        self._seen = np.concatenate([self._seen, np.zeros(extra, dtype=bool)])

    def update(
        self, camera: I64, checkpoint: I64, ts_ms: I64, in_total: I64, out_total: I64
    ) -> tuple[I64, I64, I64, I64]:
        """Difference a batch of reports: (checkpoint, ts_ms, in, out) of the counting ones."""
        if len(ts_ms) == 0:
            return checkpoint, ts_ms, in_total, out_total
        self._grow(int(camera.max()) + 1)
        order = np.lexsort((ts_ms, camera))
        cam = camera[order]
        ts = ts_ms[order]
        same_cam = cam[1:] == cam[:-1]
        stale = self._seen[cam] & (ts <= self._ts[cam])
        stale[1:] |= same_cam & (ts[1:] == ts[:-1])
        if stale.any():
            self.stale += int(stale.sum())
            order = order[~stale]
            cam = cam[~stale]
            ts = ts[~stale]
            same_cam = cam[1:] == cam[:-1]
        n = len(ts)
        if n == 0:
            return ts, ts, ts, ts
        cp = checkpoint[order]
        vin = in_total[order]
        vout = out_total[order]
        first = np.ones(n, dtype=bool)
        first[1:] = ~same_cam
        prev_in = np.empty(n, dtype=np.int64)
        prev_out = np.empty(n, dtype=np.int64)
        prev_in[1:] = vin[:-1]
        prev_out[1:] = vout[:-1]
        first_cam = cam[first]
        prev_in[first] = self._in[first_cam]
        prev_out[first] = self._out[first_cam]
        counting = ~first
        counting[first] = self._seen[first_cam]
        reset = counting & ((vin < prev_in) | (vout < prev_out))
        d_in = np.where(reset, vin, vin - prev_in)
        d_out = np.where(reset, vout, vout - prev_out)
        last = np.ones(n, dtype=bool)
        last[:-1] = ~same_cam
        last_cam = cam[last]
        self._ts[last_cam] = ts[last]
        self._in[last_cam] = vin[last]
        self._out[last_cam] = vout[last]
        self._seen[last_cam] = True
        self.resets += int(reset.sum())
        self.baselines += n - int(counting.sum())
        return cp[counting], ts[counting], d_in[counting], d_out[counting]

    def state(self, slot: int) -> CounterState | None:
        """The camera's last accepted report, or None before its baseline."""
        if slot >= len(self._seen) or not self._seen[slot]:
            return None
        return CounterState(int(self._ts[slot]), int(self._in[slot]), int(self._out[slot]))

    def restore(self, slot: int, state: CounterState) -> None:
        """Take a saved last report (e.g. across a gateway restart) as the camera's baseline."""
        self._grow(slot + 1)
        self._ts[slot] = state.ts_ms
        self._in[slot] = state.in_total
        self._out[slot] = state.out_total
        self._seen[slot] = True
