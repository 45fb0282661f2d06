"""The forwarder: drains the spool's outbox into the time-series database.

Oldest first within priority classes (the spool's `next_batch` order), one batch at a
time. A batch is deleted from the outbox only after the database accepted it, so a crash
or an outage repeats writes but never loses one (same series + timestamp = same point).
The spool's `mark_forwarded` keeps the report measurements of the batch in its history
table, which `next_batch` never reads: nothing is sent twice (docs/spool.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from gateway.clock import Clock
from gateway.errors import SpoolError
from gateway.forward.writer import LineWriter, WriteOutcome
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

IDLE_WAIT_S: Final = 1.0  # re-check an empty outbox at least this often without a notify
_EWMA_ALPHA: Final = 0.3
_DEAD_LETTER_STAGE: Final = "forward"


class OutboxRowLike(Protocol):
    """One outbox row as the spool returns it (`gateway.spool.records.OutboxRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def received_ms(self) -> int: ...
    @property
    def line(self) -> str: ...


class SpoolLike(Protocol):
    """The part of `gateway.spool.store.Spool` the forwarder uses (blocking; run in a thread)."""

    def next_batch(self, limit: int) -> Sequence[OutboxRowLike]: ...
    def mark_forwarded(self, ids: Sequence[int]) -> None: ...
    def dead_letter_lines(self, rows: Sequence[tuple[int, str, str]], stage: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ForwarderStats:
    """A snapshot for the API and health checks."""

    lines_forwarded: int
    lines_dead_lettered: int
    errors: int
    backoff_s: float  # the last backoff slept; 0 after a success
    drain_lines_per_s: float
    lag_s: float  # now - oldest receive time in the next batch; 0 when the outbox is empty
    last_error: str


class Forwarder:
    """Moves lines from the spool to a `LineWriter` until cancelled.

    - `ok`: the rows are deleted from the outbox.
    - `retry`: exponential backoff with full jitter in [backoff_min_s, cap], the cap
      doubling from backoff_min_s up to backoff_max_s; reset by the next success.
    - `rejected`: the batch is split in halves and each written on its own, so good lines
      are never lost with a bad one; a single rejected line is dead-lettered with the
      server's message.
    The caller owns the writer and closes it.
    """

    def __init__(
        self,
        spool: SpoolLike,
        writer: LineWriter,
        metrics: GatewayMetrics,
        clock: Clock,
        batch_lines: int = 5000,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        jitter: Callable[[float, float], float] = random.uniform,
        idle_wait_s: float = IDLE_WAIT_S,
    ) -> None:
        if batch_lines < 1:
            raise ValueError(f"batch_lines must be >= 1, got {batch_lines}")
        if not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError(
                f"backoff needs 0 < backoff_min_s <= backoff_max_s,"
                f" got {backoff_min_s} and {backoff_max_s}"
            )
        self._spool = spool
        self._writer = writer
        self._metrics = metrics
        self._clock = clock
        self._batch_lines = batch_lines
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._jitter = jitter
        self._idle_wait_s = idle_wait_s
        self._wakeup = asyncio.Event()
        self._failures = 0  # consecutive retryable failures
        self._backoff_s = 0.0
        self._forwarded = 0
        self._dead = 0
        self._errors = 0
        self._drain_rate = 0.0
        self._lag_s = 0.0
        self._last_error = ""
        # Rows the database has but the spool could not delete yet (a full disk can refuse
        # even deletes): skipped when reading, deleted again later; never re-sent meanwhile.
        self._undeleted: set[int] = set()

    def notify(self) -> None:
        """New rows were committed: wake the forwarder if it waits on an empty outbox."""
        self._wakeup.set()

    @property
    def stats(self) -> ForwarderStats:
        """Counters since start, the current backoff, drain rate and lag."""
        return ForwarderStats(
            lines_forwarded=self._forwarded,
            lines_dead_lettered=self._dead,
            errors=self._errors,
            backoff_s=self._backoff_s,
            drain_lines_per_s=self._drain_rate,
            lag_s=self._lag_s,
            last_error=self._last_error,
        )

    async def run(self) -> None:
        """Forward until cancelled; a cancelled write is simply repeated next time."""
        while True:
            # Cleared before reading, so a commit that lands during the read wakes us.
            self._wakeup.clear()
            started = self._clock.monotonic()
            try:
                rows = await self._next_rows()
                self._set_lag(rows)
                if not rows:
                    await self._idle()
                    continue
                done, outcome = await self._forward(rows)
            except SpoolError as exc:
                # A full disk can refuse even deletes; written rows are simply sent again
                # later (same points), so wait and retry like an unreachable database.
                outcome = WriteOutcome("retry", str(exc), "spool")
                self._count_error(outcome)
                relieve = getattr(self._spool, "relieve", None)
                if relieve is not None:
                    await asyncio.to_thread(relieve)
                await self._back_off(outcome)
                continue
            if outcome.status == "retry":
                await self._back_off(outcome)
                continue
            self._failures = 0
            self._backoff_s = 0.0
            self._observe_drain(done, self._clock.monotonic() - started)

    async def _forward(self, rows: Sequence[OutboxRowLike]) -> tuple[int, WriteOutcome]:
        """Write rows, bisecting on rejection; (rows resolved, first retry outcome or ok)."""
        outcome = await self._writer.write([r.line for r in rows])
        if outcome.status == "ok":
            # Counted as soon as the database has them, whatever happens to the delete.
            self._failures = 0
            self._backoff_s = 0.0
            self._forwarded += len(rows)
            self._metrics.forward_lines.inc(len(rows))
            ids = [r.id for r in rows]
            try:
                await asyncio.to_thread(self._spool.mark_forwarded, ids)
            except SpoolError as exc:
                self._undeleted.update(ids)
                self._count_error(WriteOutcome("retry", str(exc), "spool"))
            return len(rows), outcome
        self._count_error(outcome)
        if outcome.status == "retry":
            return 0, outcome
        if len(rows) == 1:
            row = rows[0]
            reason = outcome.message or "rejected by the database"
            log.warning("dead-lettering a line the database rejected: %s: %.200s", reason, row.line)
            await asyncio.to_thread(
                self._spool.dead_letter_lines, [(row.id, row.line, reason)], _DEAD_LETTER_STAGE
            )
            self._dead += 1
            self._metrics.dead_letters.labels(stage=_DEAD_LETTER_STAGE).inc()
            return 1, WriteOutcome("ok")
        half = len(rows) // 2
        resolved = 0
        for part in (rows[:half], rows[half:]):
            n, part_outcome = await self._forward(part)
            resolved += n
            if part_outcome.status == "retry":
                return resolved, part_outcome
        return resolved, WriteOutcome("ok")

    async def _next_rows(self) -> list[OutboxRowLike]:
        """The next batch, without rows already written whose delete is still pending."""
        if self._undeleted:
            pending = sorted(self._undeleted)
            try:
                await asyncio.to_thread(self._spool.mark_forwarded, pending)
                self._undeleted.clear()
            except SpoolError:
                pass  # still refused: keep skipping them
        limit = self._batch_lines + len(self._undeleted)
        rows = await asyncio.to_thread(self._spool.next_batch, limit)
        if self._undeleted:
            rows = [r for r in rows if r.id not in self._undeleted]
        return list(rows[: self._batch_lines])

    def _count_error(self, outcome: WriteOutcome) -> None:
        self._errors += 1
        self._last_error = outcome.message
        self._metrics.forward_errors.labels(reason=outcome.reason or outcome.status).inc()

    async def _back_off(self, outcome: WriteOutcome) -> None:
        cap = min(self._backoff_max_s, self._backoff_min_s * 2.0**self._failures)
        self._failures += 1
        delay = max(self._backoff_min_s, min(cap, self._jitter(self._backoff_min_s, cap)))
        self._backoff_s = delay
        log.warning(
            "database write failed (%s), retry %d in %.1f s: %s",
            outcome.reason or outcome.status,
            self._failures,
            delay,
            outcome.message,
        )
        await self._sleep(delay)

    async def _idle(self) -> None:
        """Wait for `notify()` or `idle_wait_s` (through the injected sleep), whichever first."""
        waiter = asyncio.ensure_future(self._wakeup.wait())
        timer = asyncio.ensure_future(self._sleep(self._idle_wait_s))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()
            await asyncio.gather(waiter, timer, return_exceptions=True)

    def _set_lag(self, rows: Sequence[OutboxRowLike]) -> None:
        if rows:
            oldest = min(r.received_ms for r in rows)
            self._lag_s = max(0.0, (self._clock.wall_ms() - oldest) / 1000.0)
        else:
            self._lag_s = 0.0
        self._metrics.forward_lag.set(self._lag_s)

    def _observe_drain(self, lines: int, elapsed_s: float) -> None:
        """EWMA of lines per second over recent batches (read, write and delete included)."""
        if lines <= 0 or elapsed_s <= 0:
            return
        sample = lines / elapsed_s
        if self._drain_rate == 0.0:
            self._drain_rate = sample
        else:
            self._drain_rate += _EWMA_ALPHA * (sample - self._drain_rate)
        self._metrics.forward_drain_rate.set(self._drain_rate)
