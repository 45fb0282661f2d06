"""A plain-Python reference of the head-count engine: dicts and loops, no numpy, no rings.

It keeps every bucket forever in a dict and recomputes each window by summing buckets, so
it shares no mechanics with the vectorized engine, only the rules of docs/headcount.md.
The hypothesis tests drive both with the same batches and clock and compare the outputs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.clock import Clock
from gateway.headcount.batch import HeadcountBatch
from gateway.headcount.records import (
    FlowRecord,
    HeadcountAlert,
    HeadcountOutput,
    OccupancyCorrection,
    OccupancyRecord,
)
from gateway.headcount.settings import HeadcountSettings
from gateway.site import SiteModel
from tests.headcount.reference_alerts import ReferenceAlertRules

WINDOWS = (("1m", 60), ("5m", 300), ("1h", 3600))
NAMES = (
    "granted",
    "denied",
    "reader_in",
    "reader_out",
    "reader_any",
    "camera_in",
    "camera_out",
    "late",
    "early",
)


def _zero() -> dict[str, int]:
    return dict.fromkeys(NAMES, 0)


class ReferenceHeadcount:
    """Same constructor, `ingest`, `tick`, `mark_offline/online`, `correct_occupancy`."""

    def __init__(
        self, site: SiteModel, settings: HeadcountSettings, clock: Clock, *, site_id: str
    ) -> None:
        self.s = settings
        self.clock = clock
        self.site_id = site_id
        self.cps = [cp.id for cp in site.checkpoints]
        self.cp_model = list(site.checkpoints)
        self.by_camera = [bool(cp.cameras) or not (cp.access or cp.doors) for cp in self.cp_model]
        single = {cp.leads_to[0] for cp in self.cp_model if len(cp.leads_to) == 1}
        self.targets = [b.id for b in site.buildings if b.id in single] + ["site"]
        self.limit = {b.id: b.occupancy_limit for b in site.buildings}
        self.limit["site"] = settings.site_occupancy_limit
        self.feeds: dict[str, list[str]] = {t: [] for t in self.targets}  # target -> cps
        for cp in self.cp_model:
            if not cp.inside_perimeter:
                self.feeds["site"].append(cp.id)
            if len(cp.leads_to) == 1:
                self.feeds[cp.leads_to[0]].append(cp.id)
        self.bm = settings.bucket_s * 1000
        now = clock.wall_ms()
        self.start_b = now // self.bm
        self.emitted = (now - settings.lateness_s * 1000) // self.bm
        self.head = (now + settings.max_future_s * 1000) // self.bm
        self.place = self.start_b
        self.buckets: dict[tuple[str, int], dict[str, int]] = defaultdict(_zero)
        self.intervals: dict[str, list[list[Any]]] = defaultdict(list)  # cp -> [dev, s, e]
        self.level = dict.fromkeys(self.targets, 0)
        self.clamps = dict.fromkeys(self.targets, 0)
        self.reported_clamps = dict.fromkeys(self.targets, 0)
        self.occ_uncertain = dict.fromkeys(self.targets, False)
        self.iv = settings.occupancy_interval_s * 1000
        self.sampled = now // self.iv
        self.next_reset = self._next_reset(now)
        self.counters: dict[int, tuple[int, int, int]] = {}
        self.rules = ReferenceAlertRules(settings)
        self.published: dict[str, tuple[Any, ...]] = {}
        self.evaluated_at: float | None = None
        self.flows: list[FlowRecord] = []
        self.samples: list[OccupancyRecord] = []
        self.late = dict.fromkeys(self.cps, 0)

    def _next_reset(self, after: int) -> int | None:
        if self.s.daily_reset is None:
            return None
        hour, minute = (int(x) for x in self.s.daily_reset.split(":"))
        zone = ZoneInfo(self.s.timezone)
        day = datetime.fromtimestamp(after / 1000, zone).date()
        while True:
            ms = int(datetime.combine(day, time(hour, minute), tzinfo=zone).timestamp()) * 1000
            if ms > after:
                return ms
            day += timedelta(days=1)

    def offline(self, cp: str) -> bool:
        return any(e is None for _, _, e in self.intervals[cp])

    def uncertain(self, cp: str, b: int) -> bool:
        if b < self.start_b:
            return True
        return any(s <= b and (e is None or b <= e) for _, s, e in self.intervals[cp])

    # -- time ---------------------------------------------------------------------------
    def advance(self, now: int) -> None:
        s = self.s
        self.head = max(self.head, (now + s.max_future_s * 1000) // self.bm)
        open_b = (now - s.lateness_s * 1000) // self.bm
        for b in range(self.emitted, open_b):
            for name, seconds in WINDOWS:
                width = seconds // s.bucket_s
                if (b + 1) % width == 0:
                    self.flows.extend(self.window_records(name, b + 1 - width, b))
        self.emitted = max(self.emitted, open_b)
        if self.next_reset is not None and now >= self.next_reset:
            for t in self.targets:
                self.level[t] = 0
                self.occ_uncertain[t] = any(self.offline(cp) for cp in self.feeds[t])
            self.next_reset = self._next_reset(now)
        if now // self.iv > self.sampled:
            self.sampled = now // self.iv
            for t in self.targets:
                clamped = self.clamps[t] - self.reported_clamps[t]
                self.reported_clamps[t] = self.clamps[t]
                self.samples.append(
                    OccupancyRecord(
                        self.site_id,
                        t,
                        self.sampled * self.iv,
                        self.level[t],
                        clamped,
                        self.occ_uncertain[t],
                    )
                )
        self.place = max(now // self.bm, self.emitted)

    def sums(self, cp: str, first: int, last: int) -> tuple[dict[str, int], bool]:
        total = _zero()
        unc = False
        for b in range(first, last + 1):
            counts = self.buckets.get((cp, b))
            if counts:
                for k in NAMES:
                    total[k] += counts[k]
            unc = unc or self.uncertain(cp, b)
        return total, unc

    def people(self, i: int, c: dict[str, int]) -> tuple[int, int]:
        if self.by_camera[i]:
            return c["camera_in"], c["camera_out"]
        return c["reader_in"], c["reader_out"]

    def window_records(self, name: str, first: int, last: int) -> list[FlowRecord]:
        out = []
        for i, cp in enumerate(self.cps):
            c, unc = self.sums(cp, first, last)
            p_in, p_out = self.people(i, c)
            out.append(
                FlowRecord(
                    self.site_id,
                    cp,
                    name,
                    first * self.bm,
                    p_in,
                    p_out,
                    c["granted"],
                    c["denied"],
                    c["camera_in"],
                    c["camera_out"],
                    c["late"],
                    c["early"],
                    unc,
                )
            )
        return out

    # -- counting -----------------------------------------------------------------------
    def place_row(self, cp: str, b: int) -> int | None:
        """The bucket a row counts in, or None when it is late."""
        if b > self.head:
            self.buckets[(cp, self.place)]["early"] += 1
            return self.place
        if b < self.emitted:
            self.buckets[(cp, self.place)]["late"] += 1
            self.late[cp] += 1
            return None
        return b

    def ingest(self, batch: HeadcountBatch) -> None:
        self.advance(self.clock.wall_ms())
        net: dict[str, int] = defaultdict(int)
        rows = zip(
            batch.swipe_checkpoint.tolist(),
            batch.swipe_ts_ms.tolist(),
            batch.swipe_code.tolist(),
            strict=True,
        )
        for i, ts, code in rows:
            cp = self.cps[i]
            passage, auth = divmod(code, 3)
            b = self.place_row(cp, ts // self.bm)
            c = self.buckets[(cp, b)] if b is not None else _zero()
            if auth:
                c["granted" if auth == 1 else "denied"] += 1
            if passage:
                c[("reader_in", "reader_out", "reader_any")[passage - 1]] += 1
            if not self.by_camera[i]:
                net[cp] += (passage == 1) - (passage == 2)
        counts = list(
            zip(
                batch.count_checkpoint.tolist(),
                batch.count_ts_ms.tolist(),
                batch.count_in.tolist(),
                batch.count_out.tolist(),
                strict=True,
            )
        )
        counts += self.difference(batch)
        for i, ts, n_in, n_out in counts:
            cp = self.cps[i]
            b = self.place_row(cp, (ts - 1) // self.bm)
            if b is not None:
                self.buckets[(cp, b)]["camera_in"] += n_in
                self.buckets[(cp, b)]["camera_out"] += n_out
            if self.by_camera[i]:
                net[cp] += n_in - n_out
        for t in self.targets:
            self.level[t] += sum(net[cp] for cp in self.feeds[t])
            if self.level[t] < 0:
                self.level[t] = 0
                self.clamps[t] += 1

    def difference(self, batch: HeadcountBatch) -> list[tuple[int, int, int, int]]:
        groups: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        rows = zip(
            batch.cumulative_camera.tolist(),
            batch.cumulative_checkpoint.tolist(),
            batch.cumulative_ts_ms.tolist(),
            batch.cumulative_in.tolist(),
            batch.cumulative_out.tolist(),
            strict=True,
        )
        for cam, cp, ts, tin, tout in rows:
            groups[cam].append((ts, cp, tin, tout))
        out = []
        for cam, reports in groups.items():
            for ts, cp, tin, tout in sorted(reports, key=lambda r: r[0]):
                last = self.counters.get(cam)
                if last is not None and ts <= last[0]:
                    continue
                self.counters[cam] = (ts, tin, tout)
                if last is None:
                    continue
                if tin < last[1] or tout < last[2]:
                    out.append((cp, ts, tin, tout))
                else:
                    out.append((cp, ts, tin - last[1], tout - last[2]))
        return out

    # -- devices, people ----------------------------------------------------------------
    def known(self, device: str) -> bool:
        return any(device in (*cp.access, *cp.cameras) for cp in self.cp_model)

    def mark_offline(self, device: str, since_ms: int | None = None) -> None:
        if not self.known(device):
            return
        self.advance(self.clock.wall_ms())
        start = self.place
        if since_ms is not None:
            start = min(max(since_ms // self.bm, self.emitted), self.place)
        for cp in self.cp_model:
            if device in (*cp.access, *cp.cameras):
                if any(d == device and e is None for d, _, e in self.intervals[cp.id]):
                    continue
                self.intervals[cp.id].append([device, start, None])
                for t in self.targets:
                    if cp.id in self.feeds[t]:
                        self.occ_uncertain[t] = True

    def mark_online(self, device: str) -> None:
        if not self.known(device):
            return
        self.advance(self.clock.wall_ms())
        for cp in self.cps:
            for interval in self.intervals[cp]:
                if interval[0] == device and interval[2] is None:
                    interval[2] = self.place

    def correct_occupancy(self, target: str, value: int, by: str) -> OccupancyCorrection:
        now = self.clock.wall_ms()
        self.advance(now)
        old = self.level[target]
        self.level[target] = value
        self.occ_uncertain[target] = any(self.offline(cp) for cp in self.feeds[target])
        return OccupancyCorrection(self.site_id, target, now, old, value, by)

    # -- output -------------------------------------------------------------------------
    def tick(self) -> HeadcountOutput:
        now = self.clock.wall_ms()
        self.advance(now)
        out = HeadcountOutput(flows=self.flows, occupancy=self.samples)
        self.flows, self.samples = [], []
        mono = self.clock.monotonic()
        if self.evaluated_at is None or mono - self.evaluated_at >= self.s.state_min_interval_s:
            self.evaluated_at = mono
            self.evaluate(now, out)
        return out

    def display(self, cp: Any) -> str:
        return cp.leads_to[0] if len(cp.leads_to) == 1 else "site"

    def evaluate(self, now: int, out: HeadcountOutput) -> None:
        windows: dict[str, dict[str, tuple[dict[str, int], bool]]] = {}
        for name, seconds in WINDOWS:
            width = seconds // self.s.bucket_s
            windows[name] = {
                cp: self.sums(cp, self.place - width + 1, self.place) for cp in self.cps
            }
        inflow = {}
        for i, cp in enumerate(self.cp_model):
            numbers: list[Any] = []
            for name, _ in WINDOWS:
                numbers += self.people(i, windows[name][cp.id][0])
            inflow[cp.id] = numbers[0]
            unc = self.offline(cp.id) or any(windows[n][cp.id][1] for n, _ in WINDOWS)
            key = (*numbers, self.level[self.display(cp)], unc)
            if self.published.get(cp.id) != key:
                self.published[cp.id] = key
                out.states.append(
                    (
                        cp.id,
                        {
                            "ts": now,
                            "checkpoint": cp.id,
                            "in_1m": numbers[0],
                            "out_1m": numbers[1],
                            "in_5m": numbers[2],
                            "out_5m": numbers[3],
                            "in_1h": numbers[4],
                            "out_1h": numbers[5],
                            "occupancy": key[6],
                            "occupancy_of": self.display(cp),
                            "uncertain": unc,
                        },
                    )
                )
        for cp in self.cp_model:
            limit = cp.inflow_limit_per_min
            if limit is not None:
                self.rules.hysteresis(
                    out,
                    ("inflow", cp.id),
                    inflow[cp.id],
                    limit,
                    lambda st, v, lim, c=cp.id: HeadcountAlert(
                        "crowding", st, "checkpoint", c, "inflow_per_min", float(v), float(lim), now
                    ),
                )
        for t in self.targets:
            limit = self.limit.get(t)
            if limit is not None:
                scope = "site" if t == "site" else "building"
                self.rules.hysteresis(
                    out,
                    ("occupancy", t),
                    self.level[t],
                    limit,
                    lambda st, v, lim, t=t, sc=scope: HeadcountAlert(
                        "crowding", st, sc, t, "occupancy", float(v), float(lim), now
                    ),
                )
        self.rules.tailgating(
            now,
            self.cp_model,
            windows[self.s.tailgate_window],
            dict(WINDOWS)[self.s.tailgate_window],
            self.offline,
            out,
        )
        self.rules.sort(out, self.cps, self.targets)
