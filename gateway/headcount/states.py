"""Retained `{root}/{site}/state/occupancy/{checkpoint}` payloads: sliding-window numbers.

A checkpoint's payload is handed out only when one of its numbers changed since its last
publication; the engine evaluates at most every `state_min_interval_s` (1 s), so each
checkpoint is published at most once a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.index import HeadcountIndex
from gateway.headcount.windows import Q_CAMERA_IN, Q_CAMERA_OUT, Q_READER_IN, Q_READER_OUT

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]


def people(sums: I64, by_camera: Mask) -> tuple[I64, I64]:
    """People in and out from quantity sums `[quantity, checkpoint]`: the camera's counts
    where the checkpoint counts by camera, the readers' passages elsewhere."""
    return (
        np.where(by_camera, sums[Q_CAMERA_IN], sums[Q_READER_IN]),
        np.where(by_camera, sums[Q_CAMERA_OUT], sums[Q_READER_OUT]),
    )


class StateBoard:
    """The last published payload of every checkpoint."""

    def __init__(self, index: HeadcountIndex) -> None:
        self._index = index
        self._published: I64 | None = None
        self.latest: dict[str, dict[str, Any]] = {}

    def update(self, now_ms: int, windows: list[I64], occupancy: I64,
               uncertain: Mask) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
        """Payloads of the checkpoints whose numbers changed. `windows`: quantity sums of
        the sliding 1 min, 5 min and 1 h windows; `occupancy` per checkpoint (of what it
        leads to); `uncertain` per checkpoint."""
        index = self._index
        columns: list[I64] = []
        for sums in windows:
            columns.extend(people(sums, index.counts_by_camera))
        columns += [occupancy, uncertain.astype(np.int64)]
        table = np.stack(columns, axis=1)
        if self._published is None:
            changed = np.ones(len(table), dtype=bool)
        else:
            changed = (table != self._published).any(axis=1)
        self._published = table
        states = []
        for i in np.flatnonzero(changed).tolist():
            row = table[i].tolist()
            cp = index.checkpoint_ids[i]
            payload: dict[str, Any] = {
                "ts": now_ms,
                "checkpoint": cp,
                "in_1m": row[0],
                "out_1m": row[1],
                "in_5m": row[2],
                "out_5m": row[3],
                "in_1h": row[4],
                "out_1h": row[5],
                "occupancy": row[6],
                "occupancy_of": index.target_ids[int(index.display_target[i])],
                "uncertain": bool(row[7]),
            }
            self.latest[cp] = payload
            states.append((cp, payload))
        return states
