"""When did each published message become queryable in InfluxDB, and what landed in the end.

The poller runs in its own process (so the publisher's GIL cannot delay its stamps) and,
every `tracer_interval_s`, sends one `/query` request with one statement per measurement:

    SELECT * FROM "m" WHERE "building" =~ /^(tracer buildings)$/ AND time > {newest seen}
    ORDER BY time DESC LIMIT 1

Querying every series of a measurement costs InfluxDB ~5 µs per series per poll (16 ms
for 3,000 detectors), which would load the server under test; restricting to a stratified
set of tracer buildings (one in 12) cuts that and still samples every message kind.
Messages carry increasing timestamps and every system writes them in order, so a tracer
message is visible from the first poll whose newest tracer point is at least as new.
A second set of statements watches the last message of each measurement: when all are
visible, the run is complete.

The poller must not load the server it measures. A tracer statement set costs InfluxDB
~10-20 ms of CPU per poll while points stream in (its cache holds every series written in
the last seconds): `python bench/poll_cost.py` (10,000 points/s, a poll every 25 ms) shows
influxd at 16 % of a core writing alone and 45 % with the poller's statements, and in the
full-load runs influxd took ~0.6 of the machine's 2 cores away from the system under test.
The completion statements are cheap (~1.5 ms) and run every `interval_s`; the tracer
statements run every `tracer_interval_s`, which at full load is longer (the latencies there
are seconds of queueing, and the resolution is reported).
"""

from __future__ import annotations

import http.client
import json
import signal
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np
import numpy.typing as npt

QUERY_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class PollPlan:
    """What the poller watches in one database."""

    url: str
    db: str
    tracer_buildings: tuple[str, ...]
    measurements: tuple[str, ...]
    # (measurement, device, ts_ms) of the last message of each measurement.
    finals: tuple[tuple[str, str, int], ...]
    since_ms: int
    interval_s: float  # completion statements
    tracer_interval_s: float  # tracer statements (at least interval_s)
    stall_s: float
    timeout_s: float


@dataclass(slots=True)
class PollResult:
    """What the poller saw: per measurement, (wall ns, newest tracer ts) at each advance."""

    changes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    complete_ns: int | None = None  # when the last message of every measurement was visible
    last_progress_ns: int = 0
    polls: int = 0
    tracer_polls_ns: list[int] = field(default_factory=list)  # wall ns of each tracer poll
    errors: list[str] = field(default_factory=list)
    ended: str = ""


