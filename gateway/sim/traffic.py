"""Deterministic device traffic over a site model: the load generator and the demo's devices.

Pure and seeded: the same config and seed give the same messages, byte for byte. Payloads
follow CONTRACT.md (canonical profile); given the firmware profiles, devices with a vendor
profile are simulated too, in their own payload format (gateway/sim/vendor.py). Random
draws are made per chunk with numpy and payloads are filled into pre-built byte templates,
so generation outruns any broker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from gateway.config import GatewayConfig
from gateway.decode.profiles import ProfileSet
from gateway.errors import ConfigError
from gateway.sim.vendor import VendorTraffic
from gateway.site import SiteIndex

# Share of each message category in the generated stream (renormalised over the categories
# the site has devices for).
MIX: Final[dict[str, float]] = {
    "smoke_telemetry": 0.80,
    "access_swipe": 0.08,
    "camera_line_crossing": 0.05,
    "status": 0.05,
    "other_event": 0.02,
}
_TELEMETRY, _SWIPE, _CROSSING, _STATUS, _OTHER = range(5)
_SMOKE_EVENTS: Final = (b"fault", b"tamper", b"test", b"low_battery")
_CARD_POOL: Final = 5000
_GRANTED_P: Final = 0.97
_CHUNK: Final = 8192
_FIRMWARE: Final = (b"1.4.2", b"1.4.3", b"2.0.1", b"2.1.0")


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One device message as published: topic, payload and what it is about."""

    topic: str
    payload: bytes
    kind: str
    channel: str
    building: str
    device: str
    ts_ms: int
    is_alarm: bool


@dataclass(frozen=True, slots=True)
class _Device:
    building: str
    kind: str
    device: str
    prefix: str  # topic without the channel, ending in "/"


