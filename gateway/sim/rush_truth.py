"""The ground truth of a morning rush: what the gateway must output, by the rules of
docs/headcount.md, computed from the generated rows and their arrival times alone (it never
calls the engine). See `gateway.sim.rush` for the generator.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from gateway.config import GatewayConfig

WINDOWS: Final = (("1m", 60), ("5m", 300), ("1h", 3600))
# Bucket quantities of the truth (people are derived from them per checkpoint).
GRANTED, DENIED, READER_IN, READER_OUT, CAMERA_IN, CAMERA_OUT, LATE, EARLY = range(8)


Fields = dict[str, int | bool]
_Check = tuple[tuple[str, str], dict[str, Any], bool, bool]  # key, payload, over, under


@dataclass(frozen=True, slots=True)
class Swipe:
    """A card swipe at a checkpoint's door: an authorization, a passage when granted."""

    checkpoint: str
    ts_ms: int
    dir: Literal["in", "out"]
    granted: bool


@dataclass(frozen=True, slots=True)
class Crossing:
    """A camera's line-crossing counts over the `period_s` ending at `ts_ms`."""

    checkpoint: str
    ts_ms: int
    period_s: int
    n_in: int
    n_out: int


@dataclass(frozen=True, slots=True)
class AlertFlip:
    """An alert changing state at `at_ms`; `body` is its payload without `ts` and `site`,
    unchanged until `stable_until_ms`."""

    at_ms: int
    stable_until_ms: float
    body: dict[str, Any]


