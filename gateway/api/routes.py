"""The `/api/v1` resources: status, site, devices, incidents, occupancy, drills.

Each route names the roles it needs (`READ`, `RESPOND`, `COMMAND` from `auth`); the
dependency that enforces them is built by `gateway.api.server.create_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from gateway.api.auth import COMMAND, READ, RESPOND, Principal, Role
from gateway.api.live import OccupancyHistory, device_health, occupancy_series
from gateway.errors import GatewayError
from gateway.fire.incident import IncidentError
from gateway.headcount import HeadcountError
from gateway.reports import LiveSpool, build_day, incident_bundle, render

if TYPE_CHECKING:
    from gateway.app import Gateway

Need = Callable[[frozenset[Role]], Callable[..., Coroutine[Any, Any, Principal]]]


class IncidentAction(BaseModel):
    """A person's action on an incident; `by` defaults to the token's name."""

    action: Literal["confirm", "ack", "on_scene", "resolve", "false_alarm"]
    by: str | None = Field(default=None, min_length=1, max_length=128)


class OccupancyCorrectionRequest(BaseModel):
    """Set a building's (or `site`) occupancy by hand, e.g. after a head count."""

    value: int = Field(ge=0, le=1_000_000)
    by: str | None = Field(default=None, min_length=1, max_length=128)


class DrillRequest(BaseModel):
    """Start a fire drill in one zone of a building."""

    building: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    zone: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    by: str | None = Field(default=None, min_length=1, max_length=128)


def api_router(gw: Gateway, need: Need, history: OccupancyHistory) -> APIRouter:
    """The `/api/v1` routes over `gw`; `need(roles)` is the auth dependency."""
    r = APIRouter(prefix="/api/v1")
    # Dependencies as defaults: annotations are strings here and cannot name locals.
    reader = Depends(need(READ))
    responder = Depends(need(RESPOND))
    commander = Depends(need(COMMAND))

    @r.get("/status")
    async def status(_: Principal = reader) -> dict[str, Any]:
        return await asyncio.to_thread(status_snapshot, gw)

    @r.get("/site")
    async def site(_: Principal = reader) -> dict[str, Any]:
        health = device_health(gw)["buildings"]
        return {
            "site": gw.cfg.gateway.site,
            "name": gw.cfg.site.name,
            "gateway": gw.cfg.gateway.id,
            "buildings": [
                {
                    "id": b.id,
                    "name": b.name,
                    "floors": b.floors,
                    "zones": [z.id for z in b.zones],
                    "devices": health.get(b.id, {}),
                }
                for b in gw.cfg.site.buildings
            ],
            "checkpoints": [c.id for c in gw.cfg.site.checkpoints],
        }

    @r.get("/devices")
    async def devices(
        kind: str | None = None,
        state: str | None = None,
        building: str | None = None,
        limit: int = Query(default=500, ge=1, le=100_000),
        _: Principal = reader,
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

    @r.get("/devices/health")
    async def health(_: Principal = reader) -> dict[str, Any]:
        return device_health(gw)

    @r.get("/dead-letters")
    async def dead_letters(
        limit: int = Query(default=50, ge=1, le=1000), _: Principal = reader
    ) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(gw.spool.dead_letters, limit)
        return [_jsonable(row) for row in rows]

    @r.get("/incidents")
    async def incidents(
        closed: int = Query(default=20, ge=0, le=500), _: Principal = reader
    ) -> list[dict[str, Any]]:
        return gw.fire.snapshot(closed)

    @r.get("/incidents/{incident_id}")
    async def incident(incident_id: str, _: Principal = reader) -> dict[str, Any]:
        try:
            alert, timeline = gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"incident": alert, "timeline": timeline}

    @r.get("/incidents/{incident_id}/bundle")
    async def bundle(incident_id: str, _: Principal = reader) -> Response:
        try:
            alert, timeline = gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(404, str(exc)) from None
        data = await asyncio.to_thread(
            incident_bundle, alert, timeline, LiveSpool(gw.spool), gw.cfg.fire.deadline_s
        )
        disposition = f'attachment; filename="{incident_id}.zip"'
        return Response(
            data, media_type="application/zip", headers={"Content-Disposition": disposition}
        )

    @r.get("/reports/daily")
    async def daily(
        date: str = Query(default="today", pattern=r"^(today|yesterday|\d{4}-\d{2}-\d{2})$"),
        format: Literal["html", "csv", "xlsx"] = "html",
        _: Principal = reader,
    ) -> Response:
        def make() -> tuple[bytes, str, str]:
            report = build_day(gw.cfg, date, devices=list(gw.registry.devices.values()))
            return render(report, format)

        try:
            data, media_type, name = await asyncio.to_thread(make)
        except GatewayError as exc:
            raise HTTPException(404, str(exc)) from None
        disposition = f'inline; filename="{name}"'
        return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})

    @r.post("/incidents/{incident_id}/actions")
    async def act(
        incident_id: str, body: IncidentAction, who: Principal = responder
    ) -> dict[str, Any]:
        try:
            gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            gw.fire.act(incident_id, body.action, body.by or who.name)
            alert, _ = gw.fire.incident(incident_id)
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None
        return alert

    @r.get("/occupancy")
    async def occupancy(_: Principal = reader) -> dict[str, Any]:
        if gw.headcount is None:
            raise HTTPException(404, "head-count is disabled ([headcount] enabled = false)")
        engine = gw.headcount.engine
        return {"occupancy": engine.occupancy(), "checkpoints": engine.states()}

    @r.get("/occupancy/history")
    async def occupancy_history(
        minutes: int = Query(default=180, ge=1, le=24 * 60), _: Principal = reader
    ) -> dict[str, Any]:
        return await occupancy_series(gw, history, gw.clock.wall_ms() - minutes * 60_000)

    @r.post("/occupancy/{target}")
    async def correct_occupancy(
        target: str, body: OccupancyCorrectionRequest, who: Principal = commander
    ) -> dict[str, Any]:
        if gw.headcount is None:
            raise HTTPException(404, "head-count is disabled ([headcount] enabled = false)")
        try:
            row = gw.headcount.correct(target, body.value, body.by or who.name)
        except HeadcountError as exc:
            raise HTTPException(404, str(exc)) from None
        await gw.committer.commit_rows([row], [])
        return {"target": target, "occupancy": gw.headcount.engine.occupancy().get(target)}

    @r.post("/drills", status_code=201)
    async def drill(body: DrillRequest, who: Principal = commander) -> dict[str, Any]:
        try:
            incident_id = gw.fire.drill(body.building, body.zone, body.by or who.name)
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None
        if not incident_id:
            raise HTTPException(409, f"no drill started in {body.building}/{body.zone}")
        alert, _ = gw.fire.incident(incident_id)
        return alert

    return r


