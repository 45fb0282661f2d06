"""Test-side GB/T 26875.3 encoder, written from the layout in issue 8 with `struct`.

Deliberately independent of gateway.protocols: if the production code misreads the
layout, frames built here will not round-trip through it.
"""

from __future__ import annotations

import struct

# serial u16 LE, version main/user, time s/min/h/day/month/year, source 6, dest 6, len u16 LE, cmd
_HEAD = struct.Struct("<H2B6B6s6sHB")


def addr6(value: int) -> bytes:
    return value.to_bytes(6, "little")


def frame(
    serial: int,
    command: int,
    data: bytes = b"",
    *,
    source: int = 0x0000_0A1B_2C3D,
    dest: int = 0,
    time: tuple[int, int, int, int, int, int] = (5, 4, 3, 2, 1, 26),
    version: tuple[int, int] = (1, 2),
    checksum_delta: int = 0,
    length: int | None = None,
) -> bytes:
    head = _HEAD.pack(
        serial,
        *version,
        *time,
        addr6(source),
        addr6(dest),
        len(data) if length is None else length,
        command,
    )
    body = head + data
    check = (sum(body) + checksum_delta) % 256
    return b"@@" + body + bytes([check]) + b"##"


def component(
    status: int,
    *,
    sys_type: int = 1,
    sys_addr: int = 1,
    comp_type: int = 31,
    comp_addr: int = 0x0102,
    text: str = "3楼走廊烟感",
    time: tuple[int, int, int, int, int, int] = (5, 4, 3, 2, 1, 26),
) -> bytes:
    desc = text.encode("gb18030").ljust(31, b"\x00")
    assert len(desc) == 31
    return (
        struct.pack("<BBBIH", sys_type, sys_addr, comp_type, comp_addr, status) + desc + bytes(time)
    )


def system(status: int, *, sys_type: int = 1, sys_addr: int = 1) -> bytes:
    return struct.pack("<BBH", sys_type, sys_addr, status) + bytes((5, 4, 3, 2, 1, 26))


def device_status(status: int) -> bytes:
    return bytes((status,)) + bytes((5, 4, 3, 2, 1, 26))


def appdata(kind: int, *objects: bytes) -> bytes:
    return bytes((kind, len(objects))) + b"".join(objects)


FIRE = 0x0003  # bit0 normal + bit1 fire
FAULT = 0x0005  # bit0 normal + bit2 fault
NORMAL = 0x0001
