"""`community-gateway drill` waits for the clearing commands' acknowledgements before reporting."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.fire.drill import _settle, awaiting_ack


def _rec(kind: str, cmd_id: str) -> dict[str, Any]:
    return {"kind": kind, "ts": 0, "by": "x", "data": {"cmd_id": cmd_id}}


def test_a_command_is_awaited_until_acknowledged_or_given_up() -> None:
    timeline = [_rec("command", "c1"), _rec("command", "c2"), _rec("command", "c3")]
    timeline += [_rec("retry", "c1"), _rec("ack", "c2"), _rec("command_failed", "c3")]
    assert awaiting_ack(timeline) == {"c1"}
    assert awaiting_ack([_rec("state", "")]) == set()


@pytest.fixture
def api() -> Iterator[tuple[str, list[int]]]:
    """An incident endpoint whose clearing command is acknowledged on read `calls[1]` (3)."""
    calls = [0, 3]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls[0] += 1
            timeline = [_rec("command", "c1")] + (
                [_rec("ack", "c1")] if calls[0] >= calls[1] else []
            )
            body = json.dumps({"incident": {"state": "resolved"}, "timeline": timeline}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def test_settle_reads_again_until_the_last_ack_arrives(api: tuple[str, list[int]]) -> None:
    base, calls = api
    clock = ManualClock()
    first = {"incident": {"state": "resolved"}, "timeline": [_rec("command", "c1")]}
    doc = _settle(base, "drill-1", first, 5, 3, clock=clock, sleep=clock.advance)
    assert awaiting_ack(doc["timeline"]) == set()
    assert calls[0] == 3


def test_settle_gives_up_after_the_gateways_retry_schedule(api: tuple[str, list[int]]) -> None:
    base, calls = api
    calls[1] = 10**9  # never acknowledged
    clock = ManualClock(monotonic=0.0)
    first = {"incident": {"state": "resolved"}, "timeline": [_rec("command", "c1")]}
    doc = _settle(base, "drill-1", first, 2.0, 1, clock=clock, sleep=clock.advance)
    assert awaiting_ack(doc["timeline"]) == {"c1"}
    assert clock.monotonic() >= 5.0  # 2 s × (1 retry + 1) + 1 s, then it stopped
    assert calls[0] == 25  # one read every 0.2 s
