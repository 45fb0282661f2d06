"""Head-count kernel throughput: the vectorized engine against the plain-Python reference.

Usage: python bench/headcount.py [--events 10000000] [--checkpoints 300] [--batch 50000]
       [--also-batches 2000,10000] [--reference-events 200000] [--rows-per-s 1400] [--quick]

The workload is generated as numpy arrays (no JSON, no MQTT): 70 % access swipes and
passages, 25 % camera period counts, 5 % cumulative camera reports, arriving at
`--rows-per-s` per second of event time (10 million rows: about 2 hours). 5 % of the
swipes and period counts arrive up to 60 s out of order (within the 120 s lateness),
0.5 % ten minutes late (counted as late). The clock follows arrival time; before each
micro-batch the engine's `tick()` runs (timed apart: it writes records; `ingest` counts).

Measured, each on its own:
- engine: `ingest(batch)` seconds over every micro-batch of `--batch` rows (arrays in,
  counts in the ring out; cumulative differencing and occupancy included), also for the
  `--also-batches` sizes;
- reference: the same `ingest` of tests/headcount/reference.py on the first
  `--reference-events` rows (its rate is extrapolated; it is too slow for 10 million);
  both then close every window and must produce the same records and occupancy;
- building arrays from `DeviceMessage` objects (`build_batch`): Python-bound, per row.
The last line of stdout is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.clock import ManualClock  # noqa: E402
from gateway.decode.message import DeviceMessage  # noqa: E402
from gateway.headcount import (  # noqa: E402
    HeadcountBatch,
    HeadcountEngine,
    HeadcountSettings,
    build_batch,
)
from gateway.ingest.topic import DeviceTopic  # noqa: E402
from gateway.site import SiteModel  # noqa: E402
from tests.headcount.reference import ReferenceHeadcount  # noqa: E402

T0 = 1_795_475_306_083
LATENESS_S = 120
I64 = np.ndarray[Any, np.dtype[np.int64]]


def make_site(n: int) -> SiteModel:
    """n checkpoints: 40 % reader + camera, 40 % reader only, 20 % camera only; a third of
    the cameras report cumulative counters (their ids start with HIK-)."""
    buildings = [{"id": f"b{i:03d}"} for i in range(max(n // 2, 1))]
    cps = []
    for i in range(n):
        kind = i % 5
        cp: dict[str, Any] = {"id": f"cp{i:03d}", "building": "gates"}
        if kind < 4:
            cp["doors"] = [f"cp{i:03d}-d1"]
            cp["access"] = [f"AC-{i:03d}"]
        if kind < 2 or kind == 4:
            cp["cameras"] = [f"{'HIK' if i % 3 == 0 else 'CAM'}-{i:03d}"]
        if i % 4 == 1:
            cp["leads_to"] = [buildings[i // 2]["id"]]
        elif i % 4 == 2:
            cp["leads_to"] = [
                buildings[i // 2]["id"],
                buildings[(i // 2 + 1) % len(buildings)]["id"],
            ]
        cps.append(cp)
    return SiteModel.model_validate({"buildings": buildings, "checkpoints": cps})


class Workload:
    """The generated rows, per kind, in arrival order, and each row's arrival time."""

    def __init__(self, site: SiteModel, n: int, span_s: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        cps = site.checkpoints
        readers = np.array([i for i, c in enumerate(cps) if c.access], dtype=np.int64)
        period = np.array([i for i, c in enumerate(cps) if c.cameras and c.cameras[0][0] == "C"])
        cumulative = [i for i, c in enumerate(cps) if c.cameras and c.cameras[0][0] == "H"]
        self.arrival = T0 + np.sort(rng.integers(0, span_s * 1000, n, dtype=np.int64))
        self.kind = rng.choice(3, size=n, p=[0.70, 0.25, 0.05]).astype(np.int8)
        delay = np.zeros(n, dtype=np.int64)
        shuffled = rng.random(n)
        delay[shuffled < 0.05] = rng.integers(0, 60_000, int((shuffled < 0.05).sum()))
        delay[shuffled < 0.005] = 600_000  # beyond the lateness: counted as late
        ts = self.arrival - delay
        sw = self.kind == 0
        co = self.kind == 1
        cu = self.kind == 2
        ns, nc, nu = int(sw.sum()), int(co.sum()), int(cu.sum())
        # Codes: granted passage in / out dominate, then denied swipes, then no direction.
        codes = np.array([4, 7, 2, 10, 3], dtype=np.int64)
        self.swipe = (
            rng.choice(readers, ns),
            ts[sw],
            rng.choice(codes, ns, p=[0.45, 0.4, 0.08, 0.05, 0.02]),
        )
        self.count = (
            rng.choice(period, nc).astype(np.int64),
            ts[co],
            rng.poisson(2.0, nc).astype(np.int64),
            rng.poisson(1.8, nc).astype(np.int64),
        )
        # Cumulative reports: in time order per camera, totals running up per camera.
        cam_slot = rng.integers(0, len(cumulative), nu)
        order = np.argsort(cam_slot, kind="stable")
        inc_in = rng.poisson(2.0, nu).astype(np.int64)
        inc_out = rng.poisson(1.8, nu).astype(np.int64)
        tot_in = np.empty(nu, dtype=np.int64)
        tot_out = np.empty(nu, dtype=np.int64)
        tot_in[order] = _group_cumsum(inc_in[order], cam_slot[order]) + 10_000
        tot_out[order] = _group_cumsum(inc_out[order], cam_slot[order]) + 9_000
        self.cumulative_cps = np.array(cumulative, dtype=np.int64)
        self.cumulative_cams = [cps[i].cameras[0] for i in cumulative]
        self.cum = (cam_slot.astype(np.int64), self.arrival[cu], tot_in, tot_out)
        self.bounds = (np.cumsum(sw), np.cumsum(co), np.cumsum(cu))

    def batches(
        self, size: int, slots: I64, limit: int | None = None
    ) -> Iterator[tuple[int, HeadcountBatch]]:
        """(clock ms at arrival of the batch's last row, batch) for consecutive rows."""
        n = len(self.arrival) if limit is None else limit
        sb, cb, ub = self.bounds
        for start in range(0, n, size):
            end = min(start + size, n)
            s0, s1 = (int(sb[start - 1]) if start else 0), int(sb[end - 1])
            c0, c1 = (int(cb[start - 1]) if start else 0), int(cb[end - 1])
            u0, u1 = (int(ub[start - 1]) if start else 0), int(ub[end - 1])
            cam = self.cum[0][u0:u1]
            yield (
                int(self.arrival[end - 1]),
                HeadcountBatch(
                    swipe_checkpoint=self.swipe[0][s0:s1],
                    swipe_ts_ms=self.swipe[1][s0:s1],
                    swipe_code=self.swipe[2][s0:s1],
                    count_checkpoint=self.count[0][c0:c1],
                    count_ts_ms=self.count[1][c0:c1],
                    count_in=self.count[2][c0:c1],
                    count_out=self.count[3][c0:c1],
                    cumulative_camera=slots[cam],
                    cumulative_checkpoint=self.cumulative_cps[cam],
                    cumulative_ts_ms=self.cum[1][u0:u1],
                    cumulative_in=self.cum[2][u0:u1],
                    cumulative_out=self.cum[3][u0:u1],
                ),
            )


def _group_cumsum(values: I64, groups: Any) -> I64:
    """Running sums restarting at each group (rows sorted by group)."""
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    offsets = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, len(values)]))
    return total - offsets


