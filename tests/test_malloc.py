"""The gateway's glibc malloc settings apply on this (glibc) machine."""

from __future__ import annotations

import subprocess
import sys


def test_mallopt_settings_are_accepted() -> None:
    # In a fresh interpreter: the settings are process-wide and best made before threads.
    code = "from gateway import malloc; print(malloc.tune())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
