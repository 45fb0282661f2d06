"""bench/fire.py's processes: the gateway as shipped, and the background traffic publisher."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from systems import BenchError, wait_for_message

from gateway.config import load_config
from tests.servers import MosquittoServer, free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
# Log lines of gateway.fire.delivery/audio that end the speech cache warm-up.
SPEECH_MARKERS = ("speech cache warm", "speech cache not warmed", "speech audio unavailable")


class GatewayProcess:
    """`python -m gateway run` as shipped, with the bench's broker, spool and API port."""

    def __init__(self, site: Path, broker: MosquittoServer, workdir: Path) -> None:
        self.api = f"http://127.0.0.1:{free_port()}"
        self.log = workdir / "gateway.log"
        overrides = [
            "mqtt.host=127.0.0.1",
            f"mqtt.port={broker.port}",
            f"mqtt.client_id=bench-fire-gw-{os.getpid()}",
            f"spool.path={workdir / 'spool.db'}",
            "influx.api=none",
            "api.enabled=true",
            "gateway.log_level=INFO",  # the speech warm-up is reported at INFO
            f"api.bind=127.0.0.1:{self.api.rsplit(':', 1)[1]}",
        ]
        args = [sys.executable, "-m", "gateway", "run", "--config", str(site)]
        for item in overrides:
            args += ["--set", item]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, status_topic: str, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"gateway exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                if self.status().get("mqtt_connected"):
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"gateway not connected in {START_TIMEOUT_S:.0f} s\n{self.tail()}")
            time.sleep(0.1)
        # `online` follows SUBSCRIBE on the gateway's connection: device topics reach it now.
        if not wait_for_message(port, status_topic, b'"online"', START_TIMEOUT_S):
            raise BenchError(f"gateway never published `online` on {status_topic}")

    def wait_speech(self, timeout_s: float) -> str:
        """Wait until the gateway has rendered its speech cache (as a deployed one has,
        long before a fire); returns how that ended, from the gateway's log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self.tail(1_000_000)
            for marker in SPEECH_MARKERS:
                if marker in log:
                    return marker
            if self.proc.poll() is not None:
                raise BenchError(f"gateway exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        return f"speech cache still warming after {timeout_s:.0f} s"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.api}/api/v1/status", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def committed(self) -> int:
        return int(self.status()["committed"])

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _background(
    site: str, port: int, rate: float | None, count: int, seed: int, stop: Any, conn: Any
) -> None:
    """Child process: publish `count` sim messages (at `rate`, None: flat out) until `stop`."""
    from gateway.sim.publisher import publish
    from gateway.sim.traffic import TrafficModel

    cfg = load_config(site)
    model = TrafficModel(cfg, seed)
    start_ms = time.time_ns() // 1_000_000

    def stream() -> Any:
        for i, msg in enumerate(model.messages(count, start_ms, rate or 10_000.0)):
            if i % 256 == 0 and stop.is_set():
                return
            yield msg

    try:
        report = publish(
            "127.0.0.1",
            port,
            stream(),
            rate,
            qos=1,
            client_id=f"bench-fire-bg-{os.getpid()}",
            max_pending=20_000,
            ack_timeout_s=60.0,
        )
        first = int(report.sent_ns[0]) if report.sent else 0
        conn.send({"sent": report.sent, "acked": report.acked, "first_ns": first,
                   "elapsed_s": report.elapsed_s, "rate": report.rate_per_s})  # fmt: skip
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


class Background:
    """The traffic publisher in its own process (its GIL is not the measurement's)."""

    def __init__(self, site: Path, port: int, rate: float | None, count: int, seed: int) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        args = (str(site), port, rate, count, seed, self._stop, send)
        self.proc = ctx.Process(target=_background, args=args, daemon=True)
        self.proc.start()
        send.close()

    def result(self, timeout_s: float) -> dict[str, Any]:
        if not self._recv.poll(timeout_s):
            raise BenchError(f"background publisher gave no result within {timeout_s:.0f} s")
        doc: dict[str, Any] = self._recv.recv()
        if "error" in doc:
            raise BenchError(f"background publisher failed: {doc['error']}")
        return doc

    def stop(self, timeout_s: float = 90.0) -> dict[str, Any]:
        self._stop.set()
        try:
            return self.result(timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(5)
