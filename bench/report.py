"""What one run measured, the JSON summary of the benchmark, and the table people read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table


@dataclass
class RunResult:
    """The numbers of one system on one workload."""

    system: str
    phase: str
    msgs: int
    msgs_per_s: float | None = None
    publisher_msgs_per_s: float = 0.0
    offered_per_s: float | None = None
    expected: int = 0
    landed: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    samples: int = 0
    resolution_ms: float | None = None
    ended: str = ""
    rss_mb: float | None = None
    cpu_s: float | None = None  # the system's own process, first publish → end of the run
    db_cpu_s: float | None = None  # influxd over the same span (the poller's queries included)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def alarm_lane_p99(info: dict[str, Any]) -> tuple[float | None, str]:
    """p99 of the gateway's alarm-lane latency, and how it was obtained."""
    samples = (info.get("status") or {}).get("alarm_lane_ms")
    if samples:
        return float(np.percentile(samples, 99)), (
            f"/api/v1/status alarm_lane_ms ({len(samples)} alarms, MQTT receive → fire hook;"
            f" p50 {np.percentile(samples, 50):.2f} ms, max {max(samples):.2f} ms)"
        )
    text = info.get("metrics") or ""
    buckets = [
        (float(le), float(v))
        for le, v in re.findall(
            r'^gateway_alarm_lane_latency_seconds_bucket\{le="([^"]+)"\}\s+(\S+)$', text, re.M
        )
    ]
    total = buckets[-1][1] if buckets else 0.0
    finite = [le for le, _ in buckets if le != float("inf")]
    for le, count in buckets:
        if total and count >= 0.99 * total:
            if le == float("inf"):
                return None, (
                    f"/metrics histogram: p99 above the largest bucket ({finite[-1] * 1000:g} ms)"
                )
            return le * 1000, (
                f"/metrics histogram gateway_alarm_lane_latency_seconds:"
                f" upper bound of the bucket holding the p99 ({total:.0f} alarms)"
            )
    return None, "no alarm-lane latency reported by the gateway"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def summarize(
    runs: dict[str, RunResult], n: int, naive_n: int, fixed_rate: float, alarms: int
) -> dict[str, Any]:
    """The JSON object of the last output line."""
    gw, ceiling, batched, naive = runs["gateway"], runs["ceiling"], runs["batched"], runs["naive"]
    gw_fixed, b_fixed = runs["gateway_fixed"], runs["batched_fixed"]
    alarm_p99, alarm_method = alarm_lane_p99(gw.info)
    status = gw.info.get("status") or {}
    notes = [
        f"naive bridge ran on a subset: the first {naive_n:,} of the {n:,} messages"
        f" ({naive.ended})",
        "latency = first poll that sees the point − publish time, sampled on the messages of"
        " one building in 12 per measurement (bench/visibility.py)",
    ]
    for r in runs.values():
        notes += [f"{r.system} ({r.phase}): {note}" for note in r.notes]
    return {
        "msgs": n,
        "gateway_msgs_per_s": _r(gw.msgs_per_s),
        "ceiling_msgs_per_s": _r(ceiling.msgs_per_s),
        "batched_msgs_per_s": _r(batched.msgs_per_s),
        "naive_msgs_per_s": _r(naive.msgs_per_s),
        "naive_subset_msgs": naive_n,
        "ratio_to_ceiling": _ratio(gw.msgs_per_s, ceiling.msgs_per_s),
        "ratio_to_batched": _ratio(gw.msgs_per_s, batched.msgs_per_s),
        "ratio_to_naive": _ratio(gw.msgs_per_s, naive.msgs_per_s),
        "expected": gw.expected,
        "landed": gw.landed,
        "lost": gw.lost,
        "duplicated": gw.duplicated,
        "gateway_extra_points": gw.extra,
        "p50_ms": _r(gw.p50_ms),
        "p99_ms": _r(gw.p99_ms),
        "fixed_rate_per_s": fixed_rate,
        "fixed_msgs": gw_fixed.msgs,
        "p50_ms_at_1000": _r(gw_fixed.p50_ms),
        "p99_ms_at_1000": _r(gw_fixed.p99_ms),
        "batched_p50_ms_at_1000": _r(b_fixed.p50_ms),
        "batched_p99_ms_at_1000": _r(b_fixed.p99_ms),
        "latency_resolution_ms": _r(gw_fixed.resolution_ms),
        "latency_resolution_ms_full_load": _r(gw.resolution_ms),
        "rss_mb": _r(gw.rss_mb),
        "alarms": alarms,
        "alarm_lane_p99_ms": _r(alarm_p99, 2),
        "alarm_lane_method": alarm_method,
        "publisher_msgs_per_s": _r(ceiling.publisher_msgs_per_s),
        "publisher_msgs_per_s_by_run": {k: _r(r.publisher_msgs_per_s) for k, r in runs.items()},
        "systems": {
            k: {
                "msgs": r.msgs,
                "msgs_per_s": _r(r.msgs_per_s),
                "landed": r.landed,
                "lost": r.lost,
                "duplicated": r.duplicated,
                "extra_points": r.extra,
                "p50_ms": _r(r.p50_ms),
                "p99_ms": _r(r.p99_ms),
                "latency_samples": r.samples,
                "rss_mb": _r(r.rss_mb),
                "cpu_s": _r(r.cpu_s, 2),
                "influxd_cpu_s": _r(r.db_cpu_s, 2),
                "ended": r.ended,
            }
            for k, r in runs.items()
        },
        "gateway_status": {
            "committed": status.get("committed"),
            "forwarded": (status.get("forwarder") or {}).get("forwarded"),
            "spool": status.get("spool"),
            "exit_code": gw.info.get("exit_code"),
        },
        "notes": notes,
    }


