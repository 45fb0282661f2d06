"""The systems under test as child processes: the gateway and the baselines.

Each is started against a fresh broker (and database), reports when it is subscribed, and
is stopped by PID (SIGTERM, then SIGKILL after a bound) with its peak RSS read first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import load_config
from tests.servers import MosquittoServer, free_port

ROOT = Path(__file__).resolve().parent.parent
BASELINES = ROOT / "bench" / "baselines.py"
START_TIMEOUT_S = 30.0
SPEECH_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0


class BenchError(Exception):
    """The benchmark cannot go on: a server or a system under test failed."""


class System(Protocol):
    """A process that takes messages from the broker (and writes them to InfluxDB)."""

    name: str
    proc: subprocess.Popen[bytes] | None
    start_notes: list[str]  # what starting it took that the result should say

    def start(self, broker: MosquittoServer, db: str | None) -> None: ...
    def stop(self) -> dict[str, Any]: ...


def rss_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a running process, in MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a running process has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_proc(proc: subprocess.Popen[bytes] | None) -> int | None:
    """SIGTERM, wait, SIGKILL: by PID, bounded."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
    return proc.returncode


class Baseline:
    """`bench/baselines.py KIND` in a child process, talking JSON lines on stdout."""

    def __init__(self, kind: str, topic: str, influx_url: str, expect: int, tag: str) -> None:
        self.name = kind
        self.kind = kind
        self._topic = topic
        self._influx_url = influx_url
        self._expect = expect
        self._client_id = f"bench-{kind}-{tag}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_notes: list[str] = []
        self.events: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.stderr_path: Path | None = None

    def start(self, broker: MosquittoServer, db: str | None) -> None:
        args = [
            sys.executable,
            str(BASELINES),
            self.kind,
            "--mqtt-port",
            str(broker.port),
            "--client-id",
            self._client_id,
            "--topic",
            self._topic,
            "--influx-url",
            self._influx_url,
            "--db",
            db or "none",
            "--expect",
            str(self._expect),
        ]
        self.stderr_path = broker.workdir / f"{self.kind}.err"
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.wait_event("ready", START_TIMEOUT_S):
            raise BenchError(
                f"{self.kind} baseline not subscribed in {START_TIMEOUT_S:.0f} s:"
                f" {self._stderr_tail()}"
            )

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                doc = json.loads(raw)
                with self._cond:
                    self.events[doc.get("event", "?")] = doc
                    self._cond.notify_all()

    def wait_event(self, event: str, timeout_s: float) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    event in self.events
                    or "error" in self.events
                    or (self.proc is not None and self.proc.poll() is not None)
                ),
                timeout_s,
            )
            return self.events.get(event)

    def _stderr_tail(self) -> str:
        err = self.events.get("error", {}).get("message", "")
        if self.stderr_path is not None and self.stderr_path.exists():
            err += self.stderr_path.read_text(errors="replace")[-1500:]
        return err or "(no output)"

    def stop(self) -> dict[str, Any]:
        rss = rss_mb(self.proc.pid) if self.proc else None
        code = stop_proc(self.proc)
        stats = self.wait_event("stopped", 5.0) or {}
        return {**stats, "exit_code": code, "rss_mb": rss}


class GatewayUnderTest:
    """`python -m gateway run` with the site config and per-run overrides.

    Its espeak-ng speech cache (a directory beside the spool) is `speech_dir`, shared by
    every gateway run of the bench, and the run starts once the gateway has warmed it: on
    a site that happens once, at installation, and the cache stays on disk across restarts.
    A cold cache would have espeak-ng render every zone's fire text (282 on the urban
    village, ~9 s of CPU) beside the messages being measured.
    """

    name = "gateway"

    def __init__(self, site: Path, influx_url: str, tag: str, speech_dir: Path) -> None:
        self._site = site
        self._influx_url = influx_url
        self._tag = tag
        self._speech_dir = speech_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = ""
        self.log: Path | None = None
        self.start_notes: list[str] = []

    def start(self, broker: MosquittoServer, db: str | None) -> None:
        api_port = free_port()
        self.api = f"http://127.0.0.1:{api_port}"
        overrides = [
            "mqtt.host=127.0.0.1",
            f"mqtt.port={broker.port}",
            f"mqtt.client_id=bench-gw-{self._tag}",
            f"spool.path={broker.workdir / 'spool.db'}",
            "influx.api=v1",
            f"influx.url={self._influx_url}",
            f"influx.database={db}",
            f"api.bind=127.0.0.1:{api_port}",
        ]
        args = [sys.executable, "-m", "gateway", "run", "--config", str(self._site)]
        for item in overrides:
            args += ["--set", item]
        self._speech_dir.mkdir(exist_ok=True)
        (broker.workdir / "speech").symlink_to(self._speech_dir, target_is_directory=True)
        self.log = broker.workdir / "gateway.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"gateway exited with {self.proc.returncode} at start:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                if self.status().get("mqtt_connected"):
                    break
            if time.monotonic() > deadline:
                raise BenchError(
                    f"gateway not connected in {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        # The gateway publishes its retained `online` status right after SUBSCRIBE on the
        # same connection, so seeing it means the broker already routes device topics to it.
        cfg = load_config(self._site)
        status_topic = f"{cfg.mqtt.root}/{cfg.gateway.site}/gateway/status"
        if not wait_for_message(broker.port, status_topic, b'"online"', START_TIMEOUT_S):
            raise BenchError(f"gateway never published `online` on {status_topic}")
        self._wait_for_speech()

    def _wait_for_speech(self) -> None:
        started = time.monotonic()
        speech: dict[str, Any] = {}
        while time.monotonic() - started < SPEECH_TIMEOUT_S:
            speech = self.status().get("speech_cache") or {}
            if speech.get("state") not in {"pending", "warming"}:
                break
            time.sleep(0.2)
        waited = time.monotonic() - started
        state = speech.get("state", "not reported")
        if state != "warm":
            self.start_notes.append(f"gateway speech cache {state} after {waited:.0f} s")
        elif waited >= 1:
            self.start_notes.append(
                f"gateway warmed its speech cache ({speech.get('texts')} texts) in {waited:.0f} s"
                " before the run"
            )

    def log_tail(self, chars: int = 3000) -> str:
        if self.log is None or not self.log.exists():
            return "(no log)"
        return self.log.read_text(errors="replace")[-chars:]

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=5) as resp:
            return bytes(resp.read())

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self._get("/api/v1/status"))
        return doc

    def metrics(self) -> str:
        return self._get("/metrics").decode()

    def stop(self) -> dict[str, Any]:
        info: dict[str, Any] = {"rss_mb": rss_mb(self.proc.pid) if self.proc else None}
        with contextlib.suppress(OSError, ValueError):
            info["status"] = self.status()
        with contextlib.suppress(OSError):
            info["metrics"] = self.metrics()
        info["exit_code"] = stop_proc(self.proc)
        if info["exit_code"] not in (0, None):
            info["log_tail"] = self.log_tail(1500)
        return info


def wait_for_message(port: int, topic: str, needle: bytes, timeout_s: float) -> bool:
    """True once a message on `topic` containing `needle` arrives (retained ones count)."""
    seen = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{os.getpid()}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)

    def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        if needle in msg.payload:
            seen.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return seen.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
