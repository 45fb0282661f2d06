"""`community-gateway drill`: start a drill on the running gateway, follow it, write the report.

The drill runs inside the gateway (through its API), on the real broker, with every command
marked `drill: true`; this command waits until the drill is resolved (by the team, through
the action topic or the API) or the time runs out, then until the devices have acknowledged
the clearing commands (or the gateway gave them up), then writes the report as Markdown and
HTML with the timeline and each response time against the deadline.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.clock import Clock, SystemClock
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.fire.actions import ACK, COMMAND, COMMAND_FAILED
from gateway.fire.report import html_page, limits_from, markdown

POLL_S = 1.0
SETTLE_POLL_S = 0.2
CLOSED = {"resolved", "false_alarm"}


class DrillError(GatewayError):
    """The drill could not be started or followed."""


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise DrillError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except OSError as exc:
        raise DrillError(
            f"cannot reach the gateway API at {base} ({exc}); is the gateway running?"
        ) from None


def run_drill(
    cfg: GatewayConfig,
    building: str,
    zone: str,
    by: str,
    timeout_s: float | None = None,
    out_dir: Path = Path(),
) -> tuple[dict[str, Any], Path]:
    """Start, follow and report one drill; returns the final incident and the report path."""
    host, port = cfg.api.host_port()
    base = f"http://{'127.0.0.1' if host in {'0.0.0.0', '::', ''} else host}:{port}"
    started = _call(base, "POST", "/api/v1/drills", {"building": building, "zone": zone, "by": by})
    incident_id = started["id"]
    print(f"drill {incident_id} started in building {building}, zone {zone}")
    limit = timeout_s if timeout_s is not None else cfg.fire.deadline_s + 60
    deadline = time.monotonic() + limit
    state = started["state"]
    doc = {"incident": started, "timeline": []}
    while True:
        doc = _call(base, "GET", f"/api/v1/incidents/{incident_id}")
        if doc["incident"]["state"] != state:
            state = doc["incident"]["state"]
            print(f"  {state}")
        if state in CLOSED or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    if state in CLOSED:
        doc = _settle(
            base, incident_id, doc, cfg.fire.command_retry_s, cfg.fire.command_max_retries
        )
    report = markdown(doc["incident"], doc["timeline"], limits_from(cfg.fire))
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / f"{incident_id}.md"
    md_path.write_text(report, encoding="utf-8")
    (out_dir / f"{incident_id}.html").write_text(html_page(report, incident_id), encoding="utf-8")
    return doc["incident"], md_path


def awaiting_ack(timeline: list[dict[str, Any]]) -> set[str]:
    """The command ids in the timeline neither acknowledged nor given up yet."""
    sent: set[str] = set()
    done: set[str] = set()
    for rec in timeline:
        cmd_id = rec["data"].get("cmd_id")
        if not cmd_id:
            continue
        if rec["kind"] == COMMAND:
            sent.add(cmd_id)
        elif rec["kind"] in {ACK, COMMAND_FAILED}:
            done.add(cmd_id)
    return sent - done


def _settle(
    base: str,
    incident_id: str,
    doc: dict[str, Any],
    retry_s: float,
    max_retries: int,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Follow a closed drill until its last commands are acknowledged or given up.

    Closing sends the clearing commands; the report would otherwise show them unacknowledged
    only because it was written a few milliseconds too early. Bounded by the gateway's own
    retry schedule, after which it has given every command up.
    """
    clock = clock or SystemClock()
    until = clock.monotonic() + retry_s * (max_retries + 1) + 1
    pending = awaiting_ack(doc["timeline"])
    if pending:
        print(f"  waiting for {len(pending)} device acknowledgement(s)")
    while pending and clock.monotonic() < until:
        sleep(SETTLE_POLL_S)
        doc = _call(base, "GET", f"/api/v1/incidents/{incident_id}")
        pending = awaiting_ack(doc["timeline"])
    return doc