def _set_clock(clock: ManualClock, wall_ms: int) -> None:
    step = wall_ms - clock.wall_ms()
    if step > 0:
        clock.advance(step / 1000)


def run_engine(
    site: SiteModel, work: Workload, size: int, limit: int | None = None
) -> dict[str, Any]:
    """Ingest every batch (timed) and tick after it (timed apart)."""
    clock = ManualClock(wall_ms=T0)
    engine = HeadcountEngine(site, HeadcountSettings(lateness_s=LATENESS_S), clock, site_id="bench")
    slots = np.array([engine.index.camera_slot(c) for c in work.cumulative_cams], dtype=np.int64)
    ingest_s = tick_s = 0.0
    rows = calls = records = 0
    flows: list[Any] = []
    for wall, batch in work.batches(size, slots, limit):
        _set_clock(clock, wall)
        t = time.perf_counter()
        out = engine.tick()  # closes what is due first, so ingest times counting alone
        t1 = time.perf_counter()
        engine.ingest(batch)
        t2 = time.perf_counter()
        ingest_s += t2 - t1
        tick_s += t1 - t
        rows += len(batch)
        calls += 1
        records += len(out.flows) + len(out.occupancy)
        if limit is not None:
            flows += out.flows
    return {
        "engine": engine,
        "clock": clock,
        "rows": rows,
        "calls": calls,
        "ingest_s": ingest_s,
        "tick_s": tick_s,
        "records": records,
        "flows": flows,
    }


