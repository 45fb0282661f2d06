"""`community-gateway demo`: embedded broker, the example urban village, simulated traffic.

Nothing to install or configure: an amqtt broker on a free loopback port, the gateway on
the shipped `deploy/sites/urban-village.toml` with its spool as the history store, a
device simulator publishing a realistic mix, a smoke alarm every so often, and the live
dashboard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from gateway.api.server import status_snapshot
from gateway.app import Gateway
from gateway.config import GatewayConfig, load_config
from gateway.sim.publisher import publish
from gateway.sim.responder import DeviceResponder, TeamApp
from gateway.sim.traffic import SimMessage, TrafficModel

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "deploy" / "sites" / "urban-village.toml"
FIRST_FIRE_S = 5.0
FIRE_EVERY_S = 90.0
SECOND_DETECTOR_AFTER_S = 7.0
log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_embedded_broker(port: int) -> object:
    """Start an amqtt broker on 127.0.0.1:port (demo only: MQTT 3.1.1, no persistence)."""
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    return broker


def _fire_zones(cfg: GatewayConfig) -> list[tuple[str, str, str]]:
    """(building, detector, detector) of zones with two smoke detectors, for the fire story."""
    zones = []
    for b in cfg.site.buildings:
        for z in b.zones:
            canonical = [d for d in z.smoke if not _vendor(cfg, d)]
            if len(canonical) >= 2:
                zones.append((b.id, canonical[0], canonical[1]))
    return zones


def _vendor(cfg: GatewayConfig, device: str) -> bool:
    return any(r.kind == "smoke" and device.startswith(r.prefix) for r in cfg.site.profile_rules)


def _alarm(cfg: GatewayConfig, building: str, device: str) -> SimMessage:
    ts = time.time_ns() // 1_000_000
    topic = f"{cfg.mqtt.root}/{cfg.gateway.site}/{building}/smoke/{device}/event"
    payload = json.dumps({"ts": ts, "event": "alarm", "smoke": 3.4, "temp": 41.0}).encode()
    return SimMessage(topic, payload, "smoke", "event", building, device, ts, True)


def _traffic(
    cfg: GatewayConfig, model: TrafficModel, rate: float, stop: threading.Event
) -> Iterator[SimMessage]:
    """Everyday traffic, and every FIRE_EVERY_S a fire: one detector (pre-alarm), then a
    second one in the same zone (confirmed: linkage, dispatch)."""
    start_ms = time.time_ns() // 1_000_000
    zones = _fire_zones(cfg)
    rng = random.Random(7)
    next_fire = time.monotonic() + FIRST_FIRE_S
    second: tuple[float, str, str] | None = None
    for msg in model.messages(10**9, start_ms, rate):
        if stop.is_set():
            return
        now = time.monotonic()
        if zones and now >= next_fire:
            next_fire += FIRE_EVERY_S
            building, first, other = rng.choice(zones)
            second = (now + SECOND_DETECTOR_AFTER_S, building, other)
            yield _alarm(cfg, building, first)
        if second is not None and now >= second[0]:
            yield _alarm(cfg, second[1], second[2])
            second = None
        yield msg


def _summary(snap: dict[str, object], rate_in: float) -> Table:
    table = Table(title="community-gateway demo", show_header=False, expand=False)
    spool = snap["spool"]
    devices = snap["devices"]
    assert isinstance(spool, dict) and isinstance(devices, dict)
    table.add_row("broker", "connected" if snap["mqtt_connected"] else "connecting…")
    table.add_row("stored", f"{snap['committed']:,} messages ({rate_in:,.0f}/s)")
    table.add_row(
        "devices",
        f"{devices['online']} online, {devices['offline']} offline, "
        f"{devices['unknown']} not heard yet",
    )
    table.add_row("spool", f"{spool['rows']:,} rows, {spool['dead_letters']} dead letters")
    table.add_row("alarms", f"{snap['alarms_total']} (alarm lane)")
    incidents = snap.get("incidents")
    assert isinstance(incidents, list)
    for inc in incidents[:4]:
        where = f"building {inc['building']} floor {inc['floor']}"
        table.add_row(f"fire {inc['id']}", f"{inc['state']} — {where}, team {inc['team']}")
    return table


async def run_demo(duration_s: float, rate: float, api_port: int) -> int:
    """Run the demo until Ctrl-C (or `duration_s`); returns the exit code."""
    console = Console()
    broker_port = free_port()
    api_port = api_port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="community-gateway-demo-"))
    broker = await start_embedded_broker(broker_port)
    cfg = load_config(
        EXAMPLE_SITE,
        [
            f"mqtt.port={broker_port}",
            "mqtt.protocol='3.1.1'",
            "influx.api='none'",
            f"spool.path='{workdir / 'spool.db'}'",
            f"api.bind='127.0.0.1:{api_port}'",
        ],
    )
    logging.getLogger().setLevel(logging.WARNING)
    gw = Gateway(cfg)
    stop = asyncio.Event()
    sim_stop = threading.Event()
    console.print(
        f"[bold]community-gateway demo[/] — site [cyan]{cfg.gateway.site}[/] "
        f"({len(cfg.site.buildings)} buildings, {gw.site.device_count()} devices)"
    )
    console.print(f"  dashboard:  http://127.0.0.1:{api_port}/")
    console.print(f"  metrics:    http://127.0.0.1:{api_port}/metrics")
    console.print(
        f"  broker:     mosquitto_sub -h 127.0.0.1 -p {broker_port} -t "
        f"'{cfg.mqtt.root}/{cfg.gateway.site}/alerts/#' -v"
    )
    console.print(f"  spool:      {cfg.spool.path}")
    console.print("  Ctrl-C to stop.")
    model = TrafficModel(cfg, seed=1, profiles=gw.profiles)
    sim = asyncio.to_thread(
        publish,
        "127.0.0.1",
        broker_port,
        _traffic(cfg, model, rate, sim_stop),
        rate,
        qos=1,
        protocol="3.1.1",
        client_id="demo-simulator",
    )
    root, site = cfg.mqtt.root, cfg.gateway.site
    people: list[DeviceResponder | TeamApp] = [
        DeviceResponder("127.0.0.1", broker_port, root, site, protocol="3.1.1"),
        TeamApp("127.0.0.1", broker_port, root, site, protocol="3.1.1"),
    ]
    for part in people:
        part.start()
    gateway_task = asyncio.create_task(gw.run(stop))
    sim_task = asyncio.create_task(sim)
    started = time.monotonic()
    try:
        with Live(console=console, refresh_per_second=2) as live:
            prev, prev_t = 0, time.monotonic()
            while duration_s <= 0 or time.monotonic() - started < duration_s:
                await asyncio.sleep(1.0)
                if gateway_task.done():
                    break
                snap = await asyncio.to_thread(status_snapshot, gw)
                now = time.monotonic()
                committed = int(str(snap["committed"]))
                live.update(_summary(snap, (committed - prev) / (now - prev_t)))
                prev, prev_t = committed, now
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        sim_stop.set()
        await sim_task
        for part in people:
            part.stop()
        stop.set()
        await gateway_task
        await broker.shutdown()  # type: ignore[attr-defined]
    console.print(f"demo stopped; the spool stays at {cfg.spool.path}")
    return 0
