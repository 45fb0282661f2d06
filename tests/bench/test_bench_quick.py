"""The ingest benchmark: its quick form run for real, and its pure helpers.

No timing thresholds: a benchmark reports numbers, a test checks that they are reported
and that nothing was lost or duplicated on the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from gateway.config import GatewayConfig, parse_config
from gateway.sitegen import generate_site_toml

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))  # bench/ is a folder of scripts, not a package

from baselines import to_line  # noqa: E402
from ingest import make_workload  # noqa: E402
from visibility import visible_ns  # noqa: E402

REQUIRED_KEYS = (
    "msgs",
    "gateway_msgs_per_s",
    "ceiling_msgs_per_s",
    "batched_msgs_per_s",
    "naive_msgs_per_s",
    "ratio_to_ceiling",
    "ratio_to_batched",
    "ratio_to_naive",
    "lost",
    "duplicated",
    "p50_ms",
    "p99_ms",
    "p99_ms_at_1000",
    "rss_mb",
    "alarm_lane_p99_ms",
    "alarm_lane_method",
    "batched_p99_ms_at_1000",
    "publisher_msgs_per_s",
    "notes",
)
RATES = ("gateway_msgs_per_s", "ceiling_msgs_per_s", "batched_msgs_per_s", "naive_msgs_per_s")


def test_quick_benchmark_reports_every_number_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "ingest.py"), "--quick", "--msgs", "5000", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [k for k in REQUIRED_KEYS if k not in result] == []
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["msgs"] == 5000
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["landed"] == result["expected"] == 5000
    for key in RATES:
        assert result[key] > 0, key
    for key in ("ratio_to_ceiling", "ratio_to_batched", "ratio_to_naive", "rss_mb"):
        assert result[key] > 0, key
    for key in ("p50_ms", "p99_ms", "p99_ms_at_1000", "batched_p99_ms_at_1000"):
        assert isinstance(result[key], float), key
    assert result["alarms"] == 5
    assert result["alarm_lane_p99_ms"] is not None
    # The harness counts the baselines the same way: a lossless bridge must score lossless.
    for name in ("batched", "naive", "batched_fixed", "gateway_fixed"):
        system = result["systems"][name]
        assert (system["lost"], system["duplicated"]) == (0, 0), name
    assert result["systems"]["ceiling"]["landed"] == 5000
    # CPU seconds of each system's process and of influxd over its run are reported.
    for name in ("gateway", "batched", "naive", "ceiling"):
        assert result["systems"][name]["cpu_s"] > 0, name
    for name in ("gateway", "batched", "naive"):
        assert result["systems"][name]["influxd_cpu_s"] > 0, name


def test_bad_message_count_is_a_clear_error_not_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "ingest.py"), "--msgs", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--msgs 10: need at least 100 messages" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_visible_time_is_the_first_poll_that_saw_a_point_as_new() -> None:
    changes = [(100, 10), (200, 20), (300, 35)]
    ts = np.array([5, 10, 11, 20, 35, 36], dtype=np.int64)
    assert visible_ns(changes, ts).tolist() == [100, 100, 200, 200, 300, -1]
    assert visible_ns([], ts).tolist() == [-1] * 6


def test_bridge_lines_follow_the_gateway_schema() -> None:
    telemetry = to_line(
        "community/shazui/b01/smoke/SD-1/telemetry",
        b'{"ts":1795475306083,"smoke":0.12,"temp":24.5,"battery":87,"rssi":-71}',
    )
    assert telemetry == (
        "smoke,building=b01,device=SD-1,site=shazui"
        " smoke=0.12,temp=24.5,battery=87i,rssi=-71i 1795475306083"
    )
    swipe = to_line(
        "community/shazui/gates/access/AC-1/event",
        b'{"ts":5,"event":"swipe","card":"0012345678","door":"d1","dir":"in","granted":true}',
    )
    assert swipe == (
        'access_event,building=gates,device=AC-1,event=swipe,site=shazui door="d1",dir="in",'
        "granted=true 5"
    )
    status = to_line("community/shazui/b01/smoke/SD-1/status", b'"online"')
    assert status is not None and status.startswith("device_status,")
    assert ",kind=smoke," in status and 'state="online"' in status
    assert to_line("community/shazui/b01/smoke/SD-1", b"{}") is None
    assert to_line("community/shazui/b01/smoke/SD-1/telemetry", b"{not json") is None


def _small_site() -> GatewayConfig:
    text = generate_site_toml(
        "urban-village",
        site_id="benchsite",
        buildings=6,
        entrances=2,
        profiles_dir=Path("/nonexistent"),
    )
    return parse_config(text)


def test_workload_has_one_alarm_per_thousand_and_one_point_per_message() -> None:
    work = make_workload(_small_site(), 3000, seed=1, alarm_every=1000)
    assert len(work.messages) == 3000
    assert work.alarms == sum(m.is_alarm for m in work.messages) == 3
    assert sum(work.expected().values()) == 3000
    finals = {m: ts for m, _device, ts in work.finals()}
    for m in work.expected():
        assert finals[m] == max(
            msg.ts_ms for msg, mm in zip(work.messages, work.measurement, strict=True) if mm == m
        )
    # Every measurement has tracer messages, so every kind is sampled for latency.
    mask = work.tracer_mask()
    sampled = {mm for mm, on in zip(work.measurement, mask, strict=True) if on}
    assert sampled == set(work.expected())
    assert work.head(100).expected() == {
        m: work.measurement[:100].count(m) for m in set(work.measurement[:100])
    }