def run_reference(site: SiteModel, work: Workload, size: int, limit: int) -> dict[str, Any]:
    clock = ManualClock(wall_ms=T0)
    ref = ReferenceHeadcount(site, HeadcountSettings(lateness_s=LATENESS_S), clock, site_id="bench")
    index = HeadcountEngine(site, HeadcountSettings(), clock, site_id="bench").index
    slots = np.array([index.camera_slot(c) for c in work.cumulative_cams], dtype=np.int64)
    ingest_s = 0.0
    rows = 0
    for wall, batch in work.batches(size, slots, limit):
        _set_clock(clock, wall)
        ref.advance(wall)  # closing windows is not counting: as for the engine
        t = time.perf_counter()
        ref.ingest(batch)
        ingest_s += time.perf_counter() - t
        rows += len(batch)
    return {"ref": ref, "clock": clock, "rows": rows, "ingest_s": ingest_s}


def same_results(engine_run: dict[str, Any], ref_run: dict[str, Any]) -> bool:
    """Close every window on both and compare the records and occupancy."""
    engine, ref = engine_run["engine"], ref_run["ref"]
    for run in (engine_run, ref_run):
        run["clock"].advance(2 * 3600)
    flows_e = engine_run["flows"] + engine.tick().flows
    flows_r = ref.tick().flows  # the reference keeps every closed window until a tick
    return bool(flows_e == flows_r and len(flows_e) > 0 and engine.occupancy() == ref.level)


def message_cost(site: SiteModel, n: int, seed: int) -> dict[str, float]:
    """build_batch over DeviceMessage objects like the decoder's: seconds per row."""
    rng = np.random.default_rng(seed)
    cps = site.checkpoints
    msgs: list[DeviceMessage] = []
    for i in range(n):
        cp = cps[int(rng.integers(0, len(cps)))]
        if cp.access and (not cp.cameras or i % 4):
            topic = DeviceTopic("bench", "gates", "access", cp.access[0], "event")
            msgs.append(
                DeviceMessage(
                    topic,
                    T0 + i,
                    "device",
                    T0 + i,
                    "swipe",
                    {"granted": True, "passage": True, "card_hash": "ab" * 16},
                    {"door": cp.doors[0], "dir": "in", "checkpoint": cp.id},
                )
            )
        else:
            topic = DeviceTopic("bench", "gates", "camera", cp.cameras[0], "event")
            msgs.append(
                DeviceMessage(
                    topic,
                    T0 + i,
                    "device",
                    T0 + i,
                    "line_crossing",
                    {
                        "in": 2,
                        "out": 1,
                        "period_s": 5.0,
                        "retransmission": False,
                        "cumulative": cp.cameras[0].startswith("HIK"),
                    },
                    {"checkpoint": cp.id},
                )
            )
    engine = HeadcountEngine(site, HeadcountSettings(), ManualClock(wall_ms=T0), site_id="bench")
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for start in range(0, n, 2000):
            build_batch(msgs[start : start + 2000], engine.index)
        best = min(best, time.perf_counter() - t)
    return {"build_ns_per_event": best / n * 1e9, "build_events_per_s": n / best}


