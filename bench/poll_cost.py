"""What the ingest benchmark's InfluxDB poller costs the server it measures.

Usage: python bench/poll_cost.py [--msgs 50000] [--rate 10000] [--interval-ms 25]

Writes the workload's points (bridge encoding, 500 per request, paced to `--rate`) into a
fresh InfluxDB 1.x, once per poll mode, while a thread sends the poller's statements every
`--interval-ms`, and prints influxd's CPU seconds for each mode next to writing alone:
`tracers` (the latency statements of bench/visibility.py), `finals` (its completion
statements), both, and `all series` (the tracer statement without the building filter).
bench/visibility.py runs the tracer statements less often at full load because of this.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from baselines import to_line  # noqa: E402
from systems import cpu_s  # noqa: E402
from workload import Workload, make_workload  # noqa: E402

from gateway.config import load_config  # noqa: E402
from tests.servers import InfluxDBServer, start_influxdb  # noqa: E402

MODES = ("none", "tracers", "finals", "tracers+finals", "all series")


def statements(work: Workload, mode: str, newest: dict[str, int]) -> list[str]:
    """The poller's statements for one poll in `mode` (see bench/visibility.py)."""
    regex = "|".join(work.tracer_buildings())
    out: list[str] = []
    measurements = sorted(set(work.measurement))
    if "tracers" in mode:
        out += [
            f'SELECT * FROM "{m}" WHERE "building" =~ /^({regex})$/'
            f" AND time > {newest.get(m, 0)}ms ORDER BY time DESC LIMIT 1"
            for m in measurements
        ]
    if "finals" in mode:
        out += [
            f'SELECT * FROM "{m}" WHERE "device" = \'{dev}\' AND time >= {ts}ms LIMIT 1'
            for m, dev, ts in work.finals()
        ]
    if mode == "all series":
        out += [f'SELECT * FROM "{m}" ORDER BY time DESC LIMIT 1' for m in measurements]
    return out


def run(influx: InfluxDBServer, work: Workload, lines: list[str], mode: str, args: Any) -> str:
    db = "poll_" + mode.replace(" ", "_").replace("+", "_")
    influx.create_database(db)
    stop = threading.Event()
    polls: list[float] = []

    def poller() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", influx.port, timeout=30)
        newest: dict[str, int] = {}
        while not stop.is_set():
            stmts = statements(work, mode, newest)
            if stmts:
                t = time.perf_counter()
                body = urllib.parse.urlencode({"db": db, "q": ";".join(stmts), "epoch": "ms"})
                conn.request(
                    "POST", "/query", body, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                conn.getresponse().read()
                polls.append(time.perf_counter() - t)
            time.sleep(args.interval_ms / 1000)

    thread = threading.Thread(target=poller, daemon=True)
    conn = http.client.HTTPConnection("127.0.0.1", influx.port, timeout=30)
    c0 = cpu_s(influx.pid) or 0.0
    thread.start()
    t0 = time.perf_counter()
    for i in range(0, len(lines), 500):
        conn.request("POST", f"/write?db={db}&precision=ms", "\n".join(lines[i : i + 500]))
        resp = conn.getresponse()
        resp.read()
        if resp.status != 204:
            raise SystemExit(f"write failed: {resp.status}")
        time.sleep(max(0.0, t0 + (i + 500) / args.rate - time.perf_counter()))
    wall = time.perf_counter() - t0
    stop.set()
    thread.join(30)
    used = (cpu_s(influx.pid) or 0.0) - c0
    rtt = sorted(polls)
    median = f"{1000 * rtt[len(rtt) // 2]:.1f} ms" if rtt else "–"
    return (
        f"{mode:15} influxd {used:5.2f} CPU s over {wall:4.1f} s ({used / wall:4.0%} of a core),"
        f" {len(polls)} polls, median poll {median}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--msgs", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--interval-ms", type=float, default=25.0)
    args = parser.parse_args()
    cfg = load_config(ROOT / "deploy" / "sites" / "urban-village.toml")
    work = make_workload(cfg, args.msgs, seed=7, alarm_every=1000)
    lines = [ln for m in work.messages if (ln := to_line(m.topic, m.payload)) is not None]
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        influx = start_influxdb(Path(tmp))
        try:
            for mode in MODES:
                print(run(influx, work, lines, mode, args), flush=True)
        finally:
            influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
