"""The fire linkage benchmark: its quick form run for real, and what it expects per alarm.

No timing thresholds: the benchmark reports latencies; this checks that they are reported
and that every alarm produced its full set of linkage commands (and its teardown).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

from tests.fire_e2e.scene import LINKAGE, site_config

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "fire.py"
REQUIRED_KEYS = (
    "alarms",
    "p50_ms",
    "p99_ms",
    "background_msgs_per_s",
    "first_p50_ms",
    "first_p99_ms",
    "commands_per_alarm",
    "method",
    "complete",
    "teardown_complete",
    "extra_commands",
    "max_msgs_per_s",
    "background_offered_per_s",
    "target_p99_ms",
)


def _bench_module() -> ModuleType:
    # bench/ is a folder of scripts; load fire.py under a name no package can shadow.
    spec = importlib.util.spec_from_file_location("bench_fire", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fire"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_fire_benchmark_reports_latencies_and_every_alarm_is_fully_linked(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fire.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [k for k in REQUIRED_KEYS if k not in result] == []
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["alarms"] == result["complete"] == result["teardown_complete"] == 20
    assert result["extra_commands"] == 0
    assert result["commands_total"] == 20 * result["commands_per_alarm"]
    for key in ("p50_ms", "p99_ms", "first_p50_ms", "first_p99_ms", "text_p99_ms"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["first_p50_ms"] <= result["p50_ms"] <= result["p99_ms"]
    assert result["background_msgs_per_s"] > 0 and result["max_msgs_per_s"] > 0
    assert result["alarms_with_audio"] > 0  # the example site has plain amplifiers


def test_bad_alarm_count_is_a_clear_error_not_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--alarms", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--alarms 0: need at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_expected_commands_per_alarm_match_the_linkage_the_gateway_sends(
    tmp_path: Path,
) -> None:
    # The e2e tests check LINKAGE against the real gateway; the bench derives its own
    # expectation from the site model: both must agree on the same site.
    fire = _bench_module()
    cfg = site_config(1883, tmp_path / "spool.db", "benchsite", "x")
    prefix = "community/benchsite"
    topics = {
        dev: f"{prefix}/{b}/{kind}/{dev}/cmd"
        for b, kind, devs in [
            *((b.id, "screen", b.screens) for b in cfg.site.buildings),
            *((b.id, "voice", b.voice) for b in cfg.site.buildings),
            *((b.id, "access", b.access) for b in cfg.site.buildings),
            ("gates", "screen", cfg.site.gate_screens),
            *((cp.building, "access", cp.access) for cp in cfg.site.checkpoints),
        ]
        for dev in devs
    }
    found = {t.zone: t for t in fire.targets(cfg)}
    assert set(found) == {"b1-f3", "b2-f1"}  # the zones with a call point
    for zone, target in found.items():
        want = LINKAGE[zone]
        expected = Counter(
            [(topics[d], "show") for d in want["show"]]
            + [(topics[d], "say") for d in want["say"]]
            + [(topics[d], "release") for d in want["release"]]
        )
        assert target.linkage == expected, zone
        assert sum(target.teardown.values()) == sum(expected.values())
