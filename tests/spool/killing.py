"""Run a spool child process and SIGKILL it mid-work (the crash tests' shared harness)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(child: Path, args: list[str], delay_s: float) -> list[int]:
    """Start `child` with `args`, wait for its `ready` line, SIGKILL it after `delay_s`;
    the batch numbers it had reported done (complete lines only) before it died."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(child), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready = proc.stdout.readline()
        assert ready == "ready\n", f"child failed to start: {ready!r} {proc.stderr.read()!r}"
        time.sleep(delay_s)
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    return [int(line) for line in out.splitlines(keepends=True) if line.endswith("\n")]
