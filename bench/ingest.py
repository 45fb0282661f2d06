"""Ingest benchmark: the gateway next to three baselines, on the same messages, in one run.

Usage: python bench/ingest.py [--msgs 200000] [--quick] [--out FILE] [--site FILE]

Publishes N mixed device messages (QoS 1, as fast as the publisher can) through a fresh
Mosquitto into each system under test and on into a fresh InfluxDB 1.x database:
the gateway (`python -m gateway run`), a batched paho bridge, a naive paho bridge (one
HTTP write per message, on a bounded subset) and a counting subscriber (the broker's
ceiling). Then a fixed offered load (1,000 msgs/s) into the gateway and the batched
bridge for the publish → queryable latency. Prints a table; the LAST line is one JSON
object with every number (see bench/README.md for what each means and the method).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from report import RunResult, print_table, summarize  # noqa: E402
from rich.console import Console  # noqa: E402
from systems import (  # noqa: E402
    START_TIMEOUT_S,
    Baseline,
    BenchError,
    GatewayUnderTest,
    System,
    cpu_s,
    stop_proc,
)
from visibility import PollPlan, PollResult, count_points, poll_process, visible_ns  # noqa: E402
from workload import Workload, make_workload  # noqa: E402

from gateway.config import load_config  # noqa: E402
from gateway.errors import GatewayError  # noqa: E402
from gateway.sim.publisher import PublishReport, publish  # noqa: E402
from gateway.sim.wire import PublishError  # noqa: E402
from tests.servers import InfluxDBServer, MosquittoServer, start_influxdb, start_mosquitto  # noqa: E402

DEFAULT_SITE = ROOT / "deploy" / "sites" / "urban-village.toml"
PUBLISHER_BOUND = 0.85  # a system this close to the publisher's rate is publisher-bound
console = Console(stderr=True)


# --- one run: a fresh broker and database, one system, one workload ------------------------


@dataclass(frozen=True)
class Phase:
    """How a run is driven and bounded."""

    name: str
    rate_per_s: float | None  # None: as fast as the publisher can
    poll_interval_s: float  # the completion check (ends the sustained-rate clock)
    tracer_interval_s: float  # the latency statements (bench/visibility.py)
    stall_s: float
    timeout_s: float


class Bench:
    """Owns the servers and every child process; `close()` stops them all by PID."""

    def __init__(self, workdir: Path, keep_data: bool) -> None:
        self.workdir = workdir
        self.keep_data = keep_data
        self.influx: InfluxDBServer | None = None
        self._brokers: list[MosquittoServer] = []
        self._systems: list[System] = []
        self._pollers: list[Any] = []
        self._runs = 0

    def start(self) -> None:
        (self.workdir / "influxdb").mkdir()
        self.influx = _started(lambda: start_influxdb(self.workdir / "influxdb"), "InfluxDB")

    def close(self) -> None:
        for system in self._systems:
            with contextlib.suppress(Exception):
                stop_proc(system.proc)
        for proc in self._pollers:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for broker in self._brokers:
            with contextlib.suppress(Exception):
                broker.stop()
        if self.influx is not None:
            self.influx.stop()

    def run(self, system: System, work: Workload, phase: Phase) -> RunResult:
        """Publish `work` into `system` and measure; see the module doc."""
        assert self.influx is not None
        self._runs += 1
        rundir = self.workdir / f"{self._runs:02d}-{system.name}-{phase.name}"
        rundir.mkdir()
        broker = _started(lambda: start_mosquitto(rundir), "Mosquitto")
        self._brokers.append(broker)
        writes = system.name != "ceiling"
        db = f"bench_{self._runs:02d}_{system.name}" if writes else None
        result = RunResult(
            system.name,
            phase.name,
            len(work.messages),
            offered_per_s=phase.rate_per_s,
            expected=len(work.messages),
        )
        console.print(
            f"[bold]{system.name}[/] ({phase.name}): {len(work.messages):,} messages"
            + (f" at {phase.rate_per_s:,.0f}/s" if phase.rate_per_s else "")
        )
        try:
            if db:
                self.influx.create_database(db)
            self._systems.append(system)
            system.start(broker, db)
            result.notes += system.start_notes
            poller = self._start_poller(work, db, phase) if db else None
            cpu = _CpuMeter(system.proc.pid if system.proc else None, self.influx.pid)
            report = publish(
                "127.0.0.1",
                broker.port,
                iter(work.messages),
                phase.rate_per_s,
                qos=1,
                client_id=f"bench-pub-{self._runs}-{os.getpid()}",
                total=len(work.messages),
                max_pending=20_000,
                ack_timeout_s=60.0,
            )
            result.publisher_msgs_per_s = report.rate_per_s
            if report.acked != len(work.messages):
                result.notes.append(
                    f"broker acknowledged {report.acked:,} of {len(work.messages):,} publishes"
                )
            t0 = int(report.sent_ns[0])
            if poller is None:
                assert isinstance(system, Baseline)
                done = system.wait_event("done", phase.stall_s)
                result.cpu_s, _ = cpu.used()
                result.info = system.stop()
                self._score_ceiling(done, report, result)
            else:
                proc, conn, published, stop = poller
                published.set()
                polled = _receive(conn, phase.timeout_s + 30)
                stop.set()
                proc.join(5)
                stopped_ns = time.time_ns()
                result.cpu_s, result.db_cpu_s = cpu.used()
                result.info = system.stop()
                self._score(work, report, polled, db, result, t0, stopped_ns)
            result.rss_mb = result.info.get("rss_mb")
            if result.info.get("exit_code") not in (0, None):
                result.notes.append(
                    f"exited with code {result.info['exit_code']};"
                    f" log tail: {result.info.get('log_tail', '')[-600:]}"
                )
        finally:
            stop_proc(system.proc)
            broker.stop()
            if db and not self.keep_data:
                with contextlib.suppress(Exception):
                    self.influx.drop_database(db)
        return result

    def _start_poller(self, work: Workload, db: str, phase: Phase) -> tuple[Any, Any, Any, Any]:
        assert self.influx is not None
        ctx = mp.get_context("spawn")
        recv, send = ctx.Pipe(duplex=False)
        published, stop = ctx.Event(), ctx.Event()
        plan = PollPlan(
            url=self.influx.url,
            db=db,
            tracer_buildings=work.tracer_buildings(),
            measurements=tuple(sorted(set(work.measurement))),
            finals=work.finals(),
            since_ms=int(work.ts_ms.min()),
            interval_s=phase.poll_interval_s,
            tracer_interval_s=phase.tracer_interval_s,
            stall_s=phase.stall_s,
            timeout_s=phase.timeout_s,
        )
        proc = ctx.Process(target=poll_process, args=(plan, published, stop, send), daemon=True)
        proc.start()
        self._pollers.append(proc)
        send.close()
        if not recv.poll(START_TIMEOUT_S) or recv.recv()[0] != "ready":
            raise BenchError("the InfluxDB poller process did not start")
        return proc, recv, published, stop

    def _score_ceiling(
        self, done: dict[str, Any] | None, report: PublishReport, result: RunResult
    ) -> None:
        t0 = int(report.sent_ns[0])
        if done is None:
            got, last = int(result.info.get("received", 0)), int(result.info.get("last_ns", 0))
            result.ended = f"counted {got:,} of {result.msgs:,}"
            result.msgs_per_s = got / ((last - t0) / 1e9) if last > t0 else None
        else:
            result.ended = "complete"
            got = int(done["count"])
            result.msgs_per_s = result.msgs / ((int(done["last_ns"]) - t0) / 1e9)
        result.landed, result.lost = got, max(0, result.msgs - got)
        _note_publisher_bound(result, report)

    def _score(
        self,
        work: Workload,
        report: PublishReport,
        polled: PollResult | str,
        db: str | None,
        result: RunResult,
        t0: int,
        stopped_ns: int,
    ) -> None:
        assert self.influx is not None and db is not None
        if isinstance(polled, str):
            raise BenchError(f"InfluxDB poller failed: {polled}")
        result.ended = polled.ended
        if polled.errors:
            result.notes.append(f"{len(polled.errors)} poll error(s), first: {polled.errors[0]}")
        expected = work.expected()
        found = _settled_counts(self.influx.url, db, expected)
        result.landed = sum(found.get(m, 0) for m in expected)
        result.lost = sum(max(0, n - found.get(m, 0)) for m, n in expected.items())
        result.duplicated = sum(max(0, found.get(m, 0) - n) for m, n in expected.items())
        result.extra = {m: n for m, n in found.items() if m not in expected}
        if polled.complete_ns is not None:
            result.msgs_per_s = result.msgs / ((polled.complete_ns - t0) / 1e9)
        else:
            end = polled.last_progress_ns if "stalled" in polled.ended else stopped_ns
            result.msgs_per_s = result.landed / ((end - t0) / 1e9) if end > t0 else None
            result.notes.append(f"incomplete ({polled.ended}): rate = points landed / time")
        # Latency of the tracer messages (see bench/visibility.py).
        sent = report.sent_ns
        n = min(len(sent), len(work.messages))
        tracer = work.tracer_mask()[:n]
        names = np.array(work.measurement[:n], dtype=object)
        lat: list[np.ndarray] = []
        for m, changes in polled.changes.items():
            idx = np.flatnonzero(tracer & (names == m))
            seen = visible_ns(changes, work.ts_ms[idx])
            ok = seen >= 0
            lat.append((seen[ok] - sent[idx[ok]]) / 1e6)
        all_lat = np.concatenate(lat) if lat else np.zeros(0)
        result.samples = len(all_lat)
        unseen = int(tracer.sum()) - result.samples
        if unseen:
            result.notes.append(f"{unseen:,} sampled messages were never seen by the poller")
        if len(all_lat):
            result.p50_ms = float(np.percentile(all_lat, 50))
            result.p99_ms = float(np.percentile(all_lat, 99))
        result.resolution_ms = _resolution_ms(polled)
        if result.offered_per_s is None:
            _note_publisher_bound(result, report)


class _CpuMeter:
    """CPU seconds the system's process and influxd use from now on."""

    def __init__(self, system_pid: int | None, influx_pid: int) -> None:
        self._system = (system_pid, cpu_s(system_pid) if system_pid else None)
        self._influx = (influx_pid, cpu_s(influx_pid))

    def used(self) -> tuple[float | None, float | None]:
        """(system, influxd) CPU seconds since the meter was made; None if unreadable."""
        return _delta(*self._system), _delta(*self._influx)