class RushTruth:
    """What the gateway must output for rows arriving at known times (docs/headcount.md).

    `arrivals` are (arrival ms, row) in arrival order: the gateway is taken to see a row
    the moment it is published. `engine_start_ms` matters through its bucket (start-up
    windows are uncertain); `corrected_ms` is when `initial` (the night's head count) was
    entered through the API.
    """

    def __init__(self, cfg: GatewayConfig, arrivals: list[tuple[int, Swipe | Crossing]],
                 initial: dict[str, int]) -> None:  # fmt: skip
        s = self._settings = cfg.headcount
        self.bucket_ms, self.lateness_ms = s.bucket_s * 1000, s.lateness_s * 1000
        self.future_ms, self.interval_ms = s.max_future_s * 1000, s.occupancy_interval_s * 1000
        self.arrivals, self.initial = arrivals, initial
        cps = cfg.site.checkpoints
        self.checkpoints = [cp.id for cp in cps]
        reader = {cp.id: bool(cp.access or cp.doors) for cp in cps}
        self.by_camera = {cp.id: bool(cp.cameras) or not reader[cp.id] for cp in cps}
        self.watched = {cp.id: bool(cp.cameras) and reader[cp.id] for cp in cps}
        single = {cp.leads_to[0] for cp in cps if len(cp.leads_to) == 1}
        self.targets = [b.id for b in cfg.site.buildings if b.id in single] + ["site"]
        self.moves = {
            cp.id: ([] if cp.inside_perimeter else ["site"])
            + ([cp.leads_to[0]] if len(cp.leads_to) == 1 else [])
            for cp in cps
        }
        self.display = {cp.id: cp.leads_to[0] if len(cp.leads_to) == 1 else "site" for cp in cps}
        self.inflow_limit = {cp.id: cp.inflow_limit_per_min for cp in cps}
        limits = {b.id: b.occupancy_limit for b in cfg.site.buildings}
        self.occupancy_limit = {t: limits.get(t) for t in self.targets[:-1]}
        self.occupancy_limit["site"] = s.site_occupancy_limit
        self.min_count = {
            cp.id: s.tailgate_min_count if cp.tailgate_min_count is None else cp.tailgate_min_count
            for cp in cps
        }
        self.ratio = {cp.id: cp.tailgate_ratio or s.tailgate_ratio for cp in cps}
        # (arrival, checkpoint, bucket, quantities, people in - out) of every row.
        self._rows = [self._place(arrival, row) for arrival, row in arrivals]

    # -- rows ----------------------------------------------------------------------------

    def _place(self, arrival: int, row: Swipe | Crossing) -> tuple[int, str, int, list[int], int]:
        """Where a row counts and how many people it moves, by the documented rules."""
        b = self.bucket_ms
        q = [0] * 8
        if isinstance(row, Swipe):
            bucket = row.ts_ms // b
            q[GRANTED if row.granted else DENIED] = 1
            if row.granted:  # a granted swipe is the passage (canonical passage_event)
                q[READER_IN if row.dir == "in" else READER_OUT] = 1
        else:
            bucket = (row.ts_ms - 1) // b  # ts is the end of the period
            q[CAMERA_IN], q[CAMERA_OUT] = row.n_in, row.n_out
        people_in, people_out = self._people(row.checkpoint, q)
        if bucket < (arrival - self.lateness_ms) // b:  # its bucket has closed: late
            q, bucket = [0] * 8, arrival // b
            q[LATE] = 1
        elif bucket > (arrival + self.future_ms) // b:  # the device clock is ahead: early
            q[EARLY], bucket = 1, arrival // b
        return arrival, row.checkpoint, bucket, q, people_in - people_out

    def _people(self, cp: str, q: list[int]) -> tuple[int, int]:
        if self.by_camera[cp]:
            return q[CAMERA_IN], q[CAMERA_OUT]
        return q[READER_IN], q[READER_OUT]

    def _buckets(self, until_ms: float) -> dict[tuple[str, int], list[int]]:
        sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 8)
        for arrival, cp, bucket, q, _ in self._rows:
            if arrival <= until_ms:
                _add(sums[(cp, bucket)], q)
        return sums

    @staticmethod
    def _sum(sums: dict[tuple[str, int], list[int]], cp: str, first: int, last: int) -> list[int]:
        total = [0] * 8
        for bucket in range(first, last + 1):
            if (cp, bucket) in sums:
                _add(total, sums[(cp, bucket)])
        return total

    # -- closed windows ------------------------------------------------------------------

    def flows(self, engine_start_ms: int, closed_by_ms: int) -> dict[tuple[str, str, int], Fields]:
        """Every `checkpoint_flow` record written once the engine's clock has reached
        `closed_by_ms`: (checkpoint, window, start ms) -> its fields (storage names)."""
        b = self.bucket_ms
        start_b = engine_start_ms // b
        first_closed = (engine_start_ms - self.lateness_ms) // b  # the ring's first open bucket
        last_closed = (closed_by_ms - self.lateness_ms) // b - 1
        sums = self._buckets(math.inf)
        out: dict[tuple[str, str, int], Fields] = {}
        for name, seconds in WINDOWS:
            width = seconds * 1000 // b
            for last in range(first_closed, last_closed + 1):
                if (last + 1) % width:
                    continue
                first = last + 1 - width
                for cp in self.checkpoints:
                    q = self._sum(sums, cp, first, last)
                    p_in, p_out = self._people(cp, q)
                    out[(cp, name, first * b)] = {
                        "in": p_in, "out": p_out, "net": p_in - p_out, "granted": q[GRANTED],
                        "denied": q[DENIED], "camera_in": q[CAMERA_IN],
                        "camera_out": q[CAMERA_OUT], "late": q[LATE], "early": q[EARLY],
                        "uncertain": first < start_b,
                    }  # fmt: skip
        return out

    # -- occupancy -----------------------------------------------------------------------

    def _events(self, engine_start_ms: int, corrected_ms: int,
                until_ms: float) -> list[tuple[int, int, str, int, int]]:  # fmt: skip
        """(time, order, name, value, row index) of everything that moves occupancy: daily
        resets (order 0), the correction (1) and rows (2), as the engine meets them."""
        events = [(r, 0, "", 0, -1) for r in self._resets(engine_start_ms, until_ms)]
        events += [(corrected_ms, 1, t, v, -1) for t, v in self.initial.items()]
        events += [(r[0], 2, r[1], r[4], i) for i, r in enumerate(self._rows)]
        events.sort(key=lambda e: (e[0], e[1], e[4]))
        return events

    def _resets(self, engine_start_ms: int, until_ms: float) -> list[int]:
        at = self._settings.reset_time()
        if at is None:
            return []
        zone = ZoneInfo(self._settings.timezone)
        resets: list[int] = []
        after = engine_start_ms
        while True:
            day = datetime.fromtimestamp(after / 1000, zone).date() - timedelta(days=1)
            ms = after
            while ms <= after:
                day += timedelta(days=1)
                ms = int(datetime.combine(day, time(*at), tzinfo=zone).timestamp()) * 1000
            if ms > until_ms:
                return resets
            resets.append(ms)
            after = ms

    def _apply(self, level: dict[str, int], event: tuple[int, int, str, int, int]) -> None:
        _, order, name, value, _ = event
        if order == 0:
            level.update(dict.fromkeys(level, 0))
        elif order == 1:
            level[name] = value
        else:
            for target in self.moves[name]:
                level[target] += value
                if level[target] < 0:
                    raise ValueError(f"the rush drives {target} below 0: the engine would clamp")

    def levels(self, at_ms: float, engine_start_ms: int, corrected_ms: int,
               inclusive: bool = True) -> dict[str, int]:  # fmt: skip
        """Occupancy of every target once the rows and the correction up to `at_ms` are in
        (`inclusive=False`: only those before it; a reset at `at_ms` counts either way)."""
        level = dict.fromkeys(self.targets, 0)
        for event in self._events(engine_start_ms, corrected_ms, at_ms):
            if event[0] > at_ms or (event[1] and event[0] == at_ms and not inclusive):
                continue
            self._apply(level, event)
        return level

    def occupancy(self, engine_start_ms: int, corrected_ms: int,
                  until_ms: int) -> dict[tuple[str, int], int]:  # fmt: skip
        """Every `occupancy` sample taken by `until_ms`: (target, sample ms) -> level. A
        sample is taken at the first tick at or after its time, before what arrives then."""
        step = self.interval_ms
        out: dict[tuple[str, int], int] = {}
        for k in range(engine_start_ms // step + 1, until_ms // step + 1):
            level = self.levels(k * step, engine_start_ms, corrected_ms, inclusive=False)
            out.update({(target, k * step): v for target, v in level.items()})
        return out

    # -- live state and alerts -----------------------------------------------------------

    def state(self, cp: str, ts_ms: int, engine_start_ms: int, corrected_ms: int) -> dict[str, Any]:
        """The retained `state/occupancy/{cp}` payload evaluated at `ts_ms` (rows in by then)."""
        b = self.bucket_ms
        pb = ts_ms // b
        sums = self._buckets(ts_ms)
        body: dict[str, Any] = {"ts": ts_ms, "checkpoint": cp}
        for name, seconds in WINDOWS:
            q = self._sum(sums, cp, pb - seconds * 1000 // b + 1, pb)
            body[f"in_{name}"], body[f"out_{name}"] = self._people(cp, q)
        body["occupancy"] = self.levels(ts_ms, engine_start_ms, corrected_ms)[self.display[cp]]
        body["occupancy_of"] = self.display[cp]
        # The hour holds the shorter windows: buckets before the start make it uncertain.
        body["uncertain"] = pb - 3600 * 1000 // b + 1 < engine_start_ms // b
        return body

    def alerts(self, engine_start_ms: int, corrected_ms: int, until_ms: int) -> list[AlertFlip]:
        """Every crowding and tailgating flip up to `until_ms`, evaluated at each moment a
        number can change (an arrival, a bucket boundary, the correction, a reset)."""
        b = self.bucket_ms
        events = self._events(engine_start_ms, corrected_ms, until_ms)
        moments = {e[0] for e in events} | set(range(engine_start_ms // b * b + b, until_ms, b))
        sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 8)
        level = dict.fromkeys(self.targets, 0)
        raised: set[tuple[str, str]] = set()
        last: dict[tuple[str, str], dict[str, Any]] = {}
        flips: list[tuple[tuple[str, str], int, dict[str, Any]]] = []
        stable: dict[int, int] = {}
        i = 0
        for t in sorted(m for m in moments if engine_start_ms <= m <= until_ms):
            while i < len(events) and events[i][0] <= t:
                self._apply(level, events[i])
                if events[i][1] == 2:
                    _, cp, bucket, q, _ = self._rows[events[i][4]]
                    _add(sums[(cp, bucket)], q)
                i += 1
            for key, body, over, under in self._checks(t, sums, level, engine_start_ms):
                if last.get(key) != body:
                    for j, (k, _, _) in enumerate(flips):
                        if k == key:
                            stable.setdefault(j, t)
                    last[key] = body
                if (over and key not in raised) or (under and not over and key in raised):
                    raised ^= {key}
                    flips.append((key, t, {**body, "state": "raised" if over else "cleared"}))
        return [AlertFlip(t, stable.get(j, math.inf), body) for j, (_, t, body) in enumerate(flips)]

    def _checks(self, t: int, sums: dict[tuple[str, int], list[int]], level: dict[str, int],
                engine_start_ms: int) -> list[_Check]:  # fmt: skip
        """(key, payload, over, under) of every limited alert at moment `t`."""
        b, f = self.bucket_ms, self._settings.clear_fraction
        pb = t // b
        tail_s = dict(WINDOWS)[self._settings.tailgate_window]
        tail_first = pb - tail_s * 1000 // b + 1
        checks = []
        for cp in self.checkpoints:
            limit = self.inflow_limit[cp]
            if limit is not None:
                value = float(self._people(cp, self._sum(sums, cp, pb - 60000 // b + 1, pb))[0])
                body = {"type": "crowding", "scope": "checkpoint", "checkpoint": cp,
                        "metric": "inflow_per_min", "value": value,
                        "limit": float(limit)}  # fmt: skip
                checks.append((("crowding", cp), body, value > limit, value <= f * limit))
            if self.watched[cp]:
                q = self._sum(sums, cp, tail_first, pb)
                cam, auth = q[CAMERA_IN], q[READER_IN]
                need, ratio_limit = self.min_count[cp], self.ratio[cp]
                ratio = cam / max(auth, 1)
                body = {"type": "tailgating", "scope": "checkpoint", "checkpoint": cp,
                        "metric": "tailgating", "value": round(ratio, 3),
                        "limit": float(ratio_limit), "window_s": tail_s, "camera_in": cam,
                        "authorized_in": auth, "excess": cam - auth, "min_count": need}  # fmt: skip
                # Never raised on an uncertain window: here, one reaching before the start.
                certain = tail_first >= engine_start_ms // b
                over = certain and cam - auth > need and ratio > ratio_limit
                under = cam - auth <= f * need or ratio <= f * ratio_limit
                checks.append((("tailgating", cp), body, over, under))
        for target, occ_limit in self.occupancy_limit.items():
            if occ_limit is not None:
                value = float(level[target])
                body = {"type": "crowding", "scope": "site" if target == "site" else "building",
                        "building": target, "metric": "occupancy", "value": value,
                        "limit": float(occ_limit)}  # fmt: skip
                checks.append(
                    (("crowding", target), body, value > occ_limit, value <= f * occ_limit)
                )
        return checks


def _add(acc: list[int], q: list[int]) -> None:
    for i, v in enumerate(q):
        acc[i] += v