def status_snapshot(gw: Gateway) -> dict[str, Any]:
    """Counters for the dashboard and the demo's summary line."""
    stats = gw.spool.stats()
    fwd = gw.forwarder.stats if gw.forwarder is not None else None
    return {
        "site": gw.cfg.gateway.site,
        "gateway": gw.cfg.gateway.id,
        "mqtt_connected": gw.link.connected,
        "mqtt_alarm_link_connected": gw.alarm_link.connected,
        "committed": gw.pipeline.committed_total,
        "vision": None
        if gw.vision is None
        else {
            "frames": gw.vision.pipeline.frames,
            "detector_frames": gw.vision.pipeline.detected,
            "gate_pass_fraction": round(gw.vision.pipeline.gate_pass_fraction, 4),
            "dropped": gw.vision.dropped(),
        },
        "speech_cache": {
            "state": gw.audio.warm_state,
            "texts": gw.audio.warm_texts,
            "done": gw.audio.warm_done,
        },
        "queued": gw.pipeline.queued,
        "queued_peak": gw.pipeline.queued_peak,
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
        "alarms": [asdict(a) for a in list(gw.alarms.recent.copy())[-10:]],
        "alarms_total": gw.alarms.total,
        "incidents": gw.fire.snapshot(),
        "occupancy": gw.headcount.engine.occupancy() if gw.headcount is not None else {},
        # deque.copy() runs in C under the GIL: the MQTT thread may append meanwhile.
        "alarm_lane_ms": [round(v, 3) for v in gw.pipeline.alarm_lane_ms.copy()],
    }


def _jsonable(row: Any) -> dict[str, Any]:
    data = row._asdict() if hasattr(row, "_asdict") else dict(row)
    for key, value in data.items():
        if isinstance(value, bytes | bytearray):
            data[key] = value[:512].decode("utf-8", "replace")
    return data
