"""The vision benchmark's quick form, run for real: it reports every number it promises.

No timing thresholds (CI machines differ); the numbers must exist, be positive, and agree
with each other where they are derived from one another.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("gate_fps", "detector_fps", "pipeline_fps", "gate_saving_ratio", "cameras_at_5fps")


def test_quick_vision_bench_reports_its_keys() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "vision.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    missing = [k for k in REQUIRED if k not in result]
    assert not missing, missing
    for key in ("gate_fps", "detector_fps", "pipeline_fps", "pipeline_ungated_fps"):
        assert result[key] > 0, key
    ratio = result["pipeline_fps"] / result["pipeline_ungated_fps"]
    assert abs(result["gate_saving_ratio"] - ratio) < 0.02 * ratio + 0.01
    assert 0 < result["gate_pass_fraction"] < 1  # some frames moved, not all
    assert isinstance(result["cameras_at_5fps"], int)
    assert isinstance(result["sustains_4_cameras_at_5fps"], bool)
