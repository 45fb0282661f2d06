"""Ingest pipeline: raw MQTT messages → decoded messages → one spool commit per micro-batch.

Two lanes (DESIGN.md principle 1):
- the **alarm lane**: event messages of fire-capable kinds are decoded on the event loop
  the moment they arrive and alarms are handed to the fire-engine hook at once;
- the **bulk lane**: everything else waits at most `batch_max_ms` (or until
  `batch_max_msgs` are queued) and is decoded and committed in one transaction.
Every message is acknowledged to the broker only after the commit that holds it
(principle 2); what cannot be parsed or decoded is dead-lettered in that same commit.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage, may_be_alarm
from gateway.errors import DecodeError, SpoolError, TopicError
from gateway.ingest.mqtt import RawMessage
from gateway.ingest.ratelimit import DeviceRateLimiter, message_time_s
from gateway.ingest.topic import DeviceTopic, FireActionTopic, parse_topic
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

ALARMS_REMEMBERED = 4096  # alarms both connections may bring: handed to the hook once

AlarmHook = Callable[[DeviceMessage], None]
_TOPIC_CACHE_MAX = 200_000


@dataclass(slots=True)
class Batch:
    """What one micro-batch produced, handed to `BatchSink.commit` for one transaction."""

    raws: list[RawMessage] = field(default_factory=list)
    messages: list[DeviceMessage] = field(default_factory=list)
    dead: list[tuple[RawMessage, str, str]] = field(default_factory=list)  # raw, stage, reason
    actions: list[tuple[FireActionTopic, RawMessage]] = field(default_factory=list)
    rate_limited: int = 0  # messages of flooding devices acknowledged but not stored


class BatchSink:
    """Where a batch goes: the composition root implements it (spool, registry, forwarder)."""

    async def commit(self, batch: Batch) -> None:
        """Store the batch durably; return only once it is committed."""
        raise NotImplementedError


class IngestPipeline:
    """Micro-batching ingest with an alarm fast lane and ack-after-commit."""

    def __init__(
        self,
        *,
        root: str,
        site: str,
        decode: Callable[[DeviceTopic, bytes, int], DeviceMessage],
        sink: BatchSink,
        ack: Callable[[Sequence[RawMessage]], int],
        alarm_hook: AlarmHook,
        metrics: GatewayMetrics,
        clock: Clock,
        batch_max_ms: int = 20,
        batch_max_msgs: int = 2000,
        commit_retry_s: float = 1.0,
        limiter: DeviceRateLimiter | None = None,
        relieve: Callable[[], object] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        capacity: int = 5_000,
    ) -> None:
        self._root = root
        self._site = site
        self._decode = decode
        self._sink = sink
        self._ack = ack
        self._alarm_hook = alarm_hook
        self._metrics = metrics
        self._clock = clock
        self._batch_max_s = batch_max_ms / 1000
        self._batch_max_msgs = batch_max_msgs
        self._inbox: collections.deque[
            tuple[RawMessage, DeviceMessage | FireActionTopic | str | None]
        ] = collections.deque()
        self._capacity = capacity
        self.queued_peak = 0  # the most uncommitted messages held at once (since start)
        self._room = threading.Event()
        self._room.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._signalled = False
        self._stopping = False
        self._topics: dict[str, DeviceTopic | FireActionTopic | str | None] = {}
        self.committed_total = 0
        self.commit_error: str | None = None
        self._commit_retry_s = commit_retry_s
        self._limiter = limiter
        self._relieve = relieve
        self._sleep = sleep
        self.alarm_lane_ms: collections.deque[float] = collections.deque(maxlen=2000)
        self._alarmed: collections.OrderedDict[tuple[str, bytes], None] = collections.OrderedDict()
        self._alarm_lock = threading.Lock()
        self._in_counters: dict[tuple[str, str], int] = {}

    # --- paho thread ---

    def submit(self, raw: RawMessage) -> None:
        """Accept a message on the MQTT thread: the alarm lane runs right here.

        Event messages of fire-capable kinds are decoded at once and alarms handed to the
        hook on this thread (so the hook must be thread-safe); every message, decoded or
        not, then waits in the inbox for the next batch commit.
        """
        decoded: DeviceMessage | FireActionTopic | str | None = None
        parts = raw.topic.split("/", 6)
        if len(parts) == 6 and may_be_alarm(parts[3], parts[5]):
            decoded = self._decode_one(raw)
            if isinstance(decoded, DeviceMessage) and decoded.is_alarm:
                self._alarm(raw, decoded)
        inbox = self._inbox
        inbox.append((raw, decoded))
        self.queued_peak = max(self.queued_peak, len(inbox))
        loop = self._loop
        if loop is not None and (not self._signalled or len(inbox) == self._batch_max_msgs):
            self._signalled = True
            loop.call_soon_threadsafe(self._wakeup.set)

    def wait_for_room(self, timeout_s: float) -> bool:
        """On the MQTT thread, before reading more: True when the inbox has room.

        The inbox holds at most `capacity` uncommitted messages (the MQTT receive maximum)
        whether or not the broker honours it: when full, the MQTT thread stops reading and
        TCP pushes back on the broker, which keeps the messages in its session.
        """
        if len(self._inbox) < self._capacity:
            return True
        self._room.clear()
        if len(self._inbox) < self._capacity:  # a batch was taken meanwhile
            return True
        return self._room.wait(timeout_s)

    def alarm_only(self, raw: RawMessage) -> None:
        """A message of the alarm fast path (gateway/ingest/alarmlink.py, its own thread):
        an alarm goes to the hook unless the main connection brought it first; nothing is
        queued (the main connection's copy is the one stored)."""
        decoded = self._decode_one(raw)
        if isinstance(decoded, DeviceMessage) and decoded.is_alarm:
            self._alarm(raw, decoded)

    def _first_time(self, raw: RawMessage) -> bool:
        """True the first time this alarm (topic and payload) reaches the lane."""
        key = (raw.topic, raw.payload)
        with self._alarm_lock:
            if key in self._alarmed:
                return False
            self._alarmed[key] = None
            if len(self._alarmed) > ALARMS_REMEMBERED:
                self._alarmed.popitem(last=False)
            return True

    def _alarm(self, raw: RawMessage, msg: DeviceMessage) -> None:
        if not self._first_time(raw):
            return  # the other connection brought it first
        # Measured as the hook is called (receive → hook); what the hook then does (the
        # fire engine's linkage) is measured end to end by bench/fire.py.
        latency = max(self._clock.monotonic() - raw.received_mono, 0.0)
        self._metrics.alarm_lane_latency.observe(latency)
        self.alarm_lane_ms.append(latency * 1000)
        try:
            self._alarm_hook(msg)
        except Exception:  # the hook's failure must not lose the message
            log.exception("alarm hook failed for %s", raw.topic)

    async def run(self) -> None:
        """Batch, commit and acknowledge until `stop()`; the last batch completes first."""
        self._loop = asyncio.get_running_loop()
        if self._inbox:
            self._wakeup.set()
        while not self._stopping:
            await self._wakeup.wait()
            if self._stopping:
                break
            if len(self._inbox) < self._batch_max_msgs:
                await asyncio.sleep(self._batch_max_s)
            await self._process_once()

    def stop(self) -> None:
        """Ask `run` to return after the batch in progress (call `drain` afterwards)."""
        self._stopping = True
        self._wakeup.set()

    async def drain(self) -> None:
        """Commit and acknowledge everything received so far (used on shutdown).

        If the spool refuses, the rest stays unacknowledged in the broker's session.
        """
        while self._inbox:
            if not await self._process_once(retry=False):
                return

    async def _process_once(self, retry: bool = True) -> bool:
        self._wakeup.clear()
        self._signalled = False
        batch = self._take_batch()
        if self._inbox:
            self._wakeup.set()
        if not batch.raws:
            return True
        while True:
            try:
                await self._sink.commit(batch)
                break
            except SpoolError as exc:
                if self.commit_error is None:
                    log.error(
                        "spool commit failed: %s; messages stay unacknowledged in the broker "
                        "and the commit is retried every %.0f s",
                        exc,
                        self._commit_retry_s,
                    )
                self.commit_error = str(exc)
                if not retry or self._stopping:
                    return False
                await self._sleep(self._commit_retry_s)
                if self._relieve is not None:
                    await asyncio.to_thread(self._relieve)
        if self.commit_error is not None:
            log.warning("spool commits work again")
            self.commit_error = None
        self._ack(batch.raws)
        self.committed_total += len(batch.raws)
        self._metrics.batches.inc()
        return True

    def _take_batch(self) -> Batch:
        batch = Batch()
        inbox = self._inbox
        for _ in range(min(len(inbox), self._batch_max_msgs)):
            raw, result = inbox.popleft()
            self._place(batch, raw, self._decode_one(raw) if result is None else result)
        if len(inbox) < self._capacity:
            self._room.set()
        self._flush_in_counters()
        return batch

    def _place(
        self, batch: Batch, raw: RawMessage, result: DeviceMessage | str | FireActionTopic
    ) -> None:
        batch.raws.append(raw)
        if isinstance(result, DeviceMessage):
            limiter = self._limiter
            if limiter is not None and not result.is_alarm:
                t = result.topic
                now = message_time_s(result.ts_ms, result.received_ms)
                if not limiter.allow((t.building, t.kind, t.device), now):
                    batch.rate_limited += 1
                    return
            batch.messages.append(result)
            key = (result.topic.kind, result.topic.channel)
            self._in_counters[key] = self._in_counters.get(key, 0) + 1
        elif isinstance(result, FireActionTopic):
            batch.actions.append((result, raw))
        elif result:
            stage, _, reason = result.partition(":")
            batch.dead.append((raw, stage, reason.strip()))

    def _decode_one(self, raw: RawMessage) -> DeviceMessage | FireActionTopic | str:
        """A DeviceMessage, a fire action, or `"stage: reason"` for the dead-letter table."""
        topic = self._topics.get(raw.topic, "")
        if topic == "":
            topic = self._parse(raw.topic)
        if isinstance(topic, str):
            return topic
        if topic is None:
            return ""  # our own outbound cmd/config echoed back (MQTT 3.1.1): ignore
        if isinstance(topic, FireActionTopic):
            return topic
        try:
            return self._decode(topic, raw.payload, raw.received_ms)
        except DecodeError as exc:
            return f"decode: {exc}"

    def _parse(self, topic: str) -> DeviceTopic | FireActionTopic | str | None:
        try:
            parsed: DeviceTopic | FireActionTopic | str | None = parse_topic(
                topic, self._root, self._site
            )
        except TopicError as exc:
            parsed = f"topic: {exc}"
        if len(self._topics) >= _TOPIC_CACHE_MAX:
            self._topics.clear()
        self._topics[topic] = parsed
        return parsed

    def _flush_in_counters(self) -> None:
        for (kind, channel), n in self._in_counters.items():
            self._metrics.messages_in.labels(kind, channel).inc(n)
        self._in_counters.clear()

    @property
    def queued(self) -> int:
        """Messages received but not yet committed."""
        return len(self._inbox)
