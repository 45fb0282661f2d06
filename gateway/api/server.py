"""The gateway's HTTP API: health, readiness, metrics, `/api/v1`, the live feed, the dashboard.

Auth (docs/api.md): bearer tokens from `[api] tokens_file`; without one the API serves
on loopback only, unauthenticated. Public without a token: `/healthz`, the dashboard's
static shell (`/`, `/static/*`, no site data), `/openapi.json` and `/docs`; `/metrics`
only when bound to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.websockets import WebSocketDisconnect

from gateway.api.auth import (
    READ,
    ApiAuth,
    AuthFailure,
    FailureLimiter,
    Principal,
    Role,
    TokenStore,
    is_loopback,
)
from gateway.api.live import LIVE_POLL_S, OccupancyHistory, changes, live_state, snapshot_message
from gateway.api.notices import notices_router
from gateway.api.routes import api_router, status_snapshot

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["create_app", "serve_api", "status_snapshot"]

log = logging.getLogger(__name__)

READY_MAX_LAG_S = 300.0
STATIC_DIR = Path(__file__).parent / "static"
WS_SUBPROTOCOL = "bearer"  # browsers send `Sec-WebSocket-Protocol: bearer, <token>`


def build_auth(gw: Gateway) -> ApiAuth:
    """The API's auth from `[api]` (ConfigError when the tokens file is unreadable or bad)."""
    api = gw.cfg.api
    tokens = TokenStore(api.tokens_file) if api.tokens_file is not None else None
    limiter = FailureLimiter(gw.clock, api.auth_max_failures, api.auth_window_s, api.auth_block_s)
    return ApiAuth(tokens, limiter, gw.metrics.registry)


def create_app(
    gw: Gateway, auth: ApiAuth | None = None, history: OccupancyHistory | None = None
) -> FastAPI:
    """Build the FastAPI app over a running gateway."""
    auth = auth or build_auth(gw)
    history = history or OccupancyHistory()
    app = FastAPI(title="community-gateway", version="0.1.0")
    bearer = HTTPBearer(auto_error=False, description="a token from [api] tokens_file")
    # Dependencies as defaults: annotations are strings here and cannot name locals.
    credentials = Depends(bearer)

    def need(allowed: frozenset[Role]) -> Callable[..., Coroutine[Any, Any, Principal]]:
        async def check(
            request: Request, cred: HTTPAuthorizationCredentials | None = credentials
        ) -> Principal:
            return auth.check(cred.credentials if cred else None, _client(request), allowed)

        return check

    @app.exception_handler(AuthFailure)
    async def refused(_: Request, exc: AuthFailure) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    host, _ = gw.cfg.api.host_port()
    open_metrics = is_loopback(host) or not auth.enabled

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    reader = Depends(need(READ))

    @app.get("/readyz")
    async def readyz(_: Principal = reader) -> JSONResponse:
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
    async def metrics(
        request: Request, cred: HTTPAuthorizationCredentials | None = credentials
    ) -> Response:
        # Scrapers rarely send tokens: open on a loopback bind (a local agent scrapes it).
        if not open_metrics:
            auth.check(cred.credentials if cred else None, _client(request), READ)
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router(gw, need, history))
    app.include_router(notices_router(gw, need))

    @app.websocket("/api/v1/live")
    async def live(ws: WebSocket, token: str | None = None) -> None:
        offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
        subprotocol = None
        if WS_SUBPROTOCOL in offered:
            subprotocol = WS_SUBPROTOCOL
            rest = [p for p in offered if p and p != WS_SUBPROTOCOL]
            token = token or (rest[0] if rest else None)
        await ws.accept(subprotocol=subprotocol)
        try:
            auth.check(token, ws.client.host if ws.client else "?", READ)
        except AuthFailure as exc:
            # Accept, then close with 44xx: a browser sees the code, never a handshake status.
            await ws.close(code=4000 + exc.status, reason=exc.detail)
            return
        await _feed(ws, gw)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> str:
        return (STATIC_DIR / "dashboard.html").read_text("utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _feed(ws: WebSocket, gw: Gateway) -> None:
    """Send the current state, then what changes, until the client goes away."""

    async def push() -> None:
        state = live_state(gw)
        try:
            await ws.send_json(snapshot_message(state, gw.clock.wall_ms()))
            while True:
                await asyncio.sleep(LIVE_POLL_S)
                new = live_state(gw)
                for message in changes(state, new):
                    await ws.send_json(message)
                state = new
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client left between two polls

    async with asyncio.TaskGroup() as tg:
        sender = tg.create_task(push(), name="live-push")
        try:
            while True:  # clients send nothing we need; reading notices the disconnect
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
        finally:
            sender.cancel()


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway's root handles SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(gw: Gateway) -> None:
    """Serve the API (and sample occupancy history for its charts) until cancelled."""
    host, port = gw.cfg.api.host_port()
    auth = build_auth(gw)
    if not auth.enabled:
        if not is_loopback(host):
            log.warning(
                "api: no [api] tokens_file: serving on 127.0.0.1:%d instead of %s:%d "
                "(the API needs tokens to be reachable from other hosts)",
                port, host, port,
            )  # fmt: skip
            host = "127.0.0.1"
        log.warning("api: no [api] tokens_file: the API is unauthenticated (loopback only)")
    history = OccupancyHistory()
    config = uvicorn.Config(
        create_app(gw, auth, history),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = _QuietServer(config)
    async with asyncio.TaskGroup() as tg:
        sampler = tg.create_task(history.run(gw), name="api-history")
        try:
            await server.serve()
        finally:
            server.should_exit = True
            sampler.cancel()
