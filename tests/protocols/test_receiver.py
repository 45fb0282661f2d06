"""Panel frames → replies, DeviceMessages and trouble alerts (PanelProtocol / PanelReceiver)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.devices.alerts import Alert
from gateway.protocols.gb26875 import FrameSplitter, PanelReceiver, PanelSettings, decode_frame
from gateway.protocols.gb26875.frame import Frame
from tests.protocols import gbenc

PANEL = 0x0000_0A1B_2C3D
SETTINGS = PanelSettings.model_validate(
    {
        "units": [
            {
                "address": "00000a1b2c3d",
                "building": "b12",
                "components": [
                    {"sys_type": 1, "sys_addr": 1, "component": 0x0102, "zone": "b12-f3",
                     "device": "SD-000123"},
                    {"component": 7, "zone": "b12-f4", "device": "HD-7", "kind": "heat"},
                ],
            }
        ]
    }
)  # fmt: skip


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[list[DeviceMessage], bool]] = []
        self.alerts: list[Alert] = []
        self.seen: list[str] = []


def _receiver() -> tuple[PanelReceiver, Sink]:
    sink = Sink()
    rx = PanelReceiver(
        SETTINGS,
        "shazui",
        ManualClock(),
        on_messages=lambda msgs, alarm: sink.calls.append((msgs, alarm)),
        on_panel_seen=sink.seen.append,
        on_alerts=sink.alerts.extend,
    )
    return rx, sink


async def _send(rx: PanelReceiver, raw: bytes) -> Frame | None:
    (item,) = FrameSplitter().feed(raw)
    return await rx.handle(item, "test")


async def test_fire_frame_gives_alarm_message_for_mapped_zone_and_a_confirm() -> None:
    rx, sink = _receiver()
    raw = gbenc.frame(0x4242, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)), dest=0x99)
    reply = await _send(rx, raw)
    assert reply is not None
    # The confirm, byte-exact: serial echoed, addresses swapped, no data, command 3.
    wire = reply.encode()
    assert wire[:4] == b"@@\x42\x42" and wire[26] == 3 and len(wire) == 30
    assert wire[12:18] == gbenc.addr6(0x99) and wire[18:24] == gbenc.addr6(PANEL)
    assert decode_frame(wire).command == 3
    ((msgs, alarm),) = sink.calls
    assert alarm is True
    (msg,) = msgs
    assert msg.is_alarm and msg.event == "alarm"
    t = msg.topic
    assert (t.site, t.building, t.kind, t.device, t.channel) == (
        "shazui", "b12", "smoke", "SD-000123", "event",
    )  # fmt: skip
    assert msg.tags == {"zone": "b12-f3", "panel": "00000a1b2c3d"}
    assert msg.fields["description"] == "3楼走廊烟感" and msg.fields["fire"] is True
    assert msg.ts_source == "device"
    assert sink.seen == ["00000a1b2c3d"]


async def test_clear_fault_and_fault_clear_follow_the_status_bits() -> None:
    rx, sink = _receiver()
    for status in (gbenc.FIRE, gbenc.NORMAL, gbenc.FAULT, gbenc.FAULT, gbenc.NORMAL):
        await _send(rx, gbenc.frame(1, 2, gbenc.appdata(2, gbenc.component(status))))
    events = [m.event for msgs, _ in sink.calls for m in msgs]
    assert events == ["alarm", "clear", "fault", "fault_clear"]
    assert [a for _, a in sink.calls] == [True, False, False, False]


async def test_component_kind_follows_type_or_config_and_unknown_maps_to_building() -> None:
    rx, sink = _receiver()
    objs = (
        gbenc.component(gbenc.FIRE, comp_addr=7, comp_type=31),  # config says heat
        gbenc.component(gbenc.FIRE, comp_addr=8, comp_type=22),  # point heat detector
        gbenc.component(gbenc.FIRE, comp_addr=9, comp_type=81),  # manual call point
    )
    await _send(rx, gbenc.frame(1, 2, gbenc.appdata(2, *objs)))
    ((msgs, _),) = sink.calls
    got = [(m.topic.kind, m.topic.device, m.tags.get("zone")) for m in msgs]
    assert got == [
        ("heat", "HD-7", "b12-f4"),
        ("heat", "gb00000a1b2c3d-1-1-8", None),
        ("callpoint", "gb00000a1b2c3d-1-1-9", None),
    ]
    assert all(m.topic.building == "b12" for m in msgs)


async def test_transmission_device_status_raises_and_clears_troubles() -> None:
    rx, sink = _receiver()
    assert await _send(rx, gbenc.frame(1, 2, gbenc.appdata(21, gbenc.device_status(0b0101))))
    await _send(rx, gbenc.frame(2, 2, gbenc.appdata(21, gbenc.device_status(0b0001))))
    assert [(a.type, a.kind, a.state, a.detail["trouble"]) for a in sink.alerts] == [
        ("trouble", "panel", "raised", "transmitter_fault"),
        ("trouble", "panel", "cleared", "transmitter_fault"),
    ]
    assert not sink.calls


async def test_system_fire_without_component_alarms_the_panel_pseudo_device() -> None:
    rx, sink = _receiver()
    await _send(rx, gbenc.frame(1, 2, gbenc.appdata(1, gbenc.system(0x0003))))
    ((msgs, alarm),) = sink.calls
    assert (
        alarm and msgs[0].topic.device == "gb00000a1b2c3d-1-1" and msgs[0].topic.building == "b12"
    )
    # With a component already in fire, the system's fire adds no second alarm.
    rx, sink = _receiver()
    await _send(rx, gbenc.frame(1, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE))))
    await _send(rx, gbenc.frame(2, 2, gbenc.appdata(1, gbenc.system(0x0003))))
    assert len(sink.calls) == 1


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        (gbenc.frame(0x0505, 2, gbenc.appdata(2, gbenc.component(3)), checksum_delta=7), 6),
        (gbenc.frame(0x0505, 9), 6),
        (gbenc.frame(0x0505, 2, b"\x02\x01\x00"), 6),  # misshapen type 2
        (gbenc.frame(0x0505, 2, b"\x63\x00"), 6),  # unknown type 99
        (gbenc.frame(0x0505, 200), 6),  # user command: none supported
        (gbenc.frame(0x0505, 1), 3),  # control: confirmed
        (gbenc.frame(0x0505, 4, b"\x59\x01\x00"), 3),  # 89 initialise: confirmed
    ],
)
async def test_denies_and_confirms_echo_the_serial(raw: bytes, command: int) -> None:
    rx, sink = _receiver()
    reply = await _send(rx, raw)
    assert reply is not None and reply.serial == 0x0505 and reply.command == command
    assert not sink.calls


async def test_confirm_and_deny_from_a_panel_get_no_reply() -> None:
    rx, _ = _receiver()
    assert await _send(rx, gbenc.frame(1, 3)) is None
    assert await _send(rx, gbenc.frame(1, 6)) is None
    assert rx.stats()["command_3"] == 1


async def test_read_request_is_answered_from_what_the_panel_reported() -> None:
    rx, _ = _receiver()
    obj = gbenc.component(gbenc.FAULT)
    await _send(rx, gbenc.frame(1, 2, gbenc.appdata(2, obj)))
    req = bytes((62, 1, 1, 1)) + (0x0102).to_bytes(4, "little")
    reply = await _send(rx, gbenc.frame(2, 4, req, source=0x77, dest=PANEL))
    assert reply is not None and reply.command == 5
    assert reply.data == gbenc.appdata(2, obj)
    st21 = await _send(rx, gbenc.frame(3, 4, bytes((81, 1, 0)), dest=PANEL))
    assert st21 is not None and st21.command == 3  # nothing known of type 21 yet: confirm


async def test_async_callback_is_awaited_before_the_confirm() -> None:
    order: list[str] = []

    async def store(msgs: list[DeviceMessage], alarm: bool) -> None:
        order.append("stored")

    rx = PanelReceiver(SETTINGS, "shazui", ManualClock(), on_messages=store)
    reply = await rx.handle(
        decode_frame(gbenc.frame(1, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)))), "t"
    )
    order.append("reply")
    assert reply is not None and order == ["stored", "reply"]


def test_settings_refuse_bad_addresses_and_duplicates() -> None:
    with pytest.raises(ValidationError, match="address"):
        PanelSettings.model_validate({"units": [{"address": "xyz", "building": "b1"}]})
    unit = {"address": "000000000001", "building": "b1"}
    with pytest.raises(ValidationError, match="appears twice"):
        PanelSettings.model_validate({"units": [unit, unit]})
    comp = {"component": 1, "device": "d1"}
    with pytest.raises(ValidationError, match="mapped twice"):
        PanelSettings.model_validate({"units": [{**unit, "components": [comp, comp]}]})
    with pytest.raises(ValidationError, match="HOST:PORT"):
        PanelSettings.model_validate({"listen": "5000"})