class TrafficModel:
    """A seeded stream of realistic device traffic for the devices of a config's site model.

    The model is stateful: consecutive `messages` calls continue the random stream and keep
    every device's timestamps strictly increasing, so no two points of one device collide.
    Devices whose firmware profile (`[site] profile_rules`) is not `canonical` are left
    out unless `profiles` is given: then they are simulated too and their payloads are
    encoded in their profile's format (the stream of a site without vendor devices is the
    same either way). `config_hashes` (kind → the canonical profile's `config_hash`) makes
    status heartbeats report an in-sync config (a vendor device: its own profile's hash);
    without it each device reports a random hash of its own.
    """

    def __init__(
        self,
        cfg: GatewayConfig,
        seed: int = 1,
        *,
        config_hashes: Mapping[str, str] | None = None,
        profiles: ProfileSet | None = None,
    ) -> None:
        self._rng = np.random.default_rng(seed)
        index = SiteIndex(cfg.site)
        vendor = VendorTraffic(profiles, index) if profiles is not None else None
        self._vendor = vendor
        self._is_vendor: list[bool] = []
        base = f"{cfg.mqtt.root}/{cfg.gateway.site}/"
        self._devices: list[_Device] = []
        self._smoke: list[int] = []
        self._readers: list[int] = []
        self._cameras: list[int] = []
        reader_doors: list[list[bytes]] = []
        camera_checkpoint: list[bytes] = []

        seen: dict[tuple[str, str, str], int] = {}

        def add(building: str, kind: str, device: str) -> int | None:
            is_vendor = index.profile_for(kind, device) != "canonical"
            if is_vendor and vendor is None:
                return None
            key = (building, kind, device)
            if key not in seen:
                seen[key] = len(self._devices)
                self._is_vendor.append(is_vendor)
                self._devices.append(
                    _Device(building, kind, device, f"{base}{building}/{kind}/{device}/")
                )
            return seen[key]

        for (building, kind, device), _place in index.places.items():
            if kind in {"access", "camera"}:
                continue  # checkpoint devices are added below with their doors
            i = add(building, kind, device)
            if i is not None and kind == "smoke":
                self._smoke.append(i)
        for b in cfg.site.buildings:
            for kind, ids in (("access", b.access), ("camera", b.cameras)):
                for dev in ids:
                    add(b.id, kind, dev)
        for cp in cfg.site.checkpoints:
            for dev in cp.access:
                i = add(cp.building, "access", dev)
                if i is not None and cp.doors:
                    self._readers.append(i)
                    doors = cp.doors
                    if vendor is not None and self._is_vendor[i]:
                        doors = vendor.door_names("access", dev, doors)
                    reader_doors.append([d.encode() for d in doors])
            for dev in cp.cameras:
                i = add(cp.building, "camera", dev)
                if i is not None:
                    self._cameras.append(i)
                    camera_checkpoint.append(cp.id.encode())
        if not self._devices:
            raise ConfigError(f"{cfg.source}: the site model has no device to simulate")
        self._reader_doors = reader_doors
        self._camera_checkpoint = camera_checkpoint
        self._last_ts = [-1] * len(self._devices)
        n = len(self._devices)
        rng = self._rng
        # Per-device constants: a detector's battery and radio link barely change.
        self._battery = rng.integers(55, 101, n).tolist()
        self._rssi = rng.integers(-92, -55, n).tolist()
        self._temp = np.round(rng.normal(26.0, 2.0, n), 1).tolist()
        self._fw = [_FIRMWARE[k] for k in rng.integers(0, len(_FIRMWARE), n).tolist()]
        self._hash = [b"%016x" % v for v in rng.integers(0, 2**63, n).tolist()]
        if config_hashes:
            for i, d in enumerate(self._devices):
                known = config_hashes.get(d.kind)
                if profiles is not None and self._is_vendor[i]:
                    known = profiles.get(d.kind, index.profile_for(d.kind, d.device)).config_hash
                if known is not None:
                    self._hash[i] = known.encode()
        self._cards = [b"%010d" % v for v in rng.integers(1, 10**10, _CARD_POOL).tolist()]
        # Telemetry and heartbeats go round a shuffled roll call, as periodic reports do, so
        # every device is heard from once per cycle and none looks silent to supervision.
        self._telemetry_order = rng.permutation(np.array(self._smoke, dtype=np.int64)).tolist()
        self._status_order = rng.permutation(n).tolist()
        self._telemetry_pos = 0
        self._status_pos = 0
        weights = np.array(list(MIX.values()))
        present = [bool(self._smoke), bool(self._readers), bool(self._cameras), True]
        present.append(bool(self._smoke) or bool(self._readers))
        weights = weights * np.array(present, dtype=float)
        self._weights = weights / weights.sum()

    @property
    def device_count(self) -> int:
        """How many devices this model simulates."""
        return len(self._devices)

    def messages(self, count: int, start_ms: int, rate_per_s: float) -> Iterator[SimMessage]:
        """`count` messages; the nominal `ts` advances by 1000/rate_per_s ms per message."""
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s {rate_per_s}: must be > 0")
        step_ms = 1000.0 / rate_per_s
        for lo in range(0, count, _CHUNK):
            hi = min(count, lo + _CHUNK)
            nominal = start_ms + np.floor(np.arange(lo, hi) * step_ms).astype(np.int64)
            yield from self._chunk(nominal.tolist())

    def alarm(self, ts_ms: int, building: str | None = None) -> SimMessage:
        """A smoke `alarm` event from a provisioned detector (of `building` when given)."""
        pool = [i for i in self._smoke if building is None or self._devices[i].building == building]
        if not pool:
            where = f"building {building!r}" if building else "the site"
            raise ValueError(f"no simulated smoke detector in {where}")
        i = pool[int(self._rng.integers(0, len(pool)))]
        smoke = round(float(self._rng.uniform(2.5, 9.0)), 2)
        ts = self._stamp(i, ts_ms)
        payload = b'{"ts":%d,"event":"alarm","smoke":%.2f,"temp":%.1f}' % (
            ts,
            smoke,
            self._temp[i] + 8.0,
        )
        if self._vendor is not None and self._is_vendor[i]:
            d = self._devices[i]
            payload = self._vendor.rewrite(d.kind, d.device, "event", payload)
        return self._message(i, "event", payload, ts, True)

    def _stamp(self, i: int, nominal: int) -> int:
        last = self._last_ts[i]
        ts = nominal if nominal > last else last + 1
        self._last_ts[i] = ts
        return ts

    def _message(self, i: int, channel: str, payload: bytes, ts: int, alarm: bool) -> SimMessage:
        d = self._devices[i]
        return SimMessage(
            d.prefix + channel, payload, d.kind, channel, d.building, d.device, ts, alarm
        )

    def _chunk(self, nominal: list[int]) -> Iterator[SimMessage]:
        n = len(nominal)
        rng = self._rng
        cats = rng.choice(5, size=n, p=self._weights).tolist()
        pick = rng.random(n).tolist()
        smoke = np.round(np.abs(rng.normal(0.0, 0.03, n)) + 0.01, 2).tolist()
        temp_jitter = np.round(rng.normal(0.0, 0.3, n), 1).tolist()
        small = rng.poisson(2.0, (2, n)).tolist()
        aux = rng.random(n).tolist()
        bits = rng.integers(0, 2**31, n).tolist()
        card = rng.integers(0, _CARD_POOL, n).tolist()
        devices, last_ts, smoke_ids = self._devices, self._last_ts, self._smoke
        tele_order, tele_pos = self._telemetry_order, self._telemetry_pos
        status_order, status_pos = self._status_order, self._status_pos
        readers, cameras = self._readers, self._cameras
        vendor, is_vendor = self._vendor, self._is_vendor
        for k in range(n):
            cat = cats[k]
            u = pick[k]
            if cat == _TELEMETRY:
                i = tele_order[tele_pos]
                tele_pos += 1
                if tele_pos == len(tele_order):
                    tele_pos = 0
                channel = "telemetry"
            elif cat == _SWIPE:
                j = int(u * len(readers))
                i = readers[j]
                channel = "event"
            elif cat == _CROSSING:
                j = int(u * len(cameras))
                i = cameras[j]
                channel = "event"
            elif cat == _STATUS:
                i = status_order[status_pos]
                status_pos += 1
                if status_pos == len(status_order):
                    status_pos = 0
                channel = "status"
            else:
                use_reader = not smoke_ids or (readers and aux[k] < 0.2)
                pool = readers if use_reader else smoke_ids
                j = int(u * len(pool))
                i = pool[j]
                channel = "event"
            last = last_ts[i]
            ts = nominal[k]
            if ts <= last:
                ts = last + 1
            last_ts[i] = ts
            if cat == _TELEMETRY:
                payload = b'{"ts":%d,"smoke":%.2f,"temp":%.1f,"battery":%d,"rssi":%d}' % (
                    ts,
                    smoke[k],
                    self._temp[i] + temp_jitter[k],
                    self._battery[i],
                    self._rssi[i] + small[0][k] - 2,
                )
            elif cat == _SWIPE:
                doors = self._reader_doors[j]
                payload = (
                    b'{"ts":%d,"event":"swipe","card":"%s","door":"%s","dir":"%s","granted":%s}'
                    % (
                        ts,
                        self._cards[card[k]],
                        doors[bits[k] % len(doors)],
                        b"in" if bits[k] & 256 else b"out",
                        b"true" if aux[k] < _GRANTED_P else b"false",
                    )
                )
            elif cat == _CROSSING:
                payload = (
                    b'{"ts":%d,"event":"line_crossing","checkpoint":"%s","in":%d,"out":%d,'
                    b'"period_s":5}' % (ts, self._camera_checkpoint[j], small[0][k], small[1][k])
                )
            elif cat == _STATUS:
                payload = b'{"ts":%d,"state":"online","fw":"%s","config_hash":"%s"}' % (
                    ts,
                    self._fw[i],
                    self._hash[i],
                )
            elif use_reader:
                doors = self._reader_doors[j]
                payload = b'{"ts":%d,"event":"door_held_open","door":"%s"}' % (
                    ts,
                    doors[bits[k] % len(doors)],
                )
            else:
                event = _SMOKE_EVENTS[(bits[k] >> 9) % 4]
                if event == b"low_battery":
                    payload = b'{"ts":%d,"event":"low_battery","battery":%d}' % (
                        ts,
                        9 + small[1][k],
                    )
                else:
                    payload = b'{"ts":%d,"event":"%s"}' % (ts, event)
            d = devices[i]
            if vendor is not None and is_vendor[i]:
                payload = vendor.rewrite(d.kind, d.device, channel, payload)
            # Keep the roll-call positions current: the caller may stop iterating anywhere.
            self._telemetry_pos, self._status_pos = tele_pos, status_pos
            yield SimMessage(
                d.prefix + channel, payload, d.kind, channel, d.building, d.device, ts, False
            )
