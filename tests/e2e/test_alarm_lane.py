"""The alarm lane: alarms reach the fire-engine hook without waiting for the bulk batch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.app import Gateway
from gateway.config import GatewayConfig, parse_config
from gateway.decode.message import DeviceMessage
from tests.e2e.harness import SMALL_SITE, now_ms, publish_all, telemetry
from tests.servers import MosquittoServer


def _config(tmp_path: Path, port: int, client_id: str, *overrides: str) -> GatewayConfig:
    """The small test site on this broker, spool in tmp_path, no API, no database."""
    text = SMALL_SITE.format(
        mqtt_port=port,
        client_id=client_id,
        api="none",
        influx_url="http://127.0.0.1:1",
        database="x",
        spool=tmp_path / "spool.db",
        api_port=1,
    )
    return parse_config(text, f"{client_id}.toml", ["api.enabled=false", *overrides])


def _recording_gateway(cfg: GatewayConfig, seen: list[tuple[str, int]]) -> Gateway:
    """A gateway whose alarm hook records (device, messages committed so far)."""
    gw: Gateway

    def hook(msg: DeviceMessage) -> None:
        seen.append((msg.topic.device, gw.pipeline.committed_total))

    gw = Gateway(cfg, alarm_hook=hook)
    return gw


def _smoke_alarm(ts_ms: int) -> tuple[str, bytes]:
    """An alarm of detector SD-b01-1-2 (topic, payload)."""
    body = {"ts": ts_ms, "event": "alarm", "smoke": 3.2}
    return "community/shazui/b01/smoke/SD-b01-1-2/event", json.dumps(body).encode()


async def test_alarm_reaches_hook_while_bulk_batch_is_still_open(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg = _config(tmp_path, mosquitto.port, "gw-alarm-lane", "ingest.batch_max_ms=1000")
    seen: list[tuple[str, int]] = []
    gw = _recording_gateway(cfg, seen)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        assert await gw.link.wait_connected(10)
        ts = now_ms()
        bulk = [telemetry("SD-b01-1-1", ts + i) for i in range(200)]
        alarm = _smoke_alarm(ts)
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


async def test_alarm_behind_a_backlog_takes_the_alarm_connection_and_is_handled_once(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    cfg = _config(tmp_path, mosquitto.port, "gw-alarm-backlog", "mqtt.receive_maximum=500")
    seen: list[tuple[str, int]] = []
    gw = Gateway(cfg)
    first = asyncio.Event()
    task = asyncio.create_task(gw.run(first))
    assert await gw.link.wait_connected(10)
    first.set()
    await asyncio.wait_for(task, 20)  # the broker keeps the main session; no alarm session

    # 20,000 readings queued for the stopped gateway, then an alarm behind all of them.
    ts = now_ms() - 3_600_000
    backlog = [telemetry(f"SD-b01-1-{i % 4 + 1}", ts + 1000 * i) for i in range(20_000)]
    await asyncio.to_thread(publish_all, mosquitto.port, backlog)

    gw = _recording_gateway(cfg, seen)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        assert await gw.alarm_link.wait_connected(10)
        alarm = _smoke_alarm(now_ms())
        await asyncio.to_thread(publish_all, mosquitto.port, [alarm], client_id="alarm-dev")
        for _ in range(400):
            if seen:
                break
            await asyncio.sleep(0.005)
        assert seen, "the alarm did not reach the hook within 2 s"
        assert seen[0][1] < len(backlog) // 2, f"the alarm waited for the backlog: {seen}"
        for _ in range(6000):
            if gw.pipeline.committed_total >= len(backlog) + 1:
                break
            await asyncio.sleep(0.01)
        assert gw.pipeline.committed_total == len(backlog) + 1  # the main connection's copy
        assert len(seen) == 1  # ... reached the lane again, and was not handed over twice
        assert gw.spool.stats().rows_by_class.get(2) == 1  # stored once, as an alarm
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
