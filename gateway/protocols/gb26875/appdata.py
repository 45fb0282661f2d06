"""GB/T 26875.3 application data: type (1 B), object count (1 B), then the objects.

Upload types decoded here (numbers of the standard):
1 building fire-facility system status, 2 component status, 3 component analog value,
4 system operation record, 5/6/7/8 system version/config/component config/time,
21 transmission-device status, 24 its operation record, 25/26/28 its version/config/time.
Requests of a monitoring centre: 61–68 (read the fire-facility system), 81, 84–86, 88–91
(read, initialise, set the time of, or inspect the transmission device).
Multi-byte numbers are little-endian; times are the 6-byte binary `FrameTime`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Final

from gateway.errors import GatewayError
from gateway.protocols.gb26875.frame import FrameTime

DESCRIPTION_LEN: Final = 31

# Fixed object sizes in bytes, the 6-byte time included where the type carries one.
OBJECT_SIZES: Final[dict[int, int]] = {
    1: 10, 2: 46, 3: 16, 4: 10, 5: 4, 7: 38, 8: 8,
    21: 7, 24: 8, 25: 2, 28: 6,
    61: 2, 62: 6, 63: 6, 64: 9, 65: 2, 66: 2, 67: 6, 68: 2,
    81: 1, 84: 7, 85: 1, 86: 1, 88: 1, 89: 1, 90: 6, 91: 1,
}  # fmt: skip
VARIABLE_TYPES: Final = frozenset({6, 26})  # configuration text with its own length byte
REQUEST_TYPES: Final = frozenset({61, 62, 63, 64, 65, 66, 67, 68, 81, 84, 85, 86, 88, 89, 90, 91})
# A read request is answered with the upload type holding what it asks for.
ANSWER_TYPE: Final[dict[int, int]] = {
    61: 1, 62: 2, 63: 3, 64: 4, 65: 5, 66: 6, 67: 7, 68: 8,
    81: 21, 84: 24, 85: 25, 86: 26, 88: 28,
}  # fmt: skip


class AppDataError(GatewayError):
    """Application data whose shape does not match its type; `reason` is the counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"GB/T 26875.3 application data: {detail}")
        self.reason = reason


class ComponentState(IntFlag):
    """Status word of a component (type 2) and, bits 0–7, of a system (type 1)."""

    NORMAL = 1 << 0  # 1: normal operation, 0: test
    FIRE = 1 << 1
    FAULT = 1 << 2
    DISABLED = 1 << 3  # 屏蔽
    SUPERVISORY = 1 << 4  # 监管
    STARTED = 1 << 5  # 启动
    FEEDBACK = 1 << 6  # 反馈
    DELAY = 1 << 7  # 延时
    POWER_FAULT = 1 << 8  # component: power fault; system (type 1): main power fault


class SystemState(IntFlag):
    """Extra bits of a system status word (type 1) beyond those shared with components."""

    MAIN_POWER_FAULT = 1 << 8
    BACKUP_POWER_FAULT = 1 << 9
    BUS_FAULT = 1 << 10
    MANUAL = 1 << 11
    CONFIG_CHANGED = 1 << 12
    RESET = 1 << 13


class DeviceState(IntFlag):
    """Status byte of the user information transmission device (type 21)."""

    NORMAL = 1 << 0
    FIRE = 1 << 1
    FAULT = 1 << 2
    MAIN_POWER_FAULT = 1 << 3
    BACKUP_POWER_FAULT = 1 << 4
    CENTRE_LINK_FAULT = 1 << 5
    PANEL_LINK_FAULT = 1 << 6


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """Type 1: a building fire-facility system (e.g. the fire alarm control panel)."""

    sys_type: int
    sys_addr: int
    status: int
    time: FrameTime


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """Type 2: one component (detector, call point, module) of a system."""

    sys_type: int
    sys_addr: int
    comp_type: int
    comp_addr: int
    status: int
    description: str
    time: FrameTime


@dataclass(frozen=True, slots=True)
class AnalogValue:
    """Type 3: an analog reading of a component (raw signed value; unit by `analog_type`)."""

    sys_type: int
    sys_addr: int
    comp_type: int
    comp_addr: int
    analog_type: int
    value: int
    time: FrameTime


@dataclass(frozen=True, slots=True)
class Operation:
    """Types 4 (system, with sys_type/sys_addr) and 24 (transmission device): an operation."""

    flags: int
    operator: int
    time: FrameTime
    sys_type: int | None = None
    sys_addr: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """Type 21: the transmission device's own status."""

    status: int
    time: FrameTime


@dataclass(frozen=True, slots=True)
class Opaque:
    """Any other object (versions, configs, times, requests): kept as its raw bytes."""

    raw: bytes


