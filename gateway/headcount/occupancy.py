"""Occupancy per building and per site: running net flows, clamped at 0, reset daily.

Updated once per micro-batch with the batch's net flow per target, then clamped: a level
that would go negative becomes 0, and the clamp is counted (how often, how many people).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.errors import HeadcountError
from gateway.headcount.index import HeadcountIndex
from gateway.headcount.records import OccupancyCorrection, OccupancyRecord
from gateway.headcount.settings import HeadcountSettings

I64 = NDArray[np.int64]


def next_reset_ms(after_ms: int, zone: ZoneInfo, hour: int, minute: int) -> int:
    """The first local `hour:minute` strictly after `after_ms` (milliseconds, UTC)."""
    local = datetime.fromtimestamp(after_ms / 1000, zone)
    day = local.date()
    while True:
        candidate = datetime.combine(day, time(hour, minute), tzinfo=zone)
        ms = int(candidate.timestamp()) * 1000
        if ms > after_ms:
            return ms
        day += timedelta(days=1)


class Occupancy:
    """Levels, clamps, daily reset and corrections of every occupancy target."""

    def __init__(
        self, index: HeadcountIndex, settings: HeadcountSettings, site_id: str, now_ms: int
    ) -> None:
        self._index = index
        self._site = site_id
        n = index.n_targets
        self.level: I64 = np.zeros(n, dtype=np.int64)
        # (target, checkpoint) pairs: a sparse form of the target matrix for `apply`.
        self._pairs = np.nonzero(index.target_matrix)
        self.clamps: I64 = np.zeros(n, dtype=np.int64)
        self.clamped_people: I64 = np.zeros(n, dtype=np.int64)
        self._clamps_reported: I64 = np.zeros(n, dtype=np.int64)
        self.uncertain: NDArray[np.bool_] = np.zeros(n, dtype=bool)
        self.resets = 0
        self._zone = ZoneInfo(settings.timezone)
        self._reset_at = settings.reset_time()
        self._next_reset: int | None = None
        if self._reset_at is not None:
            self._next_reset = next_reset_ms(now_ms, self._zone, *self._reset_at)
        self._interval_ms = settings.occupancy_interval_s * 1000
        self._sampled = now_ms // self._interval_ms

    def apply(self, net: I64) -> None:
        """Add one batch's net flow per checkpoint; clamp what would go below 0."""
        level = self.level
        pairs_target, pairs_cp = self._pairs
        delta = np.bincount(pairs_target, weights=net[pairs_cp], minlength=len(level))
        level += delta.astype(np.int64)
        negative = level < 0
        if negative.any():
            self.clamps[negative] += 1
            self.clamped_people[negative] -= level[negative]
            level[negative] = 0

    def advance(self, now_ms: int, offline: NDArray[np.bool_]) -> list[OccupancyRecord]:
        """Reset when the daily reset time has passed; sample when an interval has ended.

        `offline[checkpoint]`: the checkpoint has a device offline now.
        """
        if self._next_reset is not None and now_ms >= self._next_reset:
            self.level[:] = 0
            self.resets += 1
            self.uncertain[:] = self._fed_by(offline)
            assert self._reset_at is not None
            self._next_reset = next_reset_ms(now_ms, self._zone, *self._reset_at)
        sample = now_ms // self._interval_ms
        if sample <= self._sampled:
            return []
        self._sampled = sample
        ts = sample * self._interval_ms
        clamped = self.clamps - self._clamps_reported
        self._clamps_reported = self.clamps.copy()
        return [
            OccupancyRecord(
                self._site, target, ts, int(self.level[i]), int(clamped[i]), bool(self.uncertain[i])
            )
            for i, target in enumerate(self._index.target_ids)
        ]

    def _fed_by(self, checkpoints: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Targets changed by any of the flagged checkpoints."""
        result: NDArray[np.bool_] = (self._index.target_matrix[:, checkpoints] != 0).any(axis=1)
        return result

    def mark_uncertain(self, checkpoints: NDArray[np.bool_]) -> None:
        """A device of these checkpoints went offline: their targets may now be off."""
        self.uncertain |= self._fed_by(checkpoints)

    def correct(
        self, target: str, value: int, by: str, now_ms: int, offline: NDArray[np.bool_]
    ) -> OccupancyCorrection:
        """Set a target's occupancy by hand (the API's manual correction)."""
        i = self._index.target(target)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise HeadcountError(
                f"occupancy of {target!r}: {value!r} is not a whole number of people >= 0"
            )
        if not isinstance(by, str) or not by.strip():
            raise HeadcountError(f"occupancy of {target!r}: say who corrects it ('by')")
        old = int(self.level[i])
        self.level[i] = int(value)
        self.uncertain[i] = bool(self._fed_by(offline)[i])
        return OccupancyCorrection(self._site, target, now_ms, old, int(value), by.strip())
