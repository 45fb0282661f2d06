"""A small fire site, the gateway running in-process on a manual clock, and its devices.

`Scene` owns one `Gateway` (on the session Mosquitto, with a site id of its own so no
retained alert of another test is seen) and a simulated device for every screen, voice
terminal and access controller the site model names, plus a fire-team app, the field
devices and a trouble-alert listener. Time moves only through `advance()`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import GatewayConfig, parse_config
from tests.fire_e2e.devices import (
    DoorConfirm,
    DoorController,
    Field,
    FireTeamApp,
    Listener,
    MqttActor,
    Terminal,
)

ROOT = "community"
# Times are multiples of 1/8 s so the manual clock adds them exactly (no float drift
# between a timer's due time and the clock advanced to it).
TICK_S = 0.125
ACK_S, ARRIVE_S, DEADLINE_S, VERIFY_S = 45.0, 120.0, 240.0, 90.0
RETRY_S, MAX_RETRIES, DOOR_CONFIRM_S = 5.0, 3, 4.0
STOP_TIMEOUT_S = 10.0
STORM = [f"SD-b2-9-{i:03d}" for i in range(200)]
# The documented default template, filled in for building b2 ("2栋"), floor 1.
TEXT_B2_F1 = (
    "2栋1楼发生火警，请立即从最近的安全出口疏散，切勿乘坐电梯，疏散时请用湿毛巾捂住口鼻，低姿前进。"
)

SITE_TOML = """
[gateway]
id = "gw-fire-e2e"
site = "{site}"

