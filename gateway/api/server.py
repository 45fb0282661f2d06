"""HTTP API of the gateway core: health, readiness, metrics, status, devices, dead letters.

The full API (auth, incidents, occupancy, reports) builds on this; until then it binds to
loopback by default and exposes read-only views.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from gateway.fire.incident import IncidentError
from gateway.headcount import HeadcountError

if TYPE_CHECKING:
    from gateway.app import Gateway

READY_MAX_LAG_S = 300.0


def create_app(gw: Gateway) -> FastAPI:
    """Build the FastAPI app over a running gateway."""
    app = FastAPI(title="community-gateway", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        stats = await asyncio.to_thread(gw.spool.stats)
        lag = gw.forwarder.stats.lag_s if gw.forwarder is not None else 0.0
        checks = {
            "mqtt_connected": gw.link.connected,
            "spool_writable": gw.pipeline.commit_error is None,
            "forwarder_lag_ok": lag <= READY_MAX_LAG_S,
        }
        body = {
            "ready": all(checks.values()),
            "checks": checks,
            "forward_lag_s": lag,
            "spool_rows": stats.rows,
            "spool_error": gw.pipeline.commit_error,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status")
    async def status() -> dict[str, Any]:
        return await asyncio.to_thread(status_snapshot, gw)

    @app.get("/api/v1/devices")
    async def devices(
        kind: str | None = None,
        state: str | None = None,
        building: str | None = None,
        limit: int = Query(default=500, ge=1, le=100_000),
    ) -> list[dict[str, Any]]:
        out = []
        for rec in gw.registry.devices.values():
            if (kind and rec.kind != kind) or (state and rec.state != state):
                continue
            if building and rec.building != building:
                continue
            row = asdict(rec)
            row["troubles"] = sorted(rec.troubles)
            del row["last_seen_mono"]
            out.append(row)
            if len(out) >= limit:
                break
        return out

    @app.get("/api/v1/dead-letters")
    async def dead_letters(limit: int = Query(default=50, ge=1, le=1000)) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(gw.spool.dead_letters, limit)
        return [_jsonable(r) for r in rows]

    @app.get("/api/v1/incidents")
    async def incidents(closed: int = Query(default=20, ge=0, le=500)) -> list[dict[str, Any]]:
        return gw.fire.snapshot(closed)

    @app.get("/api/v1/incidents/{incident_id}")
    async def incident(incident_id: str) -> dict[str, Any]:
        try:
            alert, timeline = gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"incident": alert, "timeline": timeline}

    @app.post("/api/v1/incidents/{incident_id}/actions")
    async def act(incident_id: str, body: IncidentAction) -> dict[str, Any]:
        try:
            gw.fire.act(incident_id, body.action, body.by)
            alert, _ = gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None
        return alert

    @app.get("/api/v1/occupancy")
    async def occupancy() -> dict[str, Any]:
        if gw.headcount is None:
            raise HTTPException(404, "head-count is disabled ([headcount] enabled = false)")
        engine = gw.headcount.engine
        return {"occupancy": engine.occupancy(), "checkpoints": engine.states()}

    @app.post("/api/v1/occupancy/{target}")
    async def correct_occupancy(target: str, body: OccupancyCorrectionRequest) -> dict[str, Any]:
        if gw.headcount is None:
            raise HTTPException(404, "head-count is disabled ([headcount] enabled = false)")
        try:
            row = gw.headcount.correct(target, body.value, body.by)
        except HeadcountError as exc:
            raise HTTPException(404, str(exc)) from None
        await gw.committer.commit_rows([row], [])
        return {"target": target, "occupancy": gw.headcount.engine.occupancy().get(target)}

    @app.post("/api/v1/drills", status_code=201)
    async def drill(body: DrillRequest) -> dict[str, Any]:
        try:
            incident_id = gw.fire.drill(body.building, body.zone, body.by)
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None
        if not incident_id:
            raise HTTPException(409, f"no drill started in {body.building}/{body.zone}")
        alert, _ = gw.fire.incident(incident_id)
        return alert

    @app.get("/", response_class=HTMLResponse)
    async def dashboard() -> str:
        return resources.files("gateway.api").joinpath("static/dashboard.html").read_text("utf-8")

    return app


class IncidentAction(BaseModel):
    """A person's action on an incident."""

    action: Literal["confirm", "ack", "on_scene", "resolve", "false_alarm"]
    by: str = Field(min_length=1, max_length=128)


class OccupancyCorrectionRequest(BaseModel):
    """Set a building's (or `site`) occupancy by hand, e.g. after a head count."""

    value: int = Field(ge=0, le=1_000_000)
    by: str = Field(min_length=1, max_length=128)


class DrillRequest(BaseModel):
    """Start a fire drill in one zone of a building."""

    building: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    zone: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    by: str = Field(min_length=1, max_length=128)


def status_snapshot(gw: Gateway) -> dict[str, Any]:
    """Counters for the dashboard and the demo's summary line."""
    stats = gw.spool.stats()
    fwd = gw.forwarder.stats if gw.forwarder is not None else None
    return {
        "site": gw.cfg.gateway.site,
        "gateway": gw.cfg.gateway.id,
        "mqtt_connected": gw.link.connected,
        "committed": gw.pipeline.committed_total,
        "queued": gw.pipeline.queued,
        "spool": {
            "rows": stats.rows,
            "bytes": stats.bytes,
            "evicted": stats.evicted_total,
            "dead_letters": stats.dead_letters_total,
        },
        "forwarder": None
        if fwd is None
        else {
            "forwarded": fwd.lines_forwarded,
            "lag_s": fwd.lag_s,
            "drain_lines_per_s": fwd.drain_lines_per_s,
        },
        "devices": gw.registry.counts(),
        "alarms": [asdict(a) for a in list(gw.alarms.recent)[-10:]],
        "alarms_total": gw.alarms.total,
        "incidents": gw.fire.snapshot(),
        "occupancy": gw.headcount.engine.occupancy() if gw.headcount is not None else {},
        "alarm_lane_ms": [round(v, 3) for v in gw.pipeline.alarm_lane_ms],
    }


def _jsonable(row: Any) -> dict[str, Any]:
    data = row._asdict() if hasattr(row, "_asdict") else dict(row)
    for key, value in data.items():
        if isinstance(value, bytes | bytearray):
            data[key] = value[:512].decode("utf-8", "replace")
    return data


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway's root handles SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(gw: Gateway) -> None:
    """Serve the API until cancelled."""
    host, port = gw.cfg.api.host_port()
    config = uvicorn.Config(
        create_app(gw), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = _QuietServer(config)
    try:
        await server.serve()
    finally:
        server.should_exit = True
