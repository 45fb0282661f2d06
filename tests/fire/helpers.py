"""A small site, message builders and action filters for the fire engine tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway.clock import ManualClock
from gateway.config import FireSection
from gateway.decode.message import DeviceMessage, FieldValue
from gateway.fire import Action, Audit, AuditRecord, FireEngine, Notify, Publish, Trouble
from gateway.fire.linkage import card_hash
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex, SiteModel

SITE = "shazui"
ROOT = "community"
SALT = b"test-salt"
NEAR_CARD = "0012345678"
FAR_CARD = "0099999999"
STORM = [f"SD-s{i:03d}" for i in range(200)]


def site_model(**extra: Any) -> SiteModel:
    """Two buildings, four zones, gate screens, a checkpoint per building, four teams."""
    data: dict[str, Any] = {
        "card_salt": SALT.decode(),
        "gate_screens": ["SCR-gate-1"],
        "buildings": [
            {
                "id": "b1",
                "name": "1栋",
                "position_m": [0.0, 0.0],
                "screens": ["SCR-b1-a", "SCR-b1-b"],
                "voice": ["VT-b1", "AMP-b1"],
                "access": ["AC-b1"],
                "cameras": ["CAM-b1"],
                "zones": [
                    {"id": "b1-f3", "floor": 3, "smoke": ["SD-1", "SD-2", "SD-3"],
                     "heat": ["HD-1"], "callpoints": ["CP-1"],
                     "egress_doors": ["b1-d1", "b1-d2"]},
                    {"id": "b1-f3e", "floor": 3, "smoke": ["SD-4", "SD-5"],
                     "egress_doors": ["b1-d2"]},
                    {"id": "b1-f5", "floor": 5, "smoke": ["SD-6", "SD-7"],
                     "egress_doors": ["b1-d3"]},
                    {"id": "b1-f9", "floor": 9, "smoke": STORM, "egress_doors": ["b1-d1"]},
                ],
            },
            {
                "id": "b2",
                "position_m": [400.0, 0.0],
                "screens": ["SCR-b2"],
                "voice": ["VT-b2"],
                "zones": [
                    {"id": "b2-f1", "floor": 1, "smoke": ["SD-21", "SD-22"],
                     "callpoints": ["CP-21"], "egress_doors": ["cp-n-d1"]},
                ],
            },
        ],
        "checkpoints": [
            {"id": "cp-b1", "building": "b1", "doors": ["b1-lobby"], "access": ["RD-b1"]},
            {"id": "cp-n", "building": "gates", "doors": ["cp-n-d1"], "access": ["AC-cp-n"],
             "leads_to": ["b2"]},
            {"id": "cp-s", "building": "gates", "doors": ["cp-s-d1"], "access": ["AC-cp-s"]},
        ],
        "fire_teams": [
            {"id": "district", "tier": 2, "position_m": [3000.0, 0.0]},
            {"id": "mfs-far", "tier": 0, "position_m": [900.0, 0.0]},
            {"id": "street", "tier": 1, "position_m": [1500.0, 0.0]},
            {"id": "mfs-near", "tier": 0, "position_m": [10.0, 5.0],
             "card_hashes": [card_hash(SALT, NEAR_CARD)]},
        ],
        "profile_rules": [{"kind": "voice", "prefix": "AMP-", "model": "generic-amp"}],
    }  # fmt: skip
    data.update(extra)
    return SiteModel.model_validate(data)


def make_engine(
    clock: ManualClock | None = None, site: SiteModel | None = None, **settings: Any
) -> tuple[FireEngine, ManualClock]:
    """An engine on a manual clock; `settings` override `[fire]` keys."""
    clock = clock or ManualClock()
    engine = FireEngine(
        FireSection(**settings),
        SiteIndex(site or site_model()),
        SITE,
        ROOT,
        clock,
        can_synthesize=lambda device: not device.startswith("AMP-"),
    )
    return engine, clock


def msg(
    building: str,
    kind: str,
    device: str,
    channel: str = "event",
    event: str | None = None,
    fields: dict[str, FieldValue] | None = None,
    tags: dict[str, str] | None = None,
    ts_ms: int = 1_795_475_306_000,
) -> DeviceMessage:
    """A decoded device message as the pipeline hands it over."""
    topic = DeviceTopic(SITE, building, kind, device, channel)
    return DeviceMessage(topic, ts_ms, "device", ts_ms, event, fields or {}, tags or {})


def alarm(device: str, building: str = "b1", kind: str = "smoke") -> DeviceMessage:
    """A detector (or call point) alarm."""
    return msg(building, kind, device, event="alarm")


def clear(device: str, building: str = "b1", kind: str = "smoke") -> DeviceMessage:
    """A detector clear."""
    return msg(building, kind, device, event="clear")


def camera(zone: str, confidence: float, event: str = "fire") -> DeviceMessage:
    """A camera fire/smoke detection tagged with its zone."""
    return msg("b1", "camera", "CAM-b1", event=event, fields={"confidence": confidence},
               tags={"zone": zone})  # fmt: skip


def ack(cmd: Publish, ok: bool = True) -> DeviceMessage:
    """The device's reply to a command."""
    _, _, building, kind, device, _ = cmd.topic.split("/")
    return msg(building, kind, device, "ack", fields={"cmd_id": cmd.payload["cmd_id"], "ok": ok})


