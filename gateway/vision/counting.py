"""Counting line: track movements that cross a camera's line, with direction in or out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gateway.vision.tracker import TrackUpdate


@dataclass(frozen=True, slots=True)
class LineCount:
    """Crossings counted in one frame."""

    n_in: int
    n_out: int
    track_ids_in: tuple[int, ...] = ()
    track_ids_out: tuple[int, ...] = ()


class CountingLine:
    """A segment `a → b` in frame-relative coordinates (0..1); `inside` is a point on the
    "in" side. A track whose centroid moves across the segment toward `inside` is one `in`.
    """

    def __init__(
        self,
        a: tuple[float, float],
        b: tuple[float, float],
        inside: tuple[float, float],
    ) -> None:
        self.a = np.asarray(a, np.float64)
        self.b = np.asarray(b, np.float64)
        if np.allclose(self.a, self.b):
            raise ValueError(f"counting line {a} → {b} has zero length")
        in_side = self._side(np.asarray([inside], np.float64))[0]
        if in_side == 0:
            raise ValueError(f"inside point {inside} lies on the counting line")
        self._in_sign = float(np.sign(in_side))
        self.total_in = 0
        self.total_out = 0

    def _side(self, p: np.ndarray) -> np.ndarray:
        d = self.b - self.a
        out: np.ndarray = d[0] * (p[:, 1] - self.a[1]) - d[1] * (p[:, 0] - self.a[0])
        return out

    def count(self, updates: Sequence[TrackUpdate], frame_wh: tuple[int, int]) -> LineCount:
        """Crossings among this frame's track movements (pixel centroids in `frame_wh`)."""
        if not updates:
            return LineCount(0, 0)
        scale = np.asarray(frame_wh, np.float64)
        p = np.array([u.previous for u in updates], np.float64) / scale
        q = np.array([u.current for u in updates], np.float64) / scale
        sp, sq = self._side(p), self._side(q)
        # A point exactly on the line belongs to the "out" side, so a crossing is a change.
        pos_p = sp * self._in_sign > 0
        pos_q = sq * self._in_sign > 0
        changed = pos_p != pos_q
        # The movement must cross the segment itself, not its extension: the line's
        # endpoints lie on opposite sides of (or on) the movement p → q.
        mv = q - p
        ea = mv[:, 0] * (self.a[1] - p[:, 1]) - mv[:, 1] * (self.a[0] - p[:, 0])
        eb = mv[:, 0] * (self.b[1] - p[:, 1]) - mv[:, 1] * (self.b[0] - p[:, 0])
        within = ea * eb <= 0
        hit = changed & within
        ids = np.array([u.track_id for u in updates])
        went_in = hit & pos_q
        went_out = hit & ~pos_q
        result = LineCount(
            int(went_in.sum()),
            int(went_out.sum()),
            tuple(int(i) for i in ids[went_in]),
            tuple(int(i) for i in ids[went_out]),
        )
        self.total_in += result.n_in
        self.total_out += result.n_out
        return result
