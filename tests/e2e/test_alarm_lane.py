"""The alarm lane: alarms reach the fire-engine hook without waiting for the bulk batch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.app import Gateway
from gateway.config import parse_config
from gateway.decode.message import DeviceMessage
from tests.e2e.harness import SMALL_SITE, now_ms, publish_all, telemetry
from tests.servers import MosquittoServer


async def test_alarm_reaches_hook_while_bulk_batch_is_still_open(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    text = SMALL_SITE.format(
        mqtt_port=mosquitto.port,
        client_id="gw-alarm-lane",
        api="none",
        influx_url="http://127.0.0.1:1",
        database="x",
        spool=tmp_path / "spool.db",
        api_port=1,
    )
    cfg = parse_config(text, "alarm-lane.toml", ["api.enabled=false", "ingest.batch_max_ms=1000"])
    seen: list[tuple[str, int]] = []
    gw: Gateway

    def hook(msg: DeviceMessage) -> None:
        seen.append((msg.topic.device, gw.pipeline.committed_total))

    gw = Gateway(cfg, alarm_hook=hook)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        assert await gw.link.wait_connected(10)
        ts = now_ms()
        bulk = [telemetry("SD-b01-1-1", ts + i) for i in range(200)]
        alarm = (
            "community/shazui/b01/smoke/SD-b01-1-2/event",
            json.dumps({"ts": ts, "event": "alarm", "smoke": 3.2}).encode(),
        )
        await asyncio.to_thread(publish_all, mosquitto.port, [*bulk, alarm])
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.005)
        assert seen == [("SD-b01-1-2", 0)], "the alarm waited for the bulk batch"
        for _ in range(400):
            if gw.pipeline.committed_total == 201:
                break
            await asyncio.sleep(0.01)
        assert gw.pipeline.committed_total == 201
        stats = gw.spool.stats()
        assert stats.rows_by_class.get(2) == 1  # the alarm itself is stored, never evictable
        assert len(gw.pipeline.alarm_lane_ms) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
