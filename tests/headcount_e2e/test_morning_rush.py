"""A morning rush at the urban village through Mosquitto, the real gateway and InfluxDB.

The gateway runs as a child process on the example site (a crowding limit on one gate,
tailgating limits on another); the rush is published in real time, and its ground truth
(`gateway.sim.rush`, computed from the generated rows alone) says what every retained state,
closed window, occupancy sample and alert must be. The engine's start is known only to lie
between spawning the gateway and seeing it up: the outputs must equal the truth for a start
in that span (one bucket, unless start-up straddles a bucket boundary).
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.sim.rush import MorningRush, Rush
from tests.e2e.harness import GatewayProcess
from tests.headcount_e2e.live import Player, Watcher, by_target, wall_ms
from tests.headcount_e2e.site import (
    CROWD_AT,
    HEADCOUNT,
    INTERVAL_S,
    LATENESS_S,
    TAILGATE_AT,
    site_copy,
)
from tests.servers import InfluxDBServer, MosquittoServer, free_port, wait_until

EXPECTED_FLIPS = [
    ("crowding", "raised", CROWD_AT),
    ("tailgating", "raised", TAILGATE_AT),
    ("crowding", "cleared", CROWD_AT),
    ("tailgating", "cleared", TAILGATE_AT),
]
BUCKET_MS = 10_000  # the site's [headcount] bucket_s
MINUTE_MS = 60_000
SLACK_MS = 2_500  # how late a tick may come (the engine evaluates about once a second)
FLOW_FIELDS = ("in", "out", "net", "granted", "denied", "camera_in", "camera_out", "late",
               "early", "uncertain")  # fmt: skip


def _sleep_until_spawn_moment() -> None:
    """Start the gateway early in a bucket (so its start bucket is known) and in the first
    40 s of a minute (so the rush and that minute's window close within about a minute)."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        now = wall_ms()
        if 300 <= now % BUCKET_MS <= 6_000 and now % MINUTE_MS < 36_000:
            return
        time.sleep(0.05)
    raise AssertionError("no start moment in 40 s: the wall clock does not advance?")


def _api(gw: GatewayProcess, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{gw.api_port}{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _enter_head_count(gw: GatewayProcess, initial: dict[str, int]) -> int:
    """The night's head count through the API; when it was entered (never around a sample)."""
    step = INTERVAL_S * 1000
    if wall_ms() % step > step - 700:
        time.sleep(1.0)
    sent = wall_ms()
    for target, value in initial.items():
        _api(gw, "POST", f"/api/v1/occupancy/{target}", {"value": value, "by": "night-count"})
    answered = wall_ms()
    assert sent // step == answered // step, "the correction straddled an occupancy sample"
    return answered


def _stored(influxdb: InfluxDBServer, db: str) -> dict[str, Any]:
    """What the gateway wrote to InfluxDB, keyed like the truth."""
    flows = {
        (p["checkpoint"], p["window"], p["time"]): {k: p[k] for k in FLOW_FIELDS}
        for p in influxdb.query(db, 'SELECT * FROM "checkpoint_flow"')
    }
    occupancy = {
        (p["building"], p["time"]): {k: p[k] for k in ("occupancy", "clamped", "uncertain")}
        for p in influxdb.query(db, 'SELECT * FROM "occupancy"')
    }
    alerts = influxdb.query(db, 'SELECT * FROM "alert"')
    corrections = influxdb.query(db, 'SELECT * FROM "occupancy_correction"')
    return {"flows": flows, "occupancy": occupancy, "alerts": alerts, "corrections": corrections}


def _retained_states(port: int, base: str, n: int, client_id: str) -> dict[str, dict[str, Any]]:
    """The retained `state/occupancy/+` messages, as a fresh subscriber gets them."""
    with Watcher(port, [f"{base}/state/occupancy/+"], client_id) as fresh:
        wait_until(lambda: len(fresh.snapshot()) >= n, 10, what=f"{n} retained states")
        got = fresh.snapshot()
    assert all(m.retained for m in got), "a state message was not retained"
    return {m.topic.rsplit("/", 1)[1]: json.loads(m.payload) for m in got}


def _problems(rush: Rush, t0: int, corrected: int, seen: dict[str, Any]) -> list[str]:
    """Everything observed, against the truth for an engine started at `t0`."""
    truth, out = rush.truth, []
    since, until = seen["queried"]
    flows = seen["flows"]
    possible = truth.flows(t0, until)
    if missing_flows := sorted(set(truth.flows(t0, since - SLACK_MS)) - set(flows)):
        out.append(f"{len(missing_flows)} closed windows not stored: {missing_flows[:3]}")
    if extra := sorted(set(flows) - set(possible)):
        out.append(f"{len(extra)} stored windows that cannot have closed, e.g. {extra[:3]}")
    wrong = [(k, v, possible[k]) for k, v in sorted(flows.items()) if possible.get(k, v) != v]
    if wrong:
        out.append(f"{len(wrong)} windows differ; (key, stored, truth): {wrong[:3]}")
    occupancy = seen["occupancy"]
    possible_occ = truth.occupancy(t0, corrected, until)
    if missing := sorted(set(truth.occupancy(t0, corrected, since - SLACK_MS)) - set(occupancy)):
        out.append(f"occupancy samples not stored: {missing[:5]}")
    for key, point in sorted(occupancy.items()):
        want = {"occupancy": possible_occ.get(key), "clamped": 0, "uncertain": False}
        if point != want:
            out.append(f"occupancy sample {key}: stored {point}, truth {want}")
    flips = by_target(truth.alerts(t0, corrected, seen["alerts_until"]))
    alerts = by_target(seen["alerts"])
    if {k: [f.body["state"] for f in v] for k, v in flips.items()} != {
        k: [a["state"] for a in v] for k, v in alerts.items()
    }:
        out.append(f"alerts published {alerts}, truth {flips}")
    for key, published in alerts.items():
        for alert, flip in zip(published, flips.get(key, []), strict=False):
            body = {k: v for k, v in alert.items() if k not in ("ts", "site")}
            if body != flip.body:
                out.append(f"alert {alert} != truth {flip.body}")
            if not flip.at_ms <= alert["ts"] < min(flip.at_ms + SLACK_MS, flip.stable_until_ms):
                out.append(
                    f"{key} {flip.body['state']} published at {alert['ts']}: the truth "
                    f"flips at {flip.at_ms} and holds until {flip.stable_until_ms}"
                )
    for cp, state in sorted(seen["states"].items()):
        want = truth.state(cp, state["ts"], t0, corrected)
        now = truth.state(cp, seen["states_at"] - SLACK_MS, t0, corrected)
        if state != want:
            out.append(f"retained state of {cp}: {state} != truth {want}")
        elif state["ts"] < now["ts"] and {**now, "ts": 0} != {**state, "ts": 0}:
            out.append(f"retained state of {cp} is stale: {state}, truth now {now}")
    return out


@pytest.mark.slow
def test_morning_rush_is_counted_stored_and_alerted_exactly(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    run = f"{os.getpid()}x{random.randrange(10**6)}"
    base = f"rush{run}/shazui"
    site = site_copy(tmp_path)
    api_port = free_port()
    overrides = (
        f"mqtt.port={mosquitto.port}", f"mqtt.client_id=gw-rush-{run}", f"mqtt.root=rush{run}",
        "influx.api=v1", f"influx.url={influxdb.url}", f"influx.database={influx_db}",
        "influx.backoff_min_s=0.1", "influx.backoff_max_s=0.5", f"spool.path={tmp_path}/spool.db",
        f"api.bind=127.0.0.1:{api_port}", *HEADCOUNT,
    )  # fmt: skip
    cfg = load_config(site, overrides)
    assert cfg.headcount.bucket_s * 1000 == BUCKET_MS
    model = MorningRush(cfg, seed=7, initial_occupancy=2600)
    n_checkpoints = len(cfg.site.checkpoints)
    gw = GatewayProcess(site, api_port, tmp_path / "gateway.log", *overrides)
    with Watcher(mosquitto.port, [f"{base}/alerts/#"], f"rush-alerts-{run}") as live:
        _sleep_until_spawn_moment()
        spawned = wall_ms()
        gw.start()
        try:
            up = wall_ms()
            corrected = _enter_head_count(gw, {"site": 2600})
            start = -(-(corrected + 500) // BUCKET_MS) * BUCKET_MS
            end = -(-start // MINUTE_MS) * MINUTE_MS  # the rush fills its first minute
            if end - start < 2 * BUCKET_MS:
                end += MINUTE_MS
            rush = model.generate(start, (end - start) // 1000)
            engine_starts = [
                max(spawned, b * BUCKET_MS)
                for b in range(spawned // BUCKET_MS, up // BUCKET_MS + 1)
            ]
            horizon = start + 2 * MINUTE_MS
            flips = {t0: rush.truth.alerts(t0, corrected, horizon) for t0 in engine_starts}
            for t0, fl in flips.items():  # the design: one raise and one clear of each
                kinds = [(f.body["type"], f.body["state"], f.body["checkpoint"]) for f in fl]
                assert sorted(kinds) == sorted(EXPECTED_FLIPS), (t0, kinds)
            player = Player(mosquitto.port, rush.messages, f"rush-devices-{run}")
            player.start()
            done_at = max(
                max(f.at_ms for fl in flips.values() for f in fl) + SLACK_MS,
                end + LATENESS_S * 1000 + SLACK_MS,  # the rush's last window has closed
                rush.end_ms + SLACK_MS,
            )
            assert done_at - spawned < 150_000, "devices would look offline (3 heartbeats)"
            wait_until(
                lambda: wall_ms() >= done_at and len(live.snapshot()) >= len(EXPECTED_FLIPS),
                (done_at - wall_ms()) / 1000 + 15, interval_s=0.2,
                what=f"the rush's alerts and closed windows (log {gw.log})",
            )  # fmt: skip
            assert player.done.wait(20) and player.error is None, player.error
            assert player.max_lag_ms < 500, f"the player fell {player.max_lag_ms} ms behind"
            gw.wait_committed(len(rush.messages), 20)
            status = gw.status()
            queried_from = wall_ms()
            need = set(rush.truth.flows(engine_starts[-1], queried_from - SLACK_MS))

            def stored_enough() -> bool:
                got = _stored(influxdb, influx_db)
                return need <= set(got["flows"]) and len(got["alerts"]) >= len(EXPECTED_FLIPS)

            wait_until(stored_enough, 20, interval_s=0.3, what="closed windows in InfluxDB")
            stored = _stored(influxdb, influx_db)
            queried_to = wall_ms()
            states = _retained_states(mosquitto.port, base, n_checkpoints, f"rush-states-{run}")
            states_at = wall_ms()
            dead = _api(gw, "GET", "/api/v1/dead-letters")
            occupancy_now = _api(gw, "GET", "/api/v1/occupancy")["occupancy"]
        finally:
            exit_code = gw.terminate()
        alerts = [json.loads(m.payload) for m in live.snapshot()]

    assert exit_code == 0, f"the gateway did not stop cleanly: log {gw.log}"
    # Nothing set aside: every message decoded, nothing late or early.
    assert dead == [] and status["spool"]["dead_letters"] == 0, dead[:3]
    final = rush.truth.levels(queried_to, engine_starts[-1], corrected)
    assert occupancy_now == final, (occupancy_now, final)
    assert final["site"] < 2600  # the village empties in the morning
    assert [(c["old"], c["new"], c["by"]) for c in stored["corrections"]] == [
        (0, 2600, "night-count")
    ]
    # The alerts stored are the alerts published.
    fields = ("type", "state", "checkpoint", "metric", "value", "limit")
    assert sorted((p["time"], *(p[k] for k in fields)) for p in stored["alerts"]) == sorted(
        (a["ts"], *(a[k] for k in fields)) for a in alerts
    )
    seen = {
        "flows": stored["flows"], "occupancy": stored["occupancy"], "alerts": alerts,
        "alerts_until": queried_from, "states": states, "states_at": states_at,
        "queried": (queried_from, queried_to),
    }  # fmt: skip
    problems = {t0: _problems(rush, t0, corrected, seen) for t0 in engine_starts}
    assert any(not p for p in problems.values()), (
        f"no engine start in [{spawned}, {up}] explains what the gateway did:\n"
        + "\n".join(f"start {t0}: " + "\n  ".join(p) for t0, p in problems.items())
        + f"\n(gateway log {gw.log})"
    )
