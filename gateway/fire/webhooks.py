"""Fire-team webhooks: JSON POSTs with retries, never in the way of the MQTT linkage.

The alarm lane calls `submit` on the MQTT thread; it only hands the notification over to
the notifier's event loop and returns. `run` delivers: one worker per webhook URL (a
receiver sees a team's notifications in order; a slow or dead endpoint holds up only
itself), retries connection errors, timeouts, 5xx and 429 with exponential backoff, and
reports each finished delivery once (`Delivery`) for the durable record.

Body: the `Notify` payload (the fire alert object) unchanged, plus
`"notify": {"team", "tier", "reason"}` — who the message is for and why. (The alert has its
own `team`, `tier` and `reason`, which mean the ack chain's team, the highest tier alerted
and the last transition's reason, so they are not overwritten.) Each notification carries
an `Idempotency-Key` header, the same on every retry, so a receiver can drop duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from gateway.clock import Clock
from gateway.errors import ConfigError
from gateway.fire.actions import Notify

log = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 60.0
_DETAIL_BYTES: Final = 200


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification's attempt series: where it went, how often, and how it ended.

    `status` is the last HTTP status (None: no response); `error` is empty when `ok`;
    `first_ms`/`last_ms` are wall times of the first attempt and the end of the last.
    """

    team: str
    url: str
    reason: str
    incident: str | None
    attempts: int
    ok: bool
    status: int | None
    error: str
    first_ms: int
    last_ms: int


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Counts since construction; `pending` is accepted but not finished."""

    delivered: int
    failed: int
    dropped: int
    pending: int


@dataclass(frozen=True, slots=True)
class _Job:
    notify: Notify
    url: str
    key: str


def check_webhook_url(team: str, url: str) -> None:
    """ConfigError unless `url` is an absolute http(s) URL with a host."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise ConfigError(f"fire team {team!r}: webhook_url {url!r} is not a URL ({exc})") from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ConfigError(
            f"fire team {team!r}: webhook_url {url!r} must be an http:// or https:// URL "
            "with a host, e.g. https://oapi.dingtalk.com/robot/send?access_token=…"
        )


