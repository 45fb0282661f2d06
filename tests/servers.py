"""Real servers for tests: Mosquitto, InfluxDB 1.x and VictoriaMetrics on free local ports.

Each server runs from a temp dir, listens on 127.0.0.1 only and is stopped by PID
(SIGTERM, then SIGKILL after a timeout). `stop()` and `start()` keep the port and the data
dir, so tests can take a server down and bring it back (outage and restart tests).
Every wait has a deadline: a server that does not come up fails the test with its log tail.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

MOSQUITTO_BIN = "/usr/sbin/mosquitto"
INFLUXD_BIN = "/usr/bin/influxd"
VICTORIA_BIN = "/usr/bin/victoria-metrics"
HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0

_running: set[_Server] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float,
    interval_s: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll `predicate` until it is truthy; raise TimeoutError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s:.1f} s")
        time.sleep(interval_s)


def port_open(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _require_binary(path: str, name: str, package: str) -> None:
    if shutil.which(path) is None:
        pytest.fail(
            f"{name} not installed ({path} missing): run .ci/run or apt-get install {package}",
            pytrace=False,
        )


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Server:
    """A child process with a fixed command line, a log file and a readiness probe."""

    name = "server"

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.host = HOST
        self.port = port
        self.log_path = workdir / f"{self.name}.out"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    @property
    def pid(self) -> int:
        """The running process's id; fails when the server is stopped."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} on port {self.port} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (or restart) on the same port and data dir; returns once it serves."""
        if self.running:
            return
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        _running.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            code = self._proc.poll()
            if code is not None or time.monotonic() >= deadline:
                self.stop()
                why = f"exited with {code}" if code is not None else "did not become ready"
                pytest.fail(
                    f"{self.name} on {HOST}:{self.port} {why} within {START_TIMEOUT_S:.0f} s;"
                    f" log {self.log_path}:\n{_log_tail(self.log_path)}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if it has not exited in STOP_TIMEOUT_S."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL now: a crash, not a clean shutdown."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def __repr__(self) -> str:
        return f"<{self.name} {HOST}:{self.port} running={self.running}>"


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when pytest exits without running finalizers."""
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


class MosquittoServer(_Server):
    """Mosquitto with persistence, unlimited in-flight/queued messages, logging to a file."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port or free_port())
        self.config_path = workdir / "mosquitto.conf"
        self.mosquitto_log = workdir / "mosquitto.log"
        (workdir / "data").mkdir(exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    f"listener {self.port} {HOST}",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {workdir / 'data'}/",
                    "max_inflight_messages 0",
                    "max_queued_messages 0",
                    # Running as root would drop to `mosquitto`, who cannot write our dirs.
                    f"user {getpass.getuser()}",
                    f"log_dest file {self.mosquitto_log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "",
                ]
            )
        )

    def command(self) -> list[str]:
        return [MOSQUITTO_BIN, "-c", str(self.config_path)]

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"


class _HttpServer(_Server):
    """A server spoken to over HTTP at `url`."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def http(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> tuple[int, bytes]:
        """One HTTP request; returns (status, body) for every status, raises on no answer."""
        query = f"?{urllib.parse.urlencode(list(params))}" if params else ""
        req = urllib.request.Request(f"{self.url}{path}{query}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def _probe(self, path: str) -> bool:
        try:
            status, _ = self.http("GET", path, timeout_s=1.0)
        except OSError:
            return False
        return status < 300


class InfluxDBServer(_HttpServer):
    """InfluxDB 1.x (`influxd -config`) with only its HTTP API and RPC port, both local."""

    name = "influxdb"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port or free_port())
        self.rpc_port = free_port()
        self.config_path = workdir / "influxdb.conf"
        # Graphite, collectd, OpenTSDB and UDP listeners are off unless enabled; ifql is
        # off by default in 1.6. Debian's build names the key `reporting-enabled`,
        # upstream `reporting-disabled`: unknown keys are ignored, so set both.
        self.config_path.write_text(
            f"""\
reporting-disabled = true
reporting-enabled = false
bind-address = "{HOST}:{self.rpc_port}"

[meta]
  dir = "{workdir / "meta"}"
  logging-enabled = false

[data]
  dir = "{workdir / "data"}"
  wal-dir = "{workdir / "wal"}"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{HOST}:{self.port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[ifql]
  enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def command(self) -> list[str]:
        return [INFLUXD_BIN, "-config", str(self.config_path)]

    def ready(self) -> bool:
        return self._probe("/ping")

    def _post_query(self, influxql: str, db: str | None = None) -> dict[str, Any]:
        params = [("q", influxql), ("epoch", "ms")]
        if db is not None:
            params.append(("db", db))
        status, body = self.http("POST", "/query", params)
        doc: dict[str, Any] = json.loads(body or b"{}")
        errors = [r["error"] for r in doc.get("results", []) if "error" in r]
        if status != 200 or "error" in doc or errors:
            raise AssertionError(f"InfluxQL {influxql!r} failed ({status}): {body[:500]!r}")
        return doc

    def create_database(self, name: str) -> None:
        self._post_query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self._post_query(f'DROP DATABASE "{name}"')

    def query(self, db: str, influxql: str) -> list[dict[str, Any]]:
        """Rows of every series the query returns, times in ms.

        Each row maps column -> value, plus the series' GROUP BY tags and `_measurement`.
        """
        doc = self._post_query(influxql, db)
        rows: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            for series in result.get("series", []):
                extra = {"_measurement": series.get("name"), **series.get("tags", {})}
                for values in series.get("values", []):
                    rows.append({**dict(zip(series["columns"], values, strict=True)), **extra})
        return rows


class VictoriaMetricsServer(_HttpServer):
    """Single-node VictoriaMetrics, accepting InfluxDB line protocol on /write and /api/v2/write.

    Deduplication (1 ms) makes a re-written point with the same series and timestamp one
    sample, as InfluxDB does.
    """

    name = "victoria-metrics"

    def command(self) -> list[str]:
        return [
            VICTORIA_BIN,
            f"-httpListenAddr={HOST}:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=WARN",
        ]

    def ready(self) -> bool:
        return self._probe("/health")

    def flush(self) -> None:
        """Make everything written so far searchable (VictoriaMetrics buffers ~1 s)."""
        status, body = self.http("GET", "/internal/force_flush")
        if status != 200:
            raise AssertionError(f"force_flush failed ({status}): {body[:300]!r}")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching the selector, as `/api/v1/export` JSON lines.

        Each item: {"metric": {"__name__": ..., labels...}, "values": [...], "timestamps": [...]}.
        """
        self.flush()
        status, body = self.http("POST", "/api/v1/export", [("match[]", match)])
        if status != 200:
            raise AssertionError(f"export {match!r} failed ({status}): {body[:300]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]


def start_mosquitto(workdir: Path) -> MosquittoServer:
    _require_binary(MOSQUITTO_BIN, "mosquitto", "mosquitto")
    server = MosquittoServer(workdir)
    server.start()
    return server


def start_influxdb(workdir: Path) -> InfluxDBServer:
    _require_binary(INFLUXD_BIN, "influxd", "influxdb")
    server = InfluxDBServer(workdir)
    server.start()
    return server


def start_victoria_metrics(workdir: Path) -> VictoriaMetricsServer:
    _require_binary(VICTORIA_BIN, "victoria-metrics", "victoria-metrics")
    server = VictoriaMetricsServer(workdir, free_port())
    server.start()
    return server