def _delta(pid: int | None, start: float | None) -> float | None:
    now = cpu_s(pid) if pid else None
    return now - start if now is not None and start is not None else None


def _note_publisher_bound(result: RunResult, report: PublishReport) -> None:
    """Say so when a system took messages as fast as the publisher could offer them."""
    if result.msgs_per_s and report.rate_per_s:
        share = result.msgs_per_s / report.rate_per_s
        if share >= PUBLISHER_BOUND:
            result.notes.append(
                f"{share:.0%} of the publisher's own rate ({report.rate_per_s:,.0f} msgs/s):"
                " the publisher, not this system, is the bottleneck"
            )


def _resolution_ms(polled: PollResult) -> float | None:
    """Mean time between two tracer polls: how late a visibility stamp can be."""
    stamps = polled.tracer_polls_ns
    if len(stamps) < 2:
        return None
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1) / 1e6


def _started(start: Callable[[], Any], what: str) -> Any:
    """Start a test server; its pytest-style failure becomes a BenchError."""
    try:
        return start()
    except BaseException as exc:  # tests.servers fails with pytest's Failed (BaseException)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise BenchError(f"{what} did not start: {exc}") from None


def _receive(conn: Any, timeout_s: float) -> PollResult | str:
    if not conn.poll(timeout_s):
        return f"no result within {timeout_s:.0f} s"
    kind, payload = conn.recv()
    return payload if kind in ("result", "error") else f"unexpected {kind!r}"