class WebhookNotifier:
    """Delivers `Notify` actions to each team's webhook; `submit` from any thread, `run` once."""

    def __init__(
        self,
        urls: Mapping[str, str],
        clock: Clock,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 4,
        backoff_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_delivery: Callable[[Delivery], None] | None = None,
        max_queue: int = 1000,
    ) -> None:
        """`urls`: team id → webhook URL (ConfigError names a bad one); teams not in it
        have no webhook. `max_queue` bounds accepted-but-unfinished notifications."""
        for team, url in urls.items():
            check_webhook_url(team, url)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._urls = dict(urls)
        self._clock = clock
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._on_delivery = on_delivery
        self._max_queue = max_queue
        # Guards what submit (any thread) and the loop share: loop, backlog, counters.
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # set while run() accepts jobs
        self._running = False
        self._backlog: deque[_Job] = deque()  # accepted while run() is not running
        self._pending = 0
        self._delivered = self._failed = self._dropped = 0
        self._full_warned = False
        # Loop-thread only:
        self._tg: asyncio.TaskGroup | None = None
        self._session: aiohttp.ClientSession | None = None
        self._queues: dict[str, asyncio.Queue[_Job]] = {}

    @property
    def stats(self) -> WebhookStats:
        """Delivered, failed, dropped and pending notifications."""
        with self._lock:
            return WebhookStats(self._delivered, self._failed, self._dropped, self._pending)

    def submit(self, notify: Notify) -> bool:
        """Accept a notification for delivery; never blocks, never raises.

        False (counted as dropped) when the team has no webhook or `max_queue`
        notifications are already pending.
        """
        try:
            url = self._urls.get(notify.team)
            if url is None:
                log.debug("no webhook for team %r: %s not sent", notify.team, notify.reason)
                with self._lock:
                    self._dropped += 1
                return False
            job = _Job(notify, url, uuid.uuid4().hex)
            with self._lock:
                if self._pending >= self._max_queue:
                    self._dropped += 1
                    if not self._full_warned:  # once per episode of a full queue
                        self._full_warned = True
                        log.warning(
                            "webhook queue full (%d pending): dropping notifications",
                            self._pending,
                        )
                    return False
                self._pending += 1
                if self._loop is None:
                    self._backlog.append(job)
                else:
                    # Under the lock, so run()'s shutdown never misses a handed-over job.
                    self._loop.call_soon_threadsafe(self._enqueue, job)
            return True
        except Exception:
            # The caller is the alarm lane: a notification problem must not break it.
            log.exception("webhook submit failed for team %r", notify.team)
            with self._lock:
                self._dropped += 1
            return False

    async def run(self) -> None:
        """Deliver until cancelled; what is left undelivered waits for the next `run`."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._running:
                raise RuntimeError("WebhookNotifier.run() is already running")
            self._running = True
        timeout = aiohttp.ClientTimeout(total=self._timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as tg:
                self._session, self._tg = session, tg
                with self._lock:
                    self._loop = loop
                    backlog, self._backlog = self._backlog, deque()
                for job in backlog:
                    self._enqueue(job)
                await asyncio.Future()  # until cancelled; the workers do the work
        finally:
            self._tg = self._session = None
            with self._lock:
                self._loop = None
                self._running = False
                for queue in self._queues.values():
                    while not queue.empty():
                        self._backlog.append(queue.get_nowait())
                left = len(self._backlog)
            self._queues.clear()
            if left:
                log.warning("webhooks stopped with %d notifications not delivered yet", left)

    def _enqueue(self, job: _Job) -> None:
        tg = self._tg
        if tg is None:  # handed over just as run() stopped: keep it for the next run
            with self._lock:
                self._backlog.append(job)
            return
        queue = self._queues.get(job.url)
        if queue is None:
            queue = self._queues[job.url] = asyncio.Queue()
            tg.create_task(self._worker(queue), name=f"webhook {job.notify.team}")
        queue.put_nowait(job)

    async def _worker(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                delivery = await self._deliver(job)
            except asyncio.CancelledError:
                with self._lock:
                    self._backlog.appendleft(job)  # same key: a receiver can drop a repeat
                raise
            self._finish(delivery)

    async def _deliver(self, job: _Job) -> Delivery:
        notify = job.notify
        incident = notify.payload.get("id")
        first_ms = self._clock.wall_ms()

        def done(attempts: int, ok: bool, status: int | None, error: str) -> Delivery:
            return Delivery(
                team=notify.team,
                url=job.url,
                reason=notify.reason,
                incident=incident if isinstance(incident, str) else None,
                attempts=attempts,
                ok=ok,
                status=status,
                error=error,
                first_ms=first_ms,
                last_ms=self._clock.wall_ms(),
            )

        extra = {"team": notify.team, "tier": notify.tier, "reason": notify.reason}
        try:
            body = json.dumps({**notify.payload, "notify": extra}, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            return done(0, False, None, f"payload is not JSON: {exc}")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": job.key,
            "User-Agent": "community-gateway",
        }
        session = self._session
        if session is None:  # workers run only inside run()
            raise RuntimeError("webhook delivery outside WebhookNotifier.run()")
        attempts = 0
        while True:
            attempts += 1
            status: int | None = None
            retry_after: float | None = None
            try:
                async with session.post(
                    job.url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        return done(attempts, True, status, "")
                    detail = (await resp.content.read(_DETAIL_BYTES)).decode(errors="replace")
                    error = f"HTTP {status}" + (f": {detail.strip()}" if detail.strip() else "")
                    retryable = status >= 500 or status == 429
                    if status == 429:
                        retry_after = _retry_after_s(resp.headers.get("Retry-After"))
            except TimeoutError:
                error, retryable = f"no response within {self._timeout_s:g} s", True
            except aiohttp.InvalidURL as exc:
                error, retryable = f"invalid URL: {exc}", False
            except aiohttp.ClientError as exc:
                error, retryable = f"{type(exc).__name__}: {exc}", True
            except Exception as exc:  # a surprise fails this delivery, never the worker
                error, retryable = f"unexpected {type(exc).__name__}: {exc}", False
            if not retryable or attempts >= self._max_attempts:
                return done(attempts, False, status, error)
            delay = min(self._backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_BACKOFF_S))
            await self._sleep(delay)

    def _finish(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending -= 1
            if delivery.ok:
                self._delivered += 1
            else:
                self._failed += 1
            if self._pending < self._max_queue:
                self._full_warned = False
        where = (delivery.team, delivery.reason, delivery.incident, delivery.attempts)
        if delivery.ok:
            log.info("webhook delivered: team=%s reason=%s incident=%s attempts=%d", *where)
        else:
            log.warning(
                "webhook failed: team=%s reason=%s incident=%s attempts=%d: %s",
                *where,
                delivery.error,
            )
        if self._on_delivery is not None:
            try:
                self._on_delivery(delivery)
            except Exception:
                log.exception("recording the webhook delivery to %s failed", delivery.team)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delay form only; HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