[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "{client_id}"
protocol = "5"

[influx]
api = "none"

[spool]
path = "{spool}"
synchronous = "normal"

[api]
enabled = false

[fire]
confirm_window_s = 60
verify_s = {verify_s}
ack_s = {ack_s}
arrive_s = {arrive_s}
deadline_s = {deadline_s}
camera_confidence = 0.7
command_retry_s = {retry_s}
command_max_retries = {max_retries}
door_confirm_s = {door_confirm_s}

[site]
name = "消防联动测试"
card_salt = "fire-e2e-salt"
gate_screens = ["SCR-gate-n"]

[[site.buildings]]
id = "b1"
name = "1栋"
floors = 9
position_m = [0.0, 0.0]
screens = ["SCR-b1-lobby", "SCR-b1-lift"]
voice = ["VT-b1"]
access = ["AC-b1"]
cameras = ["CAM-b1"]
  [[site.buildings.zones]]
  id = "b1-f3"
  floor = 3
  smoke = ["SD-b1-3-1", "SD-b1-3-2"]
  heat = ["HD-b1-3-1"]
  callpoints = ["CP-b1-3"]
  egress_doors = ["b1-d1", "b1-d2"]
  [[site.buildings.zones]]
  id = "b1-f5"
  floor = 5
  smoke = ["SD-b1-5-1", "SD-b1-5-2"]
  egress_doors = ["b1-d5"]

[[site.buildings]]
id = "b2"
name = "2栋"
floors = 9
position_m = [400.0, 0.0]
screens = ["SCR-b2"]
voice = ["VT-b2", "AMP-b2"]
access = ["AC-b2"]
  [[site.buildings.zones]]
  id = "b2-f1"
  floor = 1
  smoke = ["SD-b2-1-1", "SD-b2-1-2"]
  callpoints = ["CP-b2-1"]
  egress_doors = ["b2-d1", "gate-n-d1"]
  [[site.buildings.zones]]
  id = "b2-f9"
  floor = 9
  smoke = {storm}
  egress_doors = ["b2-d9"]

# A plain amplifier: its `say` carries audio rendered by the gateway (espeak-ng).
[[site.profile_rules]]
kind = "voice"
prefix = "AMP-"
model = "generic-amp"

[[site.checkpoints]]
id = "cp-n"
building = "gates"
doors = ["gate-n-d1"]
access = ["AC-gate-n"]
leads_to = ["b2"]

# Dispatch chain of b1: mfs-near, mfs-far (tier 0, by distance), street (1), district (2).
# For b2 the tier-0 order flips: mfs-far is the nearer one.
[[site.fire_teams]]
id = "mfs-near"
tier = 0
position_m = [50.0, 0.0]

[[site.fire_teams]]
id = "mfs-far"
tier = 0
position_m = [600.0, 0.0]

[[site.fire_teams]]
id = "street"
tier = 1
position_m = [1500.0, 0.0]

[[site.fire_teams]]
id = "district"
tier = 2
position_m = [3000.0, 0.0]
"""

# What a confirmed fire in each zone must command (the site above, docs/fire.md linkage):
# the building's screens and the gate screen show, its voice terminals say, and the
# zone's egress doors are released by their controllers (a checkpoint door by the
# checkpoint's controller, any other door by the building's).
LINKAGE: dict[str, dict[str, Any]] = {
    "b1-f3": {
        "show": ["SCR-b1-lobby", "SCR-b1-lift", "SCR-gate-n"],
        "say": ["VT-b1"],
        "release": {"AC-b1": ["b1-d1", "b1-d2"]},
    },
    "b1-f5": {
        "show": ["SCR-b1-lobby", "SCR-b1-lift", "SCR-gate-n"],
        "say": ["VT-b1"],
        "release": {"AC-b1": ["b1-d5"]},
    },
    "b2-f1": {
        "show": ["SCR-b2", "SCR-gate-n"],
        "say": ["VT-b2", "AMP-b2"],
        "release": {"AC-b2": ["b2-d1"], "AC-gate-n": ["gate-n-d1"]},
    },
    "b2-f9": {
        "show": ["SCR-b2", "SCR-gate-n"],
        "say": ["VT-b2", "AMP-b2"],
        "release": {"AC-b2": ["b2-d9"]},
    },
}

_sites = itertools.count(1)


def site_config(port: int, spool: Path, site: str, client_id: str) -> GatewayConfig:
    """The test site's validated config."""
    text = SITE_TOML.format(
        site=site,
        port=port,
        client_id=client_id,
        spool=spool,
        verify_s=VERIFY_S,
        ack_s=ACK_S,
        arrive_s=ARRIVE_S,
        deadline_s=DEADLINE_S,
        retry_s=RETRY_S,
        max_retries=MAX_RETRIES,
        door_confirm_s=DOOR_CONFIRM_S,
        storm=json.dumps(STORM),
    )
    return parse_config(text, "fire-e2e.toml")


class Scene:
    """The gateway in-process on a `ManualClock`, with every device of the site simulated.

    `terminals`/`doors` are keyed by device id; `behaviour` sets a device's answers, e.g.
    `{"SCR-b1-lift": {"ack": False}, "AC-b1": {"confirm": "status"}}`.
    """

    def __init__(
        self, port: int, workdir: Path, behaviour: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.port = port
        self.site = f"fe{os.getpid()}x{next(_sites)}"
        self.prefix = f"{ROOT}/{self.site}"
        self.clock = ManualClock()
        self.cfg = site_config(port, workdir / "spool.db", self.site, f"gw-{self.site}")
        behaviour = behaviour or {}
        self.terminals: dict[str, Terminal] = {}
        self.doors: dict[str, DoorController] = {}
        self.gw: Gateway | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        try:
            self._make_devices(behaviour)
            self.app = FireTeamApp(port, self.prefix, "mfs-near")
            self.field = Field(port, self.prefix, self.clock.wall_ms)
            self.trouble = Listener(port, f"{self.prefix}/alerts/trouble")
            self.status = Listener(port, f"{self.prefix}/gateway/status")
        except BaseException:
            self.close()
            raise

    def _make_devices(self, behaviour: dict[str, dict[str, Any]]) -> None:
        site = self.cfg.site
        screens = [(b.id, "screen", d) for b in site.buildings for d in b.screens]
        screens += [("gates", "screen", d) for d in site.gate_screens]
        voice = [(b.id, "voice", d) for b in site.buildings for d in b.voice]
        for building, kind, dev in screens + voice:
            opts = behaviour.get(dev, {})
            self.terminals[dev] = Terminal(self.port, self.prefix, building, kind, dev, **opts)
        access = [(b.id, d) for b in site.buildings for d in b.access]
        access += [(cp.building, d) for cp in site.checkpoints for d in cp.access]
        for building, dev in access:
            confirm: DoorConfirm = behaviour.get(dev, {}).get("confirm", "ack")
            self.doors[dev] = DoorController(self.port, self.prefix, building, dev, confirm=confirm)

    # --- the gateway --------------------------------------------------------------------

    async def start(self) -> Gateway:
        """Start a gateway (a fresh `Gateway` on the same spool after `stop`)."""
        assert self._task is None, "already running"
        seen = len(self.status.json(lambda s: s.get("state") == "online"))
        self.gw = Gateway(self.cfg, clock=self.clock)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.gw.run(self._stop))
        assert await self.gw.link.wait_connected(10), "gateway did not connect"
        # `online` is published after SUBSCRIBE on the same connection: once it is seen,
        # the broker routes device topics to the gateway.
        await self.status.inbox.until(
            lambda m: m.payload.startswith(b"{") and b'"online"' in m.payload,
            seen + 1,
            10.0,
            "gateway online",
        )
        return self.gw

    async def stop(self) -> None:
        """Clean shutdown (the stop event): drain, commit, disconnect."""
        if self._task is None:
            return
        assert self._stop is not None
        self._stop.set()
        try:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
            assert done, f"the gateway did not stop within {STOP_TIMEOUT_S} s of its stop event"
            self._task.result()
        finally:
            self._task = None

    async def advance(self, seconds: float) -> None:
        """Move the clock and let the gateway's timer loop run what became due."""
        assert self.gw is not None
        self.clock.advance(seconds)
        self.gw.fire.wake()
        await asyncio.sleep(0)

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the gateway time to act on what it was sent (used before negative checks).

        Everything the gateway does in reaction takes microseconds to a batch interval
        (20 ms); this waits well past that and until the ingest queue is empty.
        """
        assert self.gw is not None
        await asyncio.sleep(seconds)
        for _ in range(200):
            if self.gw.pipeline.queued == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"ingest queue not drained: {self.gw.pipeline.queued} left")

    # --- what the gateway stored --------------------------------------------------------

    def audit(self, incident: str | None = None, kind: str | None = None) -> list[Any]:
        """Committed audit records (dicts), in order."""
        assert self.gw is not None
        out = []
        for text in self.gw.spool.audit_records(0):
            rec = json.loads(text)
            if (incident is None or rec["incident"] == incident) and (
                kind is None or rec["kind"] == kind
            ):
                out.append(rec)
        return out

    async def until_acked(self, incident: str, timeout_s: float = 10.0) -> None:
        """Wait until every command of `incident` so far has an `ack` record committed."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            recs = self.audit(incident)
            sent = {r["data"]["cmd_id"] for r in recs if r["kind"] == "command"}
            acked = {r["data"]["cmd_id"] for r in recs if r["kind"] == "ack"}
            if sent and sent <= acked:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise AssertionError(f"{incident}: commands never acknowledged: {sent - acked}")
            await asyncio.sleep(0.01)

    # --- helpers --------------------------------------------------------------------------

    async def expect_linkage(self, incident: str, zone: str) -> dict[str, Any]:
        """Wait for the full linkage of a confirmed fire in `zone`, then check it is exact.

        Exactly one `show`/`say`/`release` per expected device for `incident`, nothing
        to any other device; returns `{device: command}`.
        """
        want = LINKAGE[zone]
        got: dict[str, Any] = {}
        for action in ("show", "say"):
            for dev in want[action]:
                (got[dev],) = await self.terminals[dev].until_command(action, incident)
        for dev, doors in want["release"].items():
            (got[dev],) = await self.doors[dev].until_command("release", incident)
            assert got[dev]["doors"] == doors and got[dev]["reason"] == "fire", got[dev]
        await self.settle()
        for dev, device in [*self.terminals.items(), *self.doors.items()]:
            cmds = device.commands(incident=incident)
            assert len(cmds) == (1 if dev in got else 0), f"{dev}: {cmds}"
        for cmd in got.values():
            assert cmd["cmd_id"].startswith(f"{incident}-c") and cmd["incident"] == incident
        assert len({c["cmd_id"] for c in got.values()}) == len(got), "cmd_id reused"
        return got

    def commands(self, incident: str | None = None, action: str | None = None) -> list[Any]:
        """Every command any simulated device received (of `incident`/`action`)."""
        devices = [*self.terminals.values(), *self.doors.values()]
        return [c for d in devices for c in d.commands(action, incident)]

    def close(self) -> None:
        for actor in [*self.terminals.values(), *self.doors.values()]:
            actor.close()
        for name in ("app", "field", "trouble", "status"):
            other: MqttActor | None = getattr(self, name, None)
            if other is not None:
                other.close()