def log(text: str) -> None:
    """Progress on stderr: stdout ends with the JSON line."""
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, help="rows (default 10,000,000; quick 200,000)")
    ap.add_argument("--checkpoints", type=int, default=300)
    ap.add_argument("--batch", type=int, default=50_000, help="rows per micro-batch (headline)")
    ap.add_argument(
        "--also-batches", default="2000,10000", help="other batch sizes, comma-separated"
    )
    ap.add_argument("--reference-events", type=int, help="default 200,000; quick 50,000")
    ap.add_argument("--messages", type=int, help="DeviceMessages for build_batch (200,000)")
    ap.add_argument("--rows-per-s", type=int, default=1400, help="rows per second of event time")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="small defaults: a run of seconds")
    args = ap.parse_args(argv)
    defaults = (200_000, 50_000, 20_000) if args.quick else (10_000_000, 200_000, 200_000)
    for name, value in zip(("events", "reference_events", "messages"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.events, args.checkpoints, args.batch, args.reference_events, args.rows_per_s) < 1:
        ap.error("--events, --checkpoints, --batch, --reference-events, --rows-per-s must be >= 1")
    span_s = max(1, args.events // args.rows_per_s)
    site = make_site(args.checkpoints)
    log(f"generating {args.events:,} rows over {args.checkpoints} checkpoints ...")
    work = Workload(site, args.events, span_s, args.seed)
    sizes = [args.batch, *(int(s) for s in args.also_batches.split(",") if s.strip())]
    by_size: dict[str, dict[str, float]] = {}
    headline: dict[str, Any] = {}
    for size in sizes:
        log(f"engine, batches of {size:,} ...")
        run = run_engine(site, work, size)
        by_size[str(size)] = {
            "events_per_s": run["rows"] / run["ingest_s"],
            "us_per_batch": run["ingest_s"] / run["calls"] * 1e6,
            "tick_us_per_batch": run["tick_s"] / run["calls"] * 1e6,
        }
        if size == args.batch:
            headline = run
    ref_n = min(args.reference_events, args.events)
    log(f"reference on the first {ref_n:,} rows ...")
    ref_run = run_reference(site, work, args.batch, ref_n)
    check = run_engine(site, work, args.batch, ref_n)
    equal = same_results(check, ref_run)
    log(f"build_batch over {args.messages:,} DeviceMessages ...")
    build = message_cost(site, args.messages, args.seed)
    engine_rate = headline["rows"] / headline["ingest_s"]
    ref_rate = ref_run["rows"] / ref_run["ingest_s"]
    stats = headline["engine"].stats()
    result = {
        "events": headline["rows"],
        "checkpoints": args.checkpoints,
        "batch_events": args.batch,
        "span_s": span_s,
        "engine_events_per_s": round(engine_rate),
        "engine_ingest_s": round(headline["ingest_s"], 4),
        "reference_events_per_s": round(ref_rate),
        "reference_subset_events": ref_run["rows"],
        "reference_extrapolated": ref_run["rows"] < headline["rows"],
        "ratio": round(engine_rate / ref_rate, 1),
        "reference_equal": equal,
        "tick_s": round(headline["tick_s"], 4),
        "tick_records": headline["records"],
        "by_batch_size": {k: {m: round(v, 1) for m, v in d.items()} for k, d in by_size.items()},
        "build_ns_per_event": round(build["build_ns_per_event"], 1),
        "build_events_per_s": round(build["build_events_per_s"]),
        "late_rows": sum(stats.late.values()),
        "early_rows": sum(stats.early.values()),
        "targets": {"engine_events_per_s": 30_000_000, "ratio": 20},
    }
    print(
        f"head-count kernel, {result['events']:,} rows over {args.checkpoints} checkpoints, "
        f"micro-batches of {args.batch:,}"
    )
    print(
        f"  engine ingest       {engine_rate / 1e6:10.1f} M rows/s ({headline['ingest_s']:.3f} s)"
    )
    print(
        f"  reference ingest    {ref_rate / 1e6:10.3f} M rows/s (first {ref_run['rows']:,} rows, "
        "extrapolated as a rate)"
    )
    print(f"  ratio               {engine_rate / ref_rate:10.1f} x   (same results: {equal})")
    for k, d in by_size.items():
        print(
            f"  batch {int(k):>7,}       {d['events_per_s'] / 1e6:10.1f} M rows/s, "
            f"{d['us_per_batch']:.0f} us per ingest, tick {d['tick_us_per_batch']:.0f} us"
        )
    print(f"  tick (records)      {headline['tick_s']:10.3f} s for {headline['records']:,} records")
    print(
        f"  build_batch         {build['build_ns_per_event']:10.0f} ns per DeviceMessage "
        f"({build['build_events_per_s'] / 1e6:.2f} M msgs/s, Python-bound)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