AppObject = SystemStatus | ComponentStatus | AnalogValue | Operation | DeviceStatus | Opaque


@dataclass(frozen=True, slots=True)
class AppData:
    """Decoded application data: `raws[i]` are the exact bytes of `objects[i]`."""

    type: int
    objects: tuple[AppObject, ...]
    raws: tuple[bytes, ...]


def decode_description(raw: bytes) -> str:
    """31 bytes of GB 18030 text, padded with NULs or spaces."""
    return raw.split(b"\x00", 1)[0].decode("gb18030", errors="replace").strip()


def encode_description(text: str) -> bytes:
    """`text` as GB 18030, cut to 31 bytes on a character boundary and NUL-padded."""
    raw = text.encode("gb18030", errors="replace")
    while len(raw) > DESCRIPTION_LEN:
        text = text[:-1]
        raw = text.encode("gb18030", errors="replace")
    return raw.ljust(DESCRIPTION_LEN, b"\x00")


def _u16(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 2], "little")


def _decode_object(kind: int, raw: bytes) -> AppObject:
    if kind == 1:
        return SystemStatus(raw[0], raw[1], _u16(raw, 2), FrameTime.from_bytes(raw[4:10]))
    if kind == 2:
        return ComponentStatus(
            sys_type=raw[0],
            sys_addr=raw[1],
            comp_type=raw[2],
            comp_addr=int.from_bytes(raw[3:7], "little"),
            status=_u16(raw, 7),
            description=decode_description(raw[9:40]),
            time=FrameTime.from_bytes(raw[40:46]),
        )
    if kind == 3:
        return AnalogValue(
            sys_type=raw[0],
            sys_addr=raw[1],
            comp_type=raw[2],
            comp_addr=int.from_bytes(raw[3:7], "little"),
            analog_type=raw[7],
            value=int.from_bytes(raw[8:10], "little", signed=True),
            time=FrameTime.from_bytes(raw[10:16]),
        )
    if kind == 4:
        return Operation(raw[2], raw[3], FrameTime.from_bytes(raw[4:10]), raw[0], raw[1])
    if kind == 21:
        return DeviceStatus(raw[0], FrameTime.from_bytes(raw[1:7]))
    if kind == 24:
        return Operation(raw[0], raw[1], FrameTime.from_bytes(raw[2:8]))
    return Opaque(raw)


def decode_appdata(data: bytes) -> AppData:
    """Decode and shape-check application data; AppDataError says what does not fit."""
    if len(data) < 2:
        raise AppDataError("appdata_short", f"{len(data)} bytes, need type and object count")
    kind, count = data[0], data[1]
    raws: list[bytes] = []
    at = 2
    if kind in OBJECT_SIZES:
        size = OBJECT_SIZES[kind]
        if len(data) != 2 + count * size:
            raise AppDataError(
                "appdata_shape",
                f"type {kind}: {count} objects of {size} bytes need {2 + count * size} bytes, "
                f"got {len(data)}",
            )
        raws = [data[2 + i * size : 2 + (i + 1) * size] for i in range(count)]
    elif kind in VARIABLE_TYPES:
        head = 3 if kind == 6 else 1  # type 6: sys type, sys addr, length; type 26: length
        for _ in range(count):
            if at + head > len(data):
                raise AppDataError("appdata_shape", f"type {kind}: object {len(raws)} truncated")
            end = at + head + data[at + head - 1]
            if end > len(data):
                raise AppDataError("appdata_shape", f"type {kind}: object {len(raws)} truncated")
            raws.append(data[at:end])
            at = end
        if at != len(data):
            raise AppDataError("appdata_shape", f"type {kind}: {len(data) - at} bytes left over")
    else:
        raise AppDataError("appdata_type", f"type {kind} is not one this receiver knows")
    return AppData(kind, tuple(_decode_object(kind, r) for r in raws), tuple(raws))


def encode_appdata(kind: int, objects: list[bytes]) -> bytes:
    """Type, count and the objects' bytes (at most 255 objects)."""
    if len(objects) > 255:
        raise AppDataError("encode", f"{len(objects)} objects, at most 255 fit the count byte")
    return bytes((kind, len(objects))) + b"".join(objects)


def encode_component(obj: ComponentStatus) -> bytes:
    """The 46 bytes of a type-2 object."""
    return b"".join(
        (
            bytes((obj.sys_type, obj.sys_addr, obj.comp_type)),
            obj.comp_addr.to_bytes(4, "little"),
            obj.status.to_bytes(2, "little"),
            encode_description(obj.description),
            obj.time.to_bytes(),
        )
    )


def encode_device_status(obj: DeviceStatus) -> bytes:
    """The 7 bytes of a type-21 object."""
    return bytes((obj.status,)) + obj.time.to_bytes()