class _Influx:
    """A keep-alive `/query` client."""

    def __init__(self, url: str, db: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 8086
        self._db = db
        self._conn: http.client.HTTPConnection | None = None

    def query(self, influxql: str, chunked: bool = False) -> Iterator[dict[str, Any]]:
        """The `results` of a (possibly multi-statement) query, chunk by chunk."""
        params = {"db": self._db, "q": influxql, "epoch": "ms"}
        if chunked:
            params |= {"chunked": "true", "chunk_size": "20000"}
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=QUERY_TIMEOUT_S)
        try:
            self._conn.request(
                "POST",
                "/query",
                urllib.parse.urlencode(params),
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            resp = self._conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = None
            raise
        if resp.status != 200:
            raise OSError(f"InfluxDB /query {resp.status}: {body[:300]!r}")
        for raw in body.splitlines():
            if not raw.strip():
                continue
            doc = json.loads(raw)
            if "error" in doc:
                raise OSError(f"InfluxDB /query: {doc['error']}")
            for result in doc.get("results", []):
                if "error" in result:
                    raise OSError(f"InfluxDB /query: {result['error']}")
                yield result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def poll(plan: PollPlan, published: Event, stop: Event) -> PollResult:
    """Poll until every final message is visible, progress stalls, or `stop`/timeout."""
    influx = _Influx(plan.url, plan.db)
    result = PollResult(changes={m: [] for m in plan.measurements})
    newest = dict.fromkeys(plan.measurements, plan.since_ms - 1)
    pending = list(plan.finals)
    regex = "|".join(plan.tracer_buildings)
    start = time.monotonic()
    last_progress = start
    next_tracer = start
    published_at: float | None = None
    try:
        while True:
            t_send = time.monotonic()
            # The last poll (after completion) always has the tracer statements.
            tracers = t_send >= next_tracer or result.complete_ns is not None
            statements = [
                f'SELECT * FROM "{m}" WHERE "building" =~ /^({regex})$/'
                f" AND time > {newest[m]}ms ORDER BY time DESC LIMIT 1"
                for m in (plan.measurements if tracers else ())
            ] + [
                f'SELECT * FROM "{m}" WHERE "device" = \'{dev}\' AND time >= {ts}ms LIMIT 1'
                for m, dev, ts in pending
            ]
            try:
                results = list(influx.query(";".join(statements)))
            except (OSError, ValueError) as exc:
                if len(result.errors) < 20:
                    result.errors.append(str(exc))
                results = []
            now_ns = time.time_ns()
            now = time.monotonic()
            result.polls += 1
            n_tracer = len(plan.measurements) if tracers else 0
            if tracers:
                next_tracer = t_send + plan.tracer_interval_s
                if results:
                    result.tracer_polls_ns.append(now_ns)
            progressed = False
            for i, res in enumerate(results[:n_tracer]):
                ts = _first_time(res)
                m = plan.measurements[i]
                if ts is not None and ts > newest[m]:
                    newest[m] = ts
                    result.changes[m].append((now_ns, ts))
                    progressed = True
            if results:
                seen = {
                    i for i, res in enumerate(results[n_tracer:]) if _first_time(res) is not None
                }
                if seen:
                    pending = [f for i, f in enumerate(pending) if i not in seen]
                    progressed = True
            if progressed:
                last_progress = now
                result.last_progress_ns = now_ns
            if result.complete_ns is not None:
                break  # this was the extra poll after completion
            if not pending:
                # One more poll: points that landed between this poll's statements would
                # otherwise be missed by the tracer statements that ran first.
                result.complete_ns = result.last_progress_ns
                result.ended = "complete"
                continue
            if published_at is None and published.is_set():
                published_at = now
            if stop.is_set():
                result.ended = "stopped"
                break
            if published_at is not None and now - max(last_progress, published_at) > plan.stall_s:
                result.ended = f"stalled: no new point for {plan.stall_s:.0f} s"
                break
            if now - start > plan.timeout_s:
                result.ended = f"timeout after {plan.timeout_s:.0f} s"
                break
            time.sleep(max(0.0, plan.interval_s - (time.monotonic() - t_send)))
    finally:
        influx.close()
    return result


def poll_process(plan: PollPlan, published: Event, stop: Event, conn: Connection) -> None:
    """Entry point of the poller process: sends `("ready",)` then `("result", PollResult)`."""
    # Ctrl-C reaches the whole process group; the harness stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(("ready",))
    try:
        conn.send(("result", poll(plan, published, stop)))
    except Exception as exc:  # the harness reports it; a poller crash must not hang the run
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _first_time(result: dict[str, Any]) -> int | None:
    for series in result.get("series", []):
        for values in series.get("values", []):
            return int(values[0])
    return None


def visible_ns(
    changes: Sequence[tuple[int, int]], ts_ms: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """For each timestamp, the wall ns of the first poll that saw a point at least as new.

    -1 where no poll ever did.
    """
    if not changes:
        return np.full(len(ts_ms), -1, dtype=np.int64)
    when = np.array([c[0] for c in changes], dtype=np.int64)
    newest = np.array([c[1] for c in changes], dtype=np.int64)
    k = np.searchsorted(newest, ts_ms, side="left")
    out = np.full(len(ts_ms), -1, dtype=np.int64)
    ok = k < len(newest)
    out[ok] = when[k[ok]]
    return out


def count_points(url: str, db: str) -> dict[str, int]:
    """Points per measurement (every row of `SELECT *`; a point is one row)."""
    influx = _Influx(url, db)
    try:
        names = [
            values[0]
            for res in influx.query("SHOW MEASUREMENTS")
            for series in res.get("series", [])
            for values in series.get("values", [])
        ]
        counts = {}
        for name in names:
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            counts[name] = sum(
                len(series.get("values", []))
                for res in influx.query(f'SELECT * FROM "{escaped}"', chunked=True)
                for series in res.get("series", [])
            )
        return counts
    finally:
        influx.close()