def _settled_counts(url: str, db: str, expected: dict[str, int]) -> dict[str, int]:
    """Point counts, re-read for a few seconds while they still change and fall short."""
    counts = count_points(url, db)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and any(counts.get(m, 0) < n for m, n in expected.items()):
        time.sleep(1.0)
        again = count_points(url, db)
        if again == counts:
            break
        counts = again
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--msgs",
        type=int,
        default=None,
        help="messages per full-load run (default 200,000; --quick: 20,000)",
    )
    p.add_argument("--quick", action="store_true", help="small, fast version for CI (< 90 s)")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")
    p.add_argument("--site", type=Path, default=DEFAULT_SITE, help="site config TOML")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fixed-rate", type=float, default=1000.0, help="offered load, msgs/s")
    p.add_argument("--fixed-seconds", type=float, help="default 10 (--quick: 5)")
    p.add_argument("--naive-msgs", type=int, help="naive subset (default 10,000; --quick 2,000)")
    p.add_argument("--naive-seconds", type=float, help="naive time cap (60; --quick 15)")
    p.add_argument("--keep", action="store_true", help="keep the work dir and the databases")
    args = p.parse_args(argv)
    if args.msgs is None:
        args.msgs = 20_000 if args.quick else 200_000
    args.fixed_seconds = args.fixed_seconds or (5.0 if args.quick else 10.0)
    args.naive_msgs = min(args.msgs, args.naive_msgs or (2_000 if args.quick else 10_000))
    args.naive_seconds = args.naive_seconds or (15.0 if args.quick else 60.0)
    if args.msgs < 100:
        p.error(f"--msgs {args.msgs}: need at least 100 messages")
    if not args.fixed_rate > 0 or not args.fixed_seconds > 0:
        p.error("--fixed-rate and --fixed-seconds must be > 0")
    return args


