"""The WebSocket live feed: state first, then changes; reconnects get the state again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.api.auth import Role
from tests.api.conftest import SecuredGateway
from tests.e2e.harness import now_ms, publish_all
from tests.servers import MosquittoServer


def _ws_url(gw: SecuredGateway) -> str:
    return f"ws://127.0.0.1:{gw.proc.api_port}/api/v1/live"


async def _next(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout_s))  # type: ignore[no-any-return]


async def _until(ws: ClientConnection, pred: Any, timeout_s: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            msg = await _next(ws)
            if pred(msg):
                return msg


async def test_feed_sends_state_then_incident_changes_and_again_on_reconnect(
    secured: SecuredGateway, mosquitto: MosquittoServer
) -> None:
    token = secured.tokens[Role.VIEWER]
    async with connect(_ws_url(secured), subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        first = await _next(ws)
        assert first["type"] == "snapshot"
        assert set(first) >= {"incidents", "occupancy", "checkpoints", "devices"}
        before = {i["id"] for i in first["incidents"]}
        alarm = {"ts": now_ms(), "event": "alarm"}
        await asyncio.to_thread(
            publish_all,
            mosquitto.port,
            [("community/shazui/b01/callpoint/CP-b01-1/event", json.dumps(alarm).encode())],
        )
        msg = await _until(
            ws, lambda m: m["type"] == "incident" and m["incident"]["id"] not in before
        )
        incident = msg["incident"]
        assert incident["building"] == "b01" and incident["state"] in {"confirmed", "dispatched"}
        devices = await _until(ws, lambda m: m["type"] == "devices")
        assert devices["devices"]["counts"]["online"] >= 1
    with secured.client(Role.FIRE_TEAM) as c:
        r = c.post(f"/api/v1/incidents/{incident['id']}/actions", json={"action": "ack"})
        assert r.status_code == 200, r.text
    # Reconnect (token as a query parameter): the state first, with the ack already in it.
    async with connect(_ws_url(secured) + f"?token={token}") as ws:
        first = await _next(ws)
        assert first["type"] == "snapshot"
        now = {i["id"]: i["state"] for i in first["incidents"]}
        assert now[incident["id"]] == "acknowledged"


@pytest.mark.parametrize(("token", "code"), [("bad", 4401), (None, 4401)])
async def test_feed_refuses_bad_or_missing_token(
    secured: SecuredGateway, token: str | None, code: int
) -> None:
    url = _ws_url(secured) + (f"?token={token}" if token else "")
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as err:
            await _next(ws)
    assert err.value.rcvd is not None and err.value.rcvd.code == code
