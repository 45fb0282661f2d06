"""Every route × every role against a real gateway with a tokens file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.api.auth import COMMAND, READ, RESPOND, Role
from tests.api.conftest import SecuredGateway, start_secured
from tests.servers import MosquittoServer

INCIDENT = "{incident}"
NOTICE = {"text": "电梯维保", "targets": {"buildings": ["b02"]}}


def _routes(incident: str, notice: str) -> list[tuple[str, str, Any, frozenset[Role], list[Any]]]:
    """(method, path, template, roles allowed, a body per allowed role in Role order)."""
    reads = [
        "/readyz", "/api/v1/status", "/api/v1/site", "/api/v1/devices", "/api/v1/devices/health",
        "/api/v1/dead-letters", "/api/v1/incidents", f"/api/v1/incidents/{incident}",
        "/api/v1/occupancy", "/api/v1/occupancy/history",
        f"/api/v1/incidents/{incident}/bundle", "/api/v1/reports/daily",
        "/api/v1/notices", f"/api/v1/notices/{notice}",
    ]  # fmt: skip
    out: list[tuple[str, str, Any, frozenset[Role], list[Any]]] = [
        ("GET", p, None, READ, []) for p in reads
    ]
    # One valid transition per allowed role, in Role order (operator, fire_team, admin).
    acts = [{"action": "ack"}, {"action": "on_scene"}, {"action": "resolve"}]
    out.append(("POST", f"/api/v1/incidents/{incident}/actions", None, RESPOND, acts))
    out.append(("POST", "/api/v1/occupancy/site", None, COMMAND, [{"value": 5}, {"value": 7}]))
    drills = [{"building": "b01", "zone": "b01-f2"}, {"building": "b02", "zone": "b02-f1"}]
    out.append(("POST", "/api/v1/drills", None, COMMAND, drills))
    out.append(("POST", "/api/v1/notices", None, COMMAND, [NOTICE, NOTICE]))
    out.append(("DELETE", f"/api/v1/notices/{notice}", None, COMMAND, []))  # idempotent
    return out


def _template(path: str, incident: str, notice: str) -> str:
    path = path.replace(incident, "{incident_id}").replace(notice, "{notice_id}")
    return path.replace("/occupancy/site", "/occupancy/{target}")


def test_every_route_refuses_no_token_and_wrong_roles_and_admits_right_ones(
    secured: SecuredGateway,
) -> None:
    with secured.client(Role.OPERATOR) as op:
        r = op.post("/api/v1/drills", json={"building": "b01", "zone": "b01-f1"})
        assert r.status_code == 201, r.text
        incident = r.json()["id"]
        r = op.post("/api/v1/notices", json=NOTICE)
        assert r.status_code == 201, r.text
        notice = r.json()["id"]
    routes = _routes(incident, notice)
    with secured.client(Role.VIEWER) as viewer:
        spec = viewer.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    covered = {(m, _template(p, incident, notice)) for m, p, *_ in routes}
    covered |= {("GET", "/healthz"), ("GET", "/metrics")}
    assert documented == covered, "a route without an auth test (or a test of a gone route)"

    for method, path, _, allowed, bodies in routes:
        with secured.client(None) as anon:
            r = anon.request(method, path, json=bodies[0] if bodies else None)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
        body_iter = iter(bodies)
        for role in Role:
            with secured.client(role) as c:
                ok = role in allowed or role is Role.ADMIN
                body = next(body_iter) if ok and bodies else (bodies[0] if bodies else None)
                r = c.request(method, path, json=body)
                if ok:
                    assert 200 <= r.status_code < 300, (method, path, role, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (method, path, role, r.status_code)
                    assert role.value in r.json()["detail"]
    with secured.client(Role.VIEWER) as viewer:
        timeline = viewer.get(f"/api/v1/incidents/{incident}").json()["timeline"]
    by = [row.get("by") for row in timeline]
    assert "operator-1" in by and "fire_team-1" in by, by  # `by` defaults to the token's name


def test_public_paths_need_no_token(secured: SecuredGateway) -> None:
    with secured.client(None) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        assert "gateway_api_auth_failures_total" in anon.get("/metrics").text  # loopback bind
        assert "社区网关" in anon.get("/").text
        assert anon.get("/static/uPlot.iife.min.js").status_code == 200
        assert (
            anon.get("/api/v1/status", headers={"Authorization": "Basic eDp5"}).status_code == 401
        )


def test_repeated_bad_tokens_block_the_client_and_are_counted(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    gw = start_secured(tmp_path, mosquitto.port, "gw-ratelimit", "api.auth_max_failures=3")
    try:
        bad = httpx.Client(base_url=gw.url, headers={"Authorization": "Bearer nope"}, timeout=5)
        with bad, gw.client(Role.ADMIN) as admin:
            assert admin.get("/api/v1/status").status_code == 200
            assert [bad.get("/api/v1/status").status_code for _ in range(3)] == [401] * 3
            blocked = admin.get("/api/v1/status")  # same address: even a good token waits
            assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
            metrics = httpx.get(f"{gw.url}/metrics", timeout=5).text
        assert 'gateway_api_auth_failures_total{reason="invalid"} 3.0' in metrics
        assert 'gateway_api_auth_failures_total{reason="blocked"} 1.0' in metrics
    finally:
        gw.proc.terminate()
