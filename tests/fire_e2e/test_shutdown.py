"""Shutdown must not hang on the fire runtime's timer loop.

Seen end to end: a scene's clean stop (`Gateway.run` after its stop event) now and then
never returns, because `Gateway.run` cancels `FireRuntime.run` while a `wake()` (a late
ack dispatched during the drain) has just completed the `wait_for(self._wake.wait(), …)`
it sits in; Python 3.11's `asyncio.wait_for` then returns the result and drops the
cancellation, so the loop goes on and the TaskGroup waits for it forever. This pins the
exact interleaving on the runtime alone, deterministically.
"""

from __future__ import annotations

import asyncio

from gateway.clock import ManualClock
from gateway.config import FireSection
from gateway.fire import FireEngine
from gateway.fire.runtime import FireRuntime
from gateway.site import SiteIndex, SiteModel
from gateway.spool import AuditRow, SpoolRow


async def _commit(rows: list[SpoolRow], audit: list[AuditRow]) -> None:
    return None


async def test_fire_timer_loop_ends_when_cancelled_right_after_a_wake() -> None:
    clock = ManualClock()
    engine = FireEngine(FireSection(), SiteIndex(SiteModel()), "s", "community", clock)
    runtime = FireRuntime(
        engine, site_id="s", clock=clock, publish=lambda *_: None, publish_alert=lambda _: None
    )
    task = asyncio.create_task(runtime.run(_commit))
    await asyncio.sleep(0.05)  # waiting for a wake or its 1 s timer poll
    runtime.wake()
    await asyncio.sleep(0)  # the wake is delivered: the inner wait is done …
    await asyncio.sleep(0)
    task.cancel()  # … when shutdown cancels the loop (Gateway.run on its stop event)
    done, _ = await asyncio.wait({task}, timeout=3.0)
    if not done:
        task.cancel()  # release the test's event loop; the bug is what the assert says
    assert done, "FireRuntime.run ignored its cancellation: Gateway.run would never return"
    assert task.cancelled()
