"""bench/headcount.py runs and reports every number; no timing thresholds in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_reports_rates_and_matches_the_reference() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "headcount.py"), "--quick", "--events", "60000",
         "--reference-events", "20000", "--messages", "5000", "--batch", "20000",
         "--also-batches", "5000"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("events", "engine_events_per_s", "reference_events_per_s", "ratio",
                "build_ns_per_event", "tick_s", "by_batch_size"):  # fmt: skip
        assert key in result, key
    assert result["events"] == 60_000
    assert result["reference_equal"] is True
    assert result["engine_events_per_s"] > 0 and result["reference_events_per_s"] > 0
    assert set(result["by_batch_size"]) == {"20000", "5000"}
    assert result["late_rows"] > 0  # the workload exercises lateness