def print_table(runs: dict[str, RunResult], summary: dict[str, Any]) -> None:
    """The human-readable part of the output."""
    gw_rate = runs["gateway"].msgs_per_s
    table = Table(title=f"ingest benchmark: {summary['msgs']:,} messages, QoS 1")
    for col in (
        "system",
        "msgs",
        "msgs/s",
        "gw ÷ this",
        "landed",
        "lost",
        "dup",
        "p50 ms",
        "p99 ms",
        "publisher msgs/s",
        "peak RSS MB",
        "CPU s",
        "influxd CPU s",
        "ended",
    ):
        table.add_column(col, justify="left" if col in ("system", "ended") else "right")

    def fmt(x: float | None, spec: str = ",.0f") -> str:
        return "–" if x is None else format(x, spec)

    labels = {
        "ceiling": "broker ceiling (counter)",
        "gateway": "gateway",
        "batched": "batched bridge",
        "naive": "naive bridge (subset)",
        "gateway_fixed": f"gateway @ {summary['fixed_rate_per_s']:,.0f}/s",
        "batched_fixed": f"batched @ {summary['fixed_rate_per_s']:,.0f}/s",
    }
    for key, r in runs.items():
        ratio = _ratio(gw_rate, r.msgs_per_s) if key in ("ceiling", "batched", "naive") else None
        table.add_row(
            labels[key],
            fmt(r.msgs),
            fmt(r.msgs_per_s),
            fmt(ratio, ".2f"),
            fmt(r.landed),
            fmt(r.lost),
            fmt(r.duplicated),
            fmt(r.p50_ms, ",.1f"),
            fmt(r.p99_ms, ",.1f"),
            fmt(r.publisher_msgs_per_s),
            fmt(r.rss_mb, ",.0f"),
            fmt(r.cpu_s, ".1f"),
            fmt(r.db_cpu_s, ".1f"),
            r.ended,
        )
    out = Console(width=190)
    out.print(table)
    out.print(f"gateway extra points (not device messages): {summary['gateway_extra_points']}")
    out.print(
        f"alarm lane p99: {fmt(summary['alarm_lane_p99_ms'], '.2f')} ms over"
        f" {summary['alarms']} alarms — {summary['alarm_lane_method']}"
    )
    out.print(
        f"latency resolution: {fmt(summary['latency_resolution_ms'], '.1f')} ms at the"
        f" fixed load, {fmt(summary['latency_resolution_ms_full_load'], '.1f')} ms at full"
        " load (time between polls)"
    )
    for note in summary["notes"]:
        out.print(f"note: {note}")
