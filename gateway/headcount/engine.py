"""The head-count engine: micro-batches of rows in; windows, occupancy, states and alerts out.

Pure and clock-injected: `ingest` counts (numpy only), `tick` hands back what to write,
publish and alert. The rules are in docs/headcount.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.clock import Clock
from gateway.headcount.alerts import AlertBook
from gateway.headcount.batch import N_CODES, HeadcountBatch
from gateway.headcount.counters import CameraCounters, CounterState
from gateway.headcount.errors import HeadcountError
from gateway.headcount.index import HeadcountIndex
from gateway.headcount.kernels import Counted, count_crossings, count_swipes
from gateway.headcount.occupancy import Occupancy
from gateway.headcount.records import (
    FlowRecord,
    HeadcountOutput,
    OccupancyCorrection,
    OccupancyRecord,
)
from gateway.headcount.settings import WINDOWS_S, HeadcountSettings
from gateway.headcount.states import StateBoard, people
from gateway.headcount.windows import (
    Q_CAMERA_IN,
    Q_CAMERA_OUT,
    Q_DENIED,
    Q_EARLY,
    Q_GRANTED,
    Q_LATE,
    Q_READER_ANY,
    Q_READER_IN,
    ClosedWindow,
    FlowRing,
)
from gateway.site import SiteModel

I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HeadcountStats:
    """Totals since start of everything the engine set aside, clamped or could not use."""

    late: dict[str, int]
    early: dict[str, int]
    clamps: dict[str, int]
    clamped_people: dict[str, int]
    daily_resets: int
    skipped_windows: int
    counter_resets: int
    stale_reports: int
    baselines: int
    retransmissions: int
    unknown_checkpoint: int
    no_checkpoint: int
    cameras_over_limit: int
    rows: int


class HeadcountEngine:
    """Flows per checkpoint and window, occupancy per building and site, crowding and
    tailgating alerts; one per gateway, driven by the composition root."""

    def __init__(
        self, site: SiteModel, settings: HeadcountSettings, clock: Clock, *, site_id: str
    ) -> None:
        self.settings = settings
        self.site_id = site_id
        self.index = index = HeadcountIndex(site, settings)
        self._clock = clock
        self._bucket_ms = settings.bucket_s * 1000
        now = clock.wall_ms()
        n = index.n_checkpoints
        self._ring = FlowRing(
            n, self._bucket_ms, settings.lateness_s * 1000, settings.max_future_s * 1000, now
        )
        self._place_b = now // self._bucket_ms
        self._counters = CameraCounters()
        self._occupancy = Occupancy(index, settings, site_id, now)
        self._offline: list[set[str]] = [set() for _ in range(n)]
        self._offline_mask: NDArray[np.bool_] = np.zeros(n, dtype=bool)
        self._flows: list[FlowRecord] = []
        self._samples: list[OccupancyRecord] = []
        self._late: I64 = np.zeros(n, dtype=np.int64)
        self._early: I64 = np.zeros(n, dtype=np.int64)
        self._dropped = {
            "retransmissions": 0,
            "unknown_checkpoint": 0,
            "no_checkpoint": 0,
            "cameras_over_limit": 0,
            "rows": 0,
        }
        self._alerts = AlertBook(index, settings)
        self._evaluated_at: float | None = None
        self._board = StateBoard(index)

    # -- counting ------------------------------------------------------------------------

    def ingest(self, batch: HeadcountBatch) -> None:
        """Count one micro-batch; occupancy moves once, by the batch's net flow."""
        if not batch.trusted:
            self._check(batch)
        self._advance(self._clock.wall_ms())
        totals: I64 | None = None
        if len(batch.swipe_ts_ms):
            totals = self._add(
                count_swipes(
                    batch.swipe_checkpoint,
                    batch.swipe_ts_ms,
                    batch.swipe_code,
                    *self._placement(),
                )
            )
        crossings = (
            batch.count_checkpoint,
            batch.count_ts_ms,
            batch.count_in,
            batch.count_out,
        )
        if len(batch.cumulative_ts_ms):
            increments = self._counters.update(
                batch.cumulative_camera,
                batch.cumulative_checkpoint,
                batch.cumulative_ts_ms,
                batch.cumulative_in,
                batch.cumulative_out,
            )
            if not len(batch.count_ts_ms):
                crossings = increments
            elif len(increments[1]):
                cp, ts, n_in, n_out = (
                    np.concatenate([mine, theirs])
                    for mine, theirs in zip(crossings, increments, strict=True)
                )
                crossings = (cp, ts, n_in, n_out)
        if len(crossings[1]):
            counted = self._add(count_crossings(*crossings, *self._placement()))
            totals = counted if totals is None else totals + counted
        if totals is not None:
            people_in, people_out = people(totals, self.index.counts_by_camera)
            self._occupancy.apply(people_in - people_out)
        dropped = self._dropped
        dropped["retransmissions"] += batch.retransmissions
        dropped["unknown_checkpoint"] += batch.unknown_checkpoint
        dropped["no_checkpoint"] += batch.no_checkpoint
        dropped["cameras_over_limit"] += batch.cameras_over_limit
        dropped["rows"] += len(batch)

    def ingest_crossings(self, rows: list[tuple[int, int, int, int]]) -> None:
        """Count (checkpoint index, ts_ms, in, out) period counts, e.g. vision crossings."""
        self.ingest(HeadcountBatch.crossings(rows))

    def _placement(self) -> tuple[int, int, int, int, int]:
        ring = self._ring
        return self.index.n_checkpoints, self._bucket_ms, ring.emitted, ring.head, self._place_b

    def _add(self, counted: Counted) -> I64:
        """Put a batch's counts into the ring; its per-checkpoint totals (late rows too)."""
        ring = self._ring
        block = counted.block
        if counted.late is not None:
            ring.add_block(counted.first_b + 1, block[:, 1:])
            ring.add_column(self._place_b, Q_LATE, counted.late)
            self._late += counted.late
        else:
            ring.add_block(counted.first_b, block)
        if counted.early is not None:
            ring.add_column(self._place_b, Q_EARLY, counted.early)
            self._early += counted.early
        totals: I64 = block.sum(axis=1)
        return totals

    def _check(self, batch: HeadcountBatch) -> None:
        n = self.index.n_checkpoints
        groups = (
            ("swipe", batch.swipe_ts_ms, batch.swipe_checkpoint, (batch.swipe_code,)),
            ("count", batch.count_ts_ms, batch.count_checkpoint, (batch.count_in, batch.count_out)),
            (
                "cumulative",
                batch.cumulative_ts_ms,
                batch.cumulative_checkpoint,
                (batch.cumulative_in, batch.cumulative_out, batch.cumulative_camera),
            ),
        )
        for name, ts, cp, values in groups:
            if not len(ts) and not len(cp) and not any(len(v) for v in values):
                continue
            if any(len(a) != len(ts) for a in (cp, *values)):
                raise HeadcountError(f"{name} rows: the arrays have different lengths")
            if any(a.dtype.kind not in "iu" for a in (ts, cp, *values)):
                raise HeadcountError(f"{name} rows: arrays must hold integers (int64)")
            if len(cp) and (int(cp.min()) < 0 or int(cp.max()) >= n):
                raise HeadcountError(f"{name} rows: checkpoint index outside 0..{n - 1}")
            for value in values:
                if len(value) and int(value.min()) < 0:
                    raise HeadcountError(f"{name} rows: negative count or index")
        code = batch.swipe_code
        if len(code) and int(code.max()) >= N_CODES:
            raise HeadcountError(f"swipe rows: code outside 0..{N_CODES - 1}")
        camera = batch.cumulative_camera
        if len(camera) and int(camera.max()) >= max(self.index.n_cameras, 1):
            raise HeadcountError("cumulative rows: camera slot not from index.camera_slot")

    # -- time ----------------------------------------------------------------------------

    def _advance(self, now: int) -> None:
        """Close buckets whose lateness has passed, open new ones, reset and sample occupancy."""
        closed = self._ring.advance(now, self._offline_mask)
        for window in closed:
            self._flows.extend(self._flow_records(window))
        self._samples.extend(self._occupancy.advance(now, self._offline_mask))
        self._place_b = max(now // self._bucket_ms, self._ring.emitted)

    def _flow_records(self, closed: ClosedWindow) -> list[FlowRecord]:
        s = closed.sums
        people_in, people_out = (p.tolist() for p in people(s, self.index.counts_by_camera))
        granted, denied, camera_in, camera_out, late, early = (
            s[q].tolist() for q in (Q_GRANTED, Q_DENIED, Q_CAMERA_IN, Q_CAMERA_OUT, Q_LATE, Q_EARLY)
        )
        uncertain = closed.uncertain.tolist()
        start = closed.start_bucket * self._bucket_ms
        site = self.site_id
        return [
            FlowRecord(site, cp, closed.window, start, people_in[i], people_out[i], granted[i],
                       denied[i], camera_in[i], camera_out[i], late[i], early[i], uncertain[i])
            for i, cp in enumerate(self.index.checkpoint_ids)
        ]  # fmt: skip

    def tick(self) -> HeadcountOutput:
        """What to write, publish and alert now. Call after each micro-batch and about
        once a second; states and alerts are evaluated at most every `state_min_interval_s`."""
        now = self._clock.wall_ms()
        self._advance(now)
        out = HeadcountOutput(flows=self._flows, occupancy=self._samples)
        self._flows = []
        self._samples = []
        mono = self._clock.monotonic()
        last = self._evaluated_at
        if last is None or mono - last >= self.settings.state_min_interval_s:
            self._evaluated_at = mono
            self._evaluate(now, out)
        return out

    def _window(self, name: str) -> tuple[I64, NDArray[np.bool_]]:
        width = WINDOWS_S[name] // self.settings.bucket_s
        return self._ring.range_sum(self._place_b - width + 1, self._place_b)

    def _evaluate(self, now: int, out: HeadcountOutput) -> None:
        """Retained states of the checkpoints whose numbers changed, and alert changes."""
        index = self.index
        windows: list[I64] = []
        uncertain = self._offline_mask.copy()
        tail_sums = windows_unc = None
        for name in WINDOWS_S:
            sums, unc = self._window(name)
            windows.append(sums)
            if name == self.settings.tailgate_window:
                tail_sums, windows_unc = sums, unc | self._offline_mask
            uncertain |= unc  # the hour holds the shorter windows
        level = self._occupancy.level
        out.states += self._board.update(now, windows, level[index.display_target], uncertain)
        assert tail_sums is not None and windows_unc is not None
        out.alerts += self._alerts.evaluate(
            now,
            people(windows[0], index.counts_by_camera)[0],
            level,
            tail_sums[Q_CAMERA_IN],
            tail_sums[Q_READER_IN] + tail_sums[Q_READER_ANY],
            windows_unc,
        )

    # -- devices and people --------------------------------------------------------------

    def mark_offline(self, device: str, since_ms: int | None = None) -> bool:
        """A reader or camera of a checkpoint went offline (silent since `since_ms`, else
        now): that checkpoint's buckets are uncertain until it is back. False for a device
        no checkpoint lists."""
        cps = self.index.device_checkpoints.get(device)
        if not cps:
            return False
        self._advance(self._clock.wall_ms())
        ring = self._ring
        start = self._place_b
        if since_ms is not None:
            start = min(max(since_ms // self._bucket_ms, ring.emitted), self._place_b)
        newly = [i for i in cps if device not in self._offline[i]]
        for i in newly:
            self._offline[i].add(device)
            self._offline_mask[i] = True
        if newly:
            ring.mark(newly, start, ring.head, True)
            flagged = np.zeros(self.index.n_checkpoints, dtype=bool)
            flagged[newly] = True
            self._occupancy.mark_uncertain(flagged)
        return True

    def mark_online(self, device: str) -> bool:
        """The device is back: buckets after the current one are certain again (once every
        device of the checkpoint is back). False for a device no checkpoint lists."""
        cps = self.index.device_checkpoints.get(device)
        if not cps:
            return False
        self._advance(self._clock.wall_ms())
        back = []
        for i in cps:
            if device in self._offline[i]:
                self._offline[i].discard(device)
                if not self._offline[i]:
                    self._offline_mask[i] = False
                    back.append(i)
        self._ring.mark(back, self._place_b + 1, self._ring.head, False)
        return True

    def correct_occupancy(self, target: str, value: int, by: str) -> OccupancyCorrection:
        """Set a building's (or `"site"`) occupancy by hand; the record is the audit trail."""
        now = self._clock.wall_ms()
        self._advance(now)
        return self._occupancy.correct(target, value, by, now, self._offline_mask)

    # -- reading -------------------------------------------------------------------------

    def occupancy(self) -> dict[str, int]:
        """Current occupancy of every target (buildings some checkpoint leads to, `site`)."""
        return dict(zip(self.index.target_ids, self._occupancy.level.tolist(), strict=True))

    def states(self) -> dict[str, dict[str, Any]]:
        """The last state payload of every checkpoint (what is retained on MQTT)."""
        return dict(self._board.latest)

    def stats(self) -> HeadcountStats:
        """Everything set aside, clamped or unusable since start (metrics, /status)."""
        ids = self.index.checkpoint_ids
        targets = self.index.target_ids
        occ = self._occupancy
        d = self._dropped
        return HeadcountStats(
            late=dict(zip(ids, self._late.tolist(), strict=True)),
            early=dict(zip(ids, self._early.tolist(), strict=True)),
            clamps=dict(zip(targets, occ.clamps.tolist(), strict=True)),
            clamped_people=dict(zip(targets, occ.clamped_people.tolist(), strict=True)),
            daily_resets=occ.resets,
            skipped_windows=self._ring.skipped_windows,
            counter_resets=self._counters.resets,
            stale_reports=self._counters.stale,
            baselines=self._counters.baselines,
            retransmissions=d["retransmissions"],
            unknown_checkpoint=d["unknown_checkpoint"],
            no_checkpoint=d["no_checkpoint"],
            cameras_over_limit=d["cameras_over_limit"],
            rows=d["rows"],
        )

    def counter_states(self) -> dict[str, CounterState]:
        """Last accepted cumulative report per camera: save it to survive a restart."""
        states = {}
        for slot, camera in enumerate(self.index.camera_ids):
            state = self._counters.state(slot)
            if state is not None:
                states[camera] = state
        return states

    def restore_counter_states(self, states: dict[str, CounterState]) -> None:
        """Baselines saved by `counter_states` (before the first batch after a restart)."""
        for camera, state in states.items():
            slot = self.index.camera_slot(camera)
            if slot >= 0:
                self._counters.restore(slot, state)
