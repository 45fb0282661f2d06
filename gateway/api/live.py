"""The live feed: the dashboard's state, its diffs over a WebSocket, and occupancy history.

Each connection polls the gateway's state on the event loop every `LIVE_POLL_S` and sends
what changed; a client that (re)connects first gets the whole state (`type: snapshot`),
so a reconnect never misses anything. Polling keeps the engines free of API hooks.
Occupancy history: a ring sampled in memory for recent times, the stored `occupancy` and
`checkpoint_flow` points (the spool's outbox and history) for times before it (a restart).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from gateway.reports import History, LiveSpool

if TYPE_CHECKING:
    from gateway.app import Gateway

LIVE_POLL_S = 0.5
HISTORY_SAMPLE_S = 10.0
HISTORY_KEEP_S = 6 * 3600
STORED_TTL_S = 60.0  # stored rows before the ring are read again at most this often
CP_KEYS = ("occupancy", "in_1m", "out_1m")
_MINUTE_MS = 60_000
# (ts_ms, {target: occupancy}, {checkpoint: {occupancy|in_1m|out_1m: n}}); missing = no value
Row = tuple[int, dict[str, int], dict[str, dict[str, int]]]
ATTENTION_MAX = 200  # devices listed by name; the counts cover the rest
CLOSED_SHOWN = 10

_TIME_FIELDS = ("ts",)  # change on every read; not a change of the incident


def device_health(gw: Gateway) -> dict[str, Any]:
    """Device counts per state and per building, and the devices needing attention."""
    buildings: dict[str, dict[str, int]] = {}
    attention: list[dict[str, Any]] = []
    n_attention = 0
    for rec in gw.registry.devices.values():
        b = buildings.setdefault(
            rec.building,
            {"total": 0, "online": 0, "offline": 0, "unknown": 0, "low_battery": 0, "fault": 0},
        )
        b["total"] += 1
        b[rec.state] += 1
        low = "low_battery" in rec.troubles
        fault = bool(rec.troubles - {"low_battery"})
        b["low_battery"] += low
        b["fault"] += fault
        if rec.state == "offline" or low or fault:
            n_attention += 1
            if len(attention) < ATTENTION_MAX:
                attention.append(
                    {
                        "device": rec.device,
                        "kind": rec.kind,
                        "building": rec.building,
                        "zone": rec.zone,
                        "floor": rec.floor,
                        "state": rec.state,
                        "battery": rec.battery,
                        "troubles": sorted(rec.troubles),
                        "last_seen_ms": rec.last_seen_ms,
                    }
                )
    return {
        "counts": gw.registry.counts(),
        "buildings": dict(sorted(buildings.items())),
        "attention": attention,
        "attention_total": n_attention,
    }


def live_state(gw: Gateway) -> dict[str, Any]:
    """Everything the dashboard shows, as one JSON-able dict (read on the event loop)."""
    hc = gw.headcount
    return {
        "site": gw.cfg.gateway.site,
        "gateway": gw.cfg.gateway.id,
        "mqtt_connected": gw.link.connected,
        "incidents": {i["id"]: i for i in gw.fire.snapshot(CLOSED_SHOWN)},
        "occupancy": hc.engine.occupancy() if hc is not None else {},
        "checkpoints": hc.engine.states() if hc is not None else {},
        "devices": device_health(gw),
    }


def _same_incident(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in a.keys() | b.keys() if k not in _TIME_FIELDS)


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The feed messages that take a client from `old` to `new`."""
    out: list[dict[str, Any]] = []
    for iid, inc in new["incidents"].items():
        before = old["incidents"].get(iid)
        if before is None or not _same_incident(before, inc):
            out.append({"type": "incident", "incident": inc})
    if new["occupancy"] != old["occupancy"] or new["checkpoints"] != old["checkpoints"]:
        out.append(
            {"type": "occupancy", "occupancy": new["occupancy"], "checkpoints": new["checkpoints"]}
        )
    if new["devices"] != old["devices"]:
        out.append({"type": "devices", "devices": new["devices"]})
    if new["mqtt_connected"] != old["mqtt_connected"]:
        out.append({"type": "link", "mqtt_connected": new["mqtt_connected"]})
    return out


def snapshot_message(state: dict[str, Any], ts_ms: int) -> dict[str, Any]:
    """The first message of every connection: the whole current state."""
    return {
        "type": "snapshot",
        "ts": ts_ms,
        **state,
        "incidents": list(state["incidents"].values()),
    }


