"""The centre's side of GB/T 26875.3: frames → replies, `DeviceMessage`s and trouble alerts.

Pure and synchronous (the server owns the sockets): `PanelProtocol.handle(item, ms)`
returns what to answer and what the frame means for the rest of the gateway.
- Component fire bit (type 2) → `event: alarm` of the mapped detector (kind `smoke`,
  `heat` or `callpoint` by component type); fire bit gone → `clear`.
- Component fault or power fault → `fault` on the rising edge, `fault_clear` when it goes.
- Fire of a whole system (type 1) or of the transmission device (type 21) with no
  component of that panel in fire → an alarm of the pseudo-device `gb{address}` in the
  panel's building (zone None: the fire engine's `unknown` zone): never dropped.
- System / transmission-device faults → `Alert("trouble", kind="panel")` raised/cleared.
- Analog values (type 3) → telemetry of the component.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage, FieldValue
from gateway.devices.alerts import Alert
from gateway.ingest.topic import DeviceTopic
from gateway.protocols.gb26875 import appdata as ad
from gateway.protocols.gb26875.frame import Command, Frame, FrameError, FrameTime, address_hex
from gateway.protocols.gb26875.mapping import PanelMap, PanelSettings, kind_for_component

_C = ad.ComponentState
_FAULT_BITS: Final = _C.FAULT | _C.POWER_FAULT
_SYSTEM_TROUBLES: Final = (
    (int(_C.FAULT), "panel_fault"),
    (int(ad.SystemState.MAIN_POWER_FAULT), "main_power_fault"),
    (int(ad.SystemState.BACKUP_POWER_FAULT), "backup_power_fault"),
    (int(ad.SystemState.BUS_FAULT), "bus_fault"),
)
_DEVICE_TROUBLES: Final = (
    (int(ad.DeviceState.FAULT), "transmitter_fault"),
    (int(ad.DeviceState.MAIN_POWER_FAULT), "transmitter_main_power_fault"),
    (int(ad.DeviceState.BACKUP_POWER_FAULT), "transmitter_backup_power_fault"),
    (int(ad.DeviceState.CENTRE_LINK_FAULT), "transmitter_centre_link_fault"),
    (int(ad.DeviceState.PANEL_LINK_FAULT), "transmitter_panel_link_fault"),
)
_BIT_FIELDS: Final = (
    ("fire", _C.FIRE),
    ("fault", _C.FAULT),
    ("disabled", _C.DISABLED),
    ("supervisory", _C.SUPERVISORY),
    ("started", _C.STARTED),
    ("feedback", _C.FEEDBACK),
    ("delay", _C.DELAY),
    ("power_fault", _C.POWER_FAULT),
)
_KEEP_OPERATIONS: Final = 64


@dataclass(slots=True)
class Outcome:
    """What one frame produced: the reply to send, messages for ingest, alerts, the panel."""

    reply: Frame | None = None
    messages: list[DeviceMessage] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    panel: int | None = None

    @property
    def alarm(self) -> bool:
        """True when a message must take the alarm lane."""
        return any(m.is_alarm for m in self.messages)


@dataclass(slots=True)
class _PanelState:
    """What the gateway knows of one panel: answers requests 61–68 and 81–88."""

    components: dict[tuple[int, int, int], int] = field(default_factory=dict)
    systems: dict[tuple[int, int], int] = field(default_factory=dict)
    device_status: int | None = None
    objects: dict[int, dict[tuple[int, ...], bytes]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    operations: dict[int, collections.deque[bytes]] = field(
        default_factory=lambda: collections.defaultdict(
            lambda: collections.deque(maxlen=_KEEP_OPERATIONS)
        )
    )


def _object_key(kind: int, raw: bytes) -> tuple[int, ...]:
    """The identity of a cached object (a newer upload of the same key replaces it)."""
    if kind in (2, 7):
        return (raw[0], raw[1], int.from_bytes(raw[3:7], "little"))
    if kind == 3:
        return (raw[0], raw[1], int.from_bytes(raw[3:7], "little"), raw[7])
    if kind in (1, 5, 6, 8):
        return (raw[0], raw[1])
    return ()


class PanelProtocol:
    """The centre's side of GB/T 26875.3 for every panel that reaches this gateway."""

    def __init__(self, settings: PanelSettings, site: str, clock: Clock) -> None:
        self.settings = settings
        self.site = site
        self.clock = clock
        self.map = PanelMap(settings)
        self.stats: collections.Counter[str] = collections.Counter()
        self._panels: dict[int, _PanelState] = {}

    # -- frames ---------------------------------------------------------------------------

    def handle(self, item: Frame | FrameError, received_ms: int) -> Outcome:
        """Answer one frame (or a delimited frame that failed its checks); never raises."""
        if isinstance(item, FrameError):
            self.stats[f"frame_{item.reason}"] += 1
            if item.frame is None:
                return Outcome()
            return Outcome(reply=self._reply(item.frame, Command.DENY))
        self.stats["frames"] += 1
        self.stats[f"command_{item.command}"] += 1
        out = Outcome(panel=item.source)
        if item.command in (Command.CONFIRM, Command.DENY):
            return out
        if item.command == Command.CONTROL:
            out.reply = self._reply(item, Command.CONFIRM)
            return out
        if item.command not in (Command.SEND_DATA, Command.REQUEST, Command.ANSWER):
            out.reply = self._reply(item, Command.DENY)  # user commands: none supported
            return out
        try:
            data = ad.decode_appdata(item.data)
        except ad.AppDataError as exc:
            self.stats[exc.reason] += 1
            if item.command != Command.ANSWER:
                out.reply = self._reply(item, Command.DENY)
            return out
        self.stats[f"type_{data.type}"] += 1
        if item.command == Command.REQUEST:
            out.reply = self._answer(item, data)
            return out
        if data.type in ad.REQUEST_TYPES:  # a request sent as data makes no sense
            out.reply = self._reply(item, Command.DENY)
            return out
        self._upload(item.source, data, received_ms, out)
        if item.command == Command.SEND_DATA:
            out.reply = self._reply(item, Command.CONFIRM)
        return out

    def _reply(self, frame: Frame, command: int, data: bytes = b"") -> Frame:
        self.stats[f"sent_{command}"] += 1
        now = FrameTime.from_ms(self.clock.wall_ms(), self.settings.utc_offset_h)
        return frame.reply(command, data, now)

    # -- uploads --------------------------------------------------------------------------

    def _upload(self, panel: int, data: ad.AppData, received_ms: int, out: Outcome) -> None:
        state = self._panels.setdefault(panel, _PanelState())
        for obj, raw in zip(data.objects, data.raws, strict=True):
            if data.type in (4, 24):
                state.operations[raw[0] if data.type == 4 else -1].append(raw)
            else:
                state.objects[data.type][_object_key(data.type, raw)] = raw
            if isinstance(obj, ad.ComponentStatus):
                self._component(panel, state, obj, received_ms, out)
            elif isinstance(obj, ad.SystemStatus):
                prev = state.systems.get((obj.sys_type, obj.sys_addr), 0)
                state.systems[obj.sys_type, obj.sys_addr] = obj.status
                device = f"gb{panel:012x}-{obj.sys_type}-{obj.sys_addr}"
                self._whole_fire(
                    panel, state, device, prev, obj.status, int(_C.FIRE), obj.time, received_ms, out
                )
                self._troubles(panel, device, prev, obj.status, _SYSTEM_TROUBLES, received_ms, out)
            elif isinstance(obj, ad.DeviceStatus):
                prev = state.device_status or 0
                state.device_status = obj.status
                device = f"gb{panel:012x}"
                self._whole_fire(
                    panel,
                    state,
                    device,
                    prev,
                    obj.status,
                    int(ad.DeviceState.FIRE),
                    obj.time,
                    received_ms,
                    out,
                )
                self._troubles(panel, device, prev, obj.status, _DEVICE_TROUBLES, received_ms, out)
            elif isinstance(obj, ad.AnalogValue):
                place = self.map.place(panel, obj.sys_type, obj.sys_addr, obj.comp_addr)
                kind = place.kind or kind_for_component(obj.comp_type)
                fields: dict[str, FieldValue] = {
                    "analog_type": obj.analog_type,
                    "value": obj.value,
                }
                out.messages.append(
                    self._message(
                        place.building,
                        kind,
                        place.device,
                        "telemetry",
                        None,
                        obj.time,
                        received_ms,
                        fields,
                        place.zone,
                        panel,
                    )
                )

    def _component(
        self,
        panel: int,
        state: _PanelState,
        obj: ad.ComponentStatus,
        received_ms: int,
        out: Outcome,
    ) -> None:
        key = (obj.sys_type, obj.sys_addr, obj.comp_addr)
        prev = state.components.get(key, 0)
        state.components[key] = obj.status
        events: list[str] = []
        if obj.status & _C.FIRE:
            events.append("alarm")  # every report: the engine counts repeats, never drops
        elif prev & _C.FIRE:
            events.append("clear")
        if obj.status & _FAULT_BITS and not prev & _FAULT_BITS:
            events.append("fault")
        elif prev & _FAULT_BITS and not obj.status & _FAULT_BITS:
            events.append("fault_clear")
        if not events:
            self.stats["component_unchanged"] += 1
            return
        place = self.map.place(panel, obj.sys_type, obj.sys_addr, obj.comp_addr)
        if not place.mapped:
            self.stats["component_unmapped"] += 1
        kind = place.kind or kind_for_component(obj.comp_type)
        fields: dict[str, FieldValue] = {
            "status": obj.status,
            "sys_type": obj.sys_type,
            "sys_addr": obj.sys_addr,
            "comp_type": obj.comp_type,
            "comp_addr": obj.comp_addr,
            "description": obj.description,
        }
        fields.update((name, bool(obj.status & bit)) for name, bit in _BIT_FIELDS)
        for event in events:
            out.messages.append(
                self._message(
                    place.building,
                    kind,
                    place.device,
                    "event",
                    event,
                    obj.time,
                    received_ms,
                    dict(fields),
                    place.zone,
                    panel,
                )
            )

    def _whole_fire(
        self,
        panel: int,
        state: _PanelState,
        device: str,
        prev: int,
        status: int,
        bit: int,
        time: FrameTime,
        received_ms: int,
        out: Outcome,
    ) -> None:
        """Fire of a system or transmitter: an alarm only when no component explains it."""
        if not status & bit or any(s & _C.FIRE for s in state.components.values()):
            if prev & bit and not status & bit:
                out.messages.append(
                    self._message(
                        self.map.building(panel),
                        "smoke",
                        device,
                        "event",
                        "clear",
                        time,
                        received_ms,
                        {"status": status},
                        None,
                        panel,
                    )
                )
            return
        self.stats["whole_panel_fire"] += 1
        out.messages.append(
            self._message(
                self.map.building(panel),
                "smoke",
                device,
                "event",
                "alarm",
                time,
                received_ms,
                {"status": status},
                None,
                panel,
            )
        )

    def _troubles(
        self,
        panel: int,
        device: str,
        prev: int,
        status: int,
        bits: Iterable[tuple[int, str]],
        received_ms: int,
        out: Outcome,
    ) -> None:
        for bit, name in bits:
            if bool(status & bit) == bool(prev & bit):
                continue
            out.alerts.append(
                Alert(
                    type="trouble",
                    ts_ms=received_ms,
                    building=self.map.building(panel),
                    kind="panel",
                    device=device,
                    state="raised" if status & bit else "cleared",
                    detail={"trouble": name, "panel": address_hex(panel), "status": status},
                )
            )

    def _message(
        self,
        building: str,
        kind: str,
        device: str,
        channel: str,
        event: str | None,
        time: FrameTime,
        received_ms: int,
        fields: dict[str, FieldValue],
        zone: str | None,
        panel: int,
    ) -> DeviceMessage:
        ts = time.to_ms(self.settings.utc_offset_h)
        tags = {"panel": address_hex(panel)}
        if zone is not None:
            tags["zone"] = zone
        return DeviceMessage(
            topic=DeviceTopic(self.site, building, kind, device, channel),
            ts_ms=ts if ts is not None else received_ms,
            ts_source="device" if ts is not None else "gateway",
            received_ms=received_ms,
            event=event,
            fields=fields,
            tags=tags,
        )

    # -- requests -------------------------------------------------------------------------

    def _answer(self, frame: Frame, request: ad.AppData) -> Frame:
        """Answer (5) what the cache holds for the addressed panel; confirm (3) the rest."""
        answer_type = ad.ANSWER_TYPE.get(request.type)
        state = self._panels.get(frame.destination)
        if answer_type is None or state is None:
            return self._reply(frame, Command.CONFIRM)
        found: list[bytes] = []
        for raw in request.raws or (b"",):
            found.extend(self._lookup(state, request.type, answer_type, raw))
        if not found:
            return self._reply(frame, Command.CONFIRM)
        room = (1024 - 2) // max(len(r) for r in found)
        return self._reply(frame, Command.ANSWER, ad.encode_appdata(answer_type, found[:room]))

    @staticmethod
    def _lookup(state: _PanelState, req: int, answer: int, raw: bytes) -> list[bytes]:
        if answer in (4, 24):
            key = raw[0] if answer == 4 else -1
            count = raw[2] if answer == 4 else raw[0]
            return list(state.operations.get(key, ()))[-count:] if count else []
        cached = state.objects.get(answer, {})
        if req in (62, 63, 67):  # system type, system address, component address
            want = (raw[0], raw[1], int.from_bytes(raw[2:6], "little"))
            return [v for k, v in cached.items() if k[:3] == want]
        if req in (61, 65, 66, 68):
            return [v for k, v in cached.items() if k[:2] == (raw[0], raw[1])]
        return list(cached.values())

    def known_panels(self) -> list[str]:
        """Addresses of every panel heard since start."""
        return [address_hex(a) for a in self._panels]
