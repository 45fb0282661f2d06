"""Multi-object tracker: IoU-then-centroid association with constant-velocity prediction.

Cost matrices are numpy; the assignment is greedy on the sorted matrix (good enough for the
handful of people one checkpoint camera sees, and it needs no scipy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gateway.vision.detector import F32, iou_matrix

I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Track:
    """One object followed across frames; `centre` is its last observed centroid."""

    id: int
    box: F32
    velocity: F32 = field(default_factory=lambda: np.zeros(2, np.float32))
    misses: int = 0
    hits: int = 1

    @property
    def centre(self) -> F32:
        c: F32 = ((self.box[:2] + self.box[2:]) / 2).astype(np.float32)
        return c

    def predicted(self) -> F32:
        shift = np.tile(self.velocity * (self.misses + 1), 2)
        out: F32 = (self.box + shift).astype(np.float32)
        return out


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """A track that matched a detection this frame: where it was and where it is."""

    track_id: int
    previous: F32
    current: F32


def greedy_assign(cost: F32, max_cost: float) -> tuple[I64, I64]:
    """Pairs (row, col) with the lowest costs first, each row and column used once."""
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = np.argsort(cost, axis=None, kind="stable")
    rows, cols = np.unravel_index(flat, cost.shape)
    ok = cost[rows, cols] <= max_cost
    rows, cols = rows[ok], cols[ok]
    used_r = np.zeros(cost.shape[0], bool)
    used_c = np.zeros(cost.shape[1], bool)
    out_r: list[int] = []
    out_c: list[int] = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if not used_r[r] and not used_c[c]:
            used_r[r] = used_c[c] = True
            out_r.append(r)
            out_c.append(c)
    return np.asarray(out_r, np.int64), np.asarray(out_c, np.int64)


class Tracker:
    """Keeps tracks alive through `max_misses` frames without a detection (occlusion)."""

    def __init__(self, *, max_misses: int = 5, max_distance: float = 80.0) -> None:
        self.max_misses = max_misses
        self.max_distance = max_distance
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: F32) -> list[TrackUpdate]:
        """Associate this frame's boxes `[n, 4]`; return the tracks seen again this frame."""
        predicted = np.array([t.predicted() for t in self.tracks], np.float32).reshape(-1, 4)
        # Cost: 1 - IoU for overlapping boxes, else centroid distance scaled into (1, 2].
        iou = iou_matrix(predicted, boxes)
        pc = (predicted[:, None, :2] + predicted[:, None, 2:]) / 2
        bc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
        dist = np.linalg.norm(pc - bc, axis=2)
        cost = np.where(iou > 0.1, 1.0 - iou, 1.0 + dist / self.max_distance).astype(np.float32)
        rows, cols = greedy_assign(cost, max_cost=2.0)
        updates: list[TrackUpdate] = []
        matched = np.zeros(len(self.tracks), bool)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            track = self.tracks[r]
            prev_centre = track.centre
            new_box = boxes[c].astype(np.float32)
            new_centre = (new_box[:2] + new_box[2:]) / 2
            step = (new_centre - prev_centre) / (track.misses + 1)
            track.velocity = (0.5 * track.velocity + 0.5 * step).astype(np.float32)
            track.box = new_box
            track.misses = 0
            track.hits += 1
            matched[r] = True
            updates.append(TrackUpdate(track.id, prev_centre, new_centre.astype(np.float32)))
        for i, track in enumerate(self.tracks):
            if not matched[i]:
                track.misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        taken = np.zeros(len(boxes), bool)
        taken[cols] = True
        for box in boxes[~taken]:
            self.tracks.append(Track(self._next_id, box.astype(np.float32)))
            self._next_id += 1
        return updates

    def coast(self) -> None:
        """A frame without detections (e.g. no motion): age every track."""
        self.update(np.zeros((0, 4), np.float32))