class OccupancyHistory:
    """A ring of occupancy samples (targets and checkpoints) for the dashboard's charts,
    and a short-lived cache of the stored rows before it (`stored`)."""

    def __init__(self, keep_s: float = HISTORY_KEEP_S, every_s: float = HISTORY_SAMPLE_S) -> None:
        self.every_s = every_s
        self._rows: deque[Row] = deque(maxlen=max(1, int(keep_s / every_s)))
        self._cache: tuple[int, int, float, list[Row]] | None = None  # since, until, at, rows

    def sample(self, gw: Gateway) -> None:
        """Record the current occupancy of every target and checkpoint."""
        if gw.headcount is None:
            return
        engine = gw.headcount.engine
        cps = {
            cp: {k: int(s.get(k, 0)) for k in ("occupancy", "in_1m", "out_1m")}
            for cp, s in engine.states().items()
        }
        self._rows.append((gw.clock.wall_ms(), engine.occupancy(), cps))

    def recent(self, since_ms: int) -> list[Row]:
        """The ring's samples since `since_ms`, oldest first (call it on the event loop)."""
        return [r for r in self._rows if r[0] >= since_ms]

    def series(self, since_ms: int) -> dict[str, Any]:
        """The ring's columns since `since_ms` (see `columns`)."""
        return columns(self.recent(since_ms))

    def stored(self, gw: Gateway, since_ms: int, until_ms: int) -> list[Row]:
        """Stored rows in [since_ms, until_ms), from a cache younger than STORED_TTL_S that
        covers the range, else read from the spool (blocking: run it in a thread)."""
        hc = gw.headcount
        if hc is None or since_ms >= until_ms:
            return []
        now = gw.clock.monotonic()
        cache = self._cache
        if cache and now - cache[2] < STORED_TTL_S and cache[0] <= since_ms < until_ms <= cache[1]:
            return [r for r in cache[3] if since_ms <= r[0] < until_ms]
        index = hc.engine.index
        shown = {
            cp: index.target_ids[int(index.display_target[i])]
            for i, cp in enumerate(index.checkpoint_ids)
        }
        rows = stored_rows(LiveSpool(gw.spool), shown, since_ms, until_ms)
        self._cache = (since_ms, until_ms, now, rows)
        return rows

    async def run(self, gw: Gateway) -> None:
        """Sample every `every_s` until cancelled."""
        while True:
            self.sample(gw)
            await asyncio.sleep(self.every_s)


async def occupancy_series(gw: Gateway, history: OccupancyHistory, since_ms: int) -> dict[str, Any]:
    """`/occupancy/history`: the ring for what it holds, stored points for the time before
    its first sample (after a restart, or past its 6 h), as one set of columns."""
    recent = history.recent(since_ms)
    until = recent[0][0] if recent else gw.clock.wall_ms() + 1
    older = await asyncio.to_thread(history.stored, gw, since_ms, until)
    return columns(older + recent)


def columns(rows: list[Row]) -> dict[str, Any]:
    """Rows as columns: `ts`, `targets` {id: [n]}, `checkpoints` {id: {k: [n]}}; null where
    a row has no value (what the dashboard's charts read)."""
    targets = sorted({t for _, occ, _ in rows for t in occ})
    cps = sorted({c for _, _, cp in rows for c in cp})
    return {
        "ts": [r[0] for r in rows],
        "targets": {t: [r[1].get(t) for r in rows] for t in targets},
        "checkpoints": {
            c: {k: [r[2].get(c, {}).get(k) for r in rows] for k in CP_KEYS} for c in cps
        },
    }


def stored_rows(history: History, shown: dict[str, str], since_ms: int, until_ms: int) -> list[Row]:
    """Rows rebuilt from stored points: one per `occupancy` sample time and per closed 1 min
    `checkpoint_flow` window (at its end), in [since_ms, until_ms).

    `shown`: each checkpoint's displayed target (`occupancy_of`). A row's `in_1m`/`out_1m`
    are the minute that closed at its time (the ring's are the sliding minute at sampling).
    """
    occ: dict[int, dict[str, int]] = {}
    for p in history.points("occupancy", since_ms, until_ms):
        if "occupancy" in p.fields:
            occ.setdefault(p.ts_ms, {})[p.tags.get("building", "")] = p.field_int("occupancy")
    flows: dict[int, dict[str, dict[str, int]]] = {}
    for p in history.points("checkpoint_flow", since_ms - _MINUTE_MS, until_ms - _MINUTE_MS):
        if p.tags.get("window") == "1m":
            end = p.ts_ms + _MINUTE_MS
            flows.setdefault(end, {})[p.tags.get("checkpoint", "")] = {
                "in_1m": p.field_int("in"),
                "out_1m": p.field_int("out"),
            }
    rows: list[Row] = []
    for ts in sorted(occ.keys() | flows.keys()):
        targets = occ.get(ts, {})
        cps: dict[str, dict[str, int]] = {}
        for cp in sorted(shown.keys() | flows.get(ts, {}).keys()):
            values = dict(flows.get(ts, {}).get(cp, {}))
            level = targets.get(shown.get(cp, ""))
            if level is not None:
                values["occupancy"] = level
            if values:
                cps[cp] = values
        rows.append((ts, targets, cps))
    return rows
