"""`community-gateway demo` shows data flowing within 15 s with no broker or database."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import wait_until


def test_demo_shows_data_flowing_within_15_s(tmp_path: Path) -> None:
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--api-port", "0", "--rate", "200"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    try:
        wait_until(lambda: b"dashboard:" in out_path.read_bytes(), 15, what="dashboard URL")
        url = re.search(rb"dashboard:\s+(http://\S+)/", out_path.read_bytes())
        assert url is not None
        base = url.group(1).decode()

        def stored() -> int:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/status", timeout=2) as r:
                    return int(json.loads(r.read())["committed"])
            except OSError:
                return 0

        wait_until(lambda: stored() > 100, 15 - (time.monotonic() - started), what="data flowing")
        with urllib.request.urlopen(f"{base}/", timeout=2) as r:
            assert "社区网关" in r.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, out_path.read_text()
    assert "Traceback" not in out_path.read_text()
