"""Team webhooks against a real HTTP server on 127.0.0.1: retries, failures, drops, threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from gateway.clock import ManualClock
from gateway.errors import ConfigError
from gateway.fire.actions import Notify
from gateway.fire.webhooks import Delivery, WebhookNotifier
from tests.servers import free_port

WAIT_S = 10.0  # a deadline for a broken test, never a timer under test
ALERT = {"id": "inc-20261124-0007", "state": "dispatched", "team": "mfs-north", "tier": 0}


@dataclass
class Receiver:
    """A webhook receiver: /ok, /flaky (500 twice), /busy (429 once), /hang, /bad (400)."""

    base: str = ""
    requests: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.requests if p == path]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        self.requests.append((path, await request.json(), request.headers["Idempotency-Key"]))
        if path.startswith("flaky") and self.hits[path] <= 2:
            return web.Response(status=500, text="upstream down")
        if path == "busy" and self.hits[path] == 1:
            return web.Response(status=429, headers={"Retry-After": "7"})
        if path == "bad":
            return web.Response(status=400, text="bad access_token")
        if path == "hang":
            self.hanging.set()
            await self.release.wait()
        return web.json_response({"errcode": 0})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{path}", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.base = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()


class Harness:
    """A notifier with a recording sleep and its deliveries on a queue."""

    def __init__(self, urls: dict[str, str], **kwargs: Any) -> None:
        self.sleeps: list[float] = []
        self.done: asyncio.Queue[Delivery] = asyncio.Queue()
        self.clock = ManualClock()
        self.notifier = WebhookNotifier(
            urls, self.clock, sleep=self._sleep, on_delivery=self.done.put_nowait, **kwargs
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def next(self) -> Delivery:
        return await asyncio.wait_for(self.done.get(), WAIT_S)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookNotifier]:
        task = asyncio.create_task(self.notifier.run())
        try:
            yield self.notifier
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def notify(team: str = "mfs-north", tier: int = 0, reason: str = "dispatch") -> Notify:
    return Notify(team, tier, reason, dict(ALERT))


async def test_delivery_posts_the_alert_with_whom_and_why(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("ok")})
    async with h.running() as notifier:
        assert notifier.submit(notify(tier=1, reason="no_ack"))
        delivery = await h.next()
    assert delivery == Delivery(
        team="mfs-north",
        url=receiver.url("ok"),
        reason="no_ack",
        incident="inc-20261124-0007",
        attempts=1,
        ok=True,
        status=200,
        error="",
        first_ms=h.clock.wall_ms(),
        last_ms=h.clock.wall_ms(),
    )
    [body] = receiver.bodies("ok")
    assert body == {**ALERT, "notify": {"team": "mfs-north", "tier": 1, "reason": "no_ack"}}
    assert h.sleeps == []
    stats = notifier.stats
    assert (stats.delivered, stats.failed, stats.dropped, stats.pending) == (1, 0, 0, 0)


async def test_server_errors_are_retried_with_backoff_until_success(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("flaky")})
    start_ms = h.clock.wall_ms()
    async with h.running() as notifier:
        notifier.submit(notify())
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts, delivery.status) == (True, 3, 200)
    assert h.sleeps == [1.0, 2.0]
    assert (delivery.first_ms, delivery.last_ms) == (start_ms, start_ms + 3000)
    keys = {key for path, _, key in receiver.requests if path == "flaky"}
    assert receiver.hits["flaky"] == 3 and len(keys) == 1  # one key: receivers can dedupe


async def test_429_waits_at_least_retry_after(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("busy")})
    async with h.running() as notifier:
        notifier.submit(notify())
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts) == (True, 2)
    assert h.sleeps == [7.0]


async def test_client_error_is_permanent(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("bad")})
    async with h.running() as notifier:
        notifier.submit(notify())
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 400)
    assert delivery.error == "HTTP 400: bad access_token"
    assert h.sleeps == []
    assert notifier.stats.failed == 1 and notifier.stats.delivered == 0


async def test_unreachable_port_fails_after_max_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    h = Harness({"mfs-north": url}, max_attempts=4, backoff_s=1.5)
    async with h.running() as notifier:
        notifier.submit(notify())
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 4, None)
    assert "ClientConnectorError" in delivery.error
    assert h.sleeps == [1.5, 3.0, 6.0]
    assert notifier.stats.failed == 1


async def test_no_response_within_timeout_is_retried(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("hang")}, timeout_s=0.2, max_attempts=2)
    async with h.running() as notifier:
        notifier.submit(notify())
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert delivery.error == "no response within 0.2 s"
    assert h.sleeps == [1.0]
    assert receiver.hits["hang"] == 2


async def test_hanging_endpoint_delays_neither_submit_nor_other_teams(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("hang"), "street-1": receiver.url("ok")}, timeout_s=30.0)
    async with h.running() as notifier:
        assert notifier.submit(notify("mfs-north"))
        await asyncio.wait_for(receiver.hanging.wait(), WAIT_S)
        # Called on the loop's own thread: a submit that waited on the network could not
        # return at all, since the loop that would do the waiting is this one.
        began = time.perf_counter()
        assert notifier.submit(notify("street-1", tier=1))
        assert time.perf_counter() - began < 0.1
        other = await h.next()
        assert (other.team, other.ok) == ("street-1", True)
        assert not receiver.release.is_set() and notifier.stats.pending == 1
        receiver.release.set()
        late = await h.next()
    assert (late.team, late.ok, late.attempts) == ("mfs-north", True, 1)


async def test_team_without_webhook_is_dropped() -> None:
    h = Harness({"mfs-north": "http://127.0.0.1:9/hook"})
    assert not h.notifier.submit(notify("no-hook-team"))
    assert h.notifier.stats.dropped == 1 and h.notifier.stats.pending == 0


async def test_full_queue_drops_and_recovers(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("ok")}, max_queue=2)
    notifier = h.notifier
    assert notifier.submit(notify(reason="dispatch"))  # queued before run(): kept
    assert notifier.submit(notify(reason="no_ack"))
    assert not notifier.submit(notify(reason="deadline"))
    assert (notifier.stats.dropped, notifier.stats.pending) == (1, 2)
    async with h.running():
        assert [(await h.next()).reason for _ in range(2)] == ["dispatch", "no_ack"]
        assert notifier.stats.pending == 0
        assert notifier.submit(notify(reason="resolved"))
        assert (await h.next()).reason == "resolved"
    assert notifier.stats.delivered == 3 and notifier.stats.dropped == 1


async def test_submit_from_another_thread_keeps_order(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("ok")})
    async with h.running() as notifier:
        accepted: list[bool] = []

        def mqtt_thread() -> None:
            accepted.extend(notifier.submit(notify(tier=i, reason=f"r{i}")) for i in range(5))

        thread = threading.Thread(target=mqtt_thread)
        thread.start()
        deliveries = [await h.next() for _ in range(5)]
        thread.join(WAIT_S)
    assert accepted == [True] * 5
    assert [d.reason for d in deliveries] == [f"r{i}" for i in range(5)]
    assert [b["notify"]["tier"] for b in receiver.bodies("ok")] == list(range(5))


async def test_undelivered_notification_waits_for_the_next_run(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("hang")}, timeout_s=30.0)
    async with h.running() as notifier:
        notifier.submit(notify())
        await asyncio.wait_for(receiver.hanging.wait(), WAIT_S)
    assert notifier.stats.pending == 1 and h.done.empty()
    receiver.release.set()
    async with h.running():
        delivery = await h.next()
    assert delivery.ok and notifier.stats.pending == 0
    assert len({key for _, _, key in receiver.requests}) == 1  # the retry keeps its key


async def test_failing_delivery_record_does_not_stop_deliveries(receiver: Receiver) -> None:
    seen: list[str] = []
    both = asyncio.Event()

    def record(delivery: Delivery) -> None:
        seen.append(delivery.reason)
        if len(seen) == 2:
            both.set()
        if len(seen) == 1:
            raise OSError("disk full")

    notifier = WebhookNotifier({"mfs-north": receiver.url("ok")}, ManualClock(), on_delivery=record)
    task = asyncio.create_task(notifier.run())
    notifier.submit(notify(reason="a"))
    notifier.submit(notify(reason="b"))
    await asyncio.wait_for(both.wait(), WAIT_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["a", "b"] and notifier.stats.delivered == 2


async def test_payload_that_is_not_json_fails_without_a_request(receiver: Receiver) -> None:
    h = Harness({"mfs-north": receiver.url("ok")})
    async with h.running() as notifier:
        notifier.submit(Notify("mfs-north", 0, "dispatch", {"id": "inc-1", "bad": {1, 2}}))
        delivery = await h.next()
    assert (delivery.ok, delivery.attempts, delivery.incident) == (False, 0, "inc-1")
    assert delivery.error.startswith("payload is not JSON")
    assert receiver.requests == []


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "/relative/hook", "not a url"])
def test_bad_webhook_url_is_a_config_error_naming_the_team(url: str) -> None:
    with pytest.raises(ConfigError, match=r"fire team 'mfs-north': webhook_url"):
        WebhookNotifier({"mfs-north": url}, ManualClock())