def commands(actions: Sequence[Action], action: str | None = None) -> list[Publish]:
    """Device commands (optionally of one `action`)."""
    return [
        a
        for a in actions
        if isinstance(a, Publish)
        and a.topic.endswith("/cmd")
        and (action is None or a.payload["action"] == action)
    ]


def alerts(actions: Sequence[Action], retained: bool = False) -> list[dict[str, Any]]:
    """Fire alert objects: the stream (`alerts/fire`) or the retained per-incident topic."""
    base = f"{ROOT}/{SITE}/alerts/fire"
    return [
        a.payload
        for a in actions
        if isinstance(a, Publish) and (a.topic != base if retained else a.topic == base)
        and a.topic.startswith(base)
    ]  # fmt: skip


def notices(actions: Sequence[Action]) -> list[Notify]:
    """Team notifications."""
    return [a for a in actions if isinstance(a, Notify)]


def troubles(actions: Sequence[Action]) -> list[Trouble]:
    """Trouble alerts."""
    return [a for a in actions if isinstance(a, Trouble)]


def records(actions: Sequence[Action]) -> list[AuditRecord]:
    """Audit records, checked to survive a JSON round trip as the spool stores them."""
    out = []
    for a in actions:
        if isinstance(a, Audit):
            stored = json.loads(json.dumps(a.record.to_dict(), ensure_ascii=False))
            assert AuditRecord.from_dict(stored) == a.record
            out.append(a.record)
    return out


def targets(cmds: Sequence[Publish]) -> set[str]:
    """`building/kind/device` of each command."""
    return {"/".join(c.topic.split("/")[2:5]) for c in cmds}


def confirmed_fire(engine: FireEngine) -> tuple[str, list[Action]]:
    """Two detectors in zone b1-f3: the id of the confirmed incident and the actions."""
    first = engine.on_alarm(alarm("SD-1"))
    second = engine.on_alarm(alarm("SD-2"))
    (inc,) = [i for i in engine.incidents(open_only=True) if i.zone == "b1-f3"]
    return inc.id, first + second


def answer(engine: FireEngine, actions: Sequence[Action]) -> list[Action]:
    """Every device acknowledges every command in `actions` (ok)."""
    return engine.on_messages([ack(c) for c in commands(actions)])


def answered_fire(engine: FireEngine) -> str:
    """A confirmed incident in zone b1-f3 whose commands were all acknowledged."""
    inc_id, actions = confirmed_fire(engine)
    answer(engine, actions)
    return inc_id