def _interrupt(_sig: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (0: ran, 1: a system failed, 2: bad input)."""
    args = parse_args(argv)
    try:
        cfg = load_config(args.site)
    except GatewayError as exc:
        console.print(f"[red]bench: {exc}[/]")
        return 2
    quick = args.quick
    topic = f"{cfg.mqtt.root}/{cfg.gateway.site}/+/+/+/+"
    console.print(f"generating {args.msgs:,} messages for site {cfg.gateway.site!r} ({args.site})")
    work = make_workload(cfg, args.msgs, args.seed, alarm_every=1000)
    fixed = make_workload(cfg, round(args.fixed_rate * args.fixed_seconds), args.seed + 1, 0)
    full = Phase("full", None, 0.05, 0.25, 15.0 if quick else 30.0, 120.0 + args.msgs / 500)
    naive = Phase("subset", None, 0.05, 0.25, 10.0, args.naive_seconds)
    at_rate = Phase("fixed", args.fixed_rate, 0.010, 0.010, 15.0, args.fixed_seconds + 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    bench = Bench(workdir, args.keep)
    signal.signal(signal.SIGTERM, _interrupt)
    tag = str(os.getpid())
    runs: dict[str, RunResult] = {}
    keep_logs = args.keep
    try:
        bench.start()
        assert bench.influx is not None
        url = bench.influx.url
        speech = workdir / "speech"  # the gateways' espeak-ng cache, warmed once
        plan: list[tuple[str, System, Workload, Phase]] = [
            ("ceiling", Baseline("ceiling", topic, url, len(work.messages), tag), work, full),
            ("gateway", GatewayUnderTest(args.site, url, f"{tag}-full", speech), work, full),
            ("batched", Baseline("batched", topic, url, 0, tag), work, full),
            ("naive", Baseline("naive", topic, url, 0, tag), work.head(args.naive_msgs), naive),
            (
                "gateway_fixed",
                GatewayUnderTest(args.site, url, f"{tag}-fixed", speech),
                fixed,
                at_rate,
            ),
            ("batched_fixed", Baseline("batched", topic, url, 0, f"{tag}-fixed"), fixed, at_rate),
        ]
        for key, system, workload, phase in plan:
            runs[key] = bench.run(system, workload, phase)
    except (BenchError, PublishError) as exc:
        console.print(f"[red]bench: {exc}[/]")
        keep_logs = True  # the logs say what failed
        return 1
    except KeyboardInterrupt:
        console.print("[red]bench: interrupted[/]")
        return 130
    finally:
        bench.close()
        if keep_logs:
            console.print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(runs, args.msgs, args.naive_msgs, args.fixed_rate, work.alarms)
    print_table(runs, summary)
    line = json.dumps(summary, ensure_ascii=False)
    if args.out:
        args.out.write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
