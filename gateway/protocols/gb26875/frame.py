"""GB/T 26875.3 frames: layout, checksum, encoding and shape validation.

```
@@ | serial 2 LE | version 2 (main, user) | time 6 (s, min, h, day, month, year-2000)
   | source 6 LE | destination 6 LE | data length 2 LE (≤ 1024) | command 1
   | application data | checksum 1 (sum of serial … data, mod 256) | ##
```
Fixed overhead: 30 bytes. Times are binary (not BCD), in the panel's local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from gateway.errors import GatewayError

START: Final = b"@@"
END: Final = b"##"
HEADER_LEN: Final = 27  # start .. command byte
OVERHEAD: Final = 30
MAX_DATA_LEN: Final = 1024
MAX_FRAME_LEN: Final = OVERHEAD + MAX_DATA_LEN
ADDRESS_MAX: Final = (1 << 48) - 1


class FrameError(GatewayError):
    """A byte sequence is not a well-formed GB/T 26875.3 frame; `reason` is the counter key."""

    def __init__(self, reason: str, detail: str, frame: Frame | None = None) -> None:
        super().__init__(f"GB/T 26875.3 frame: {detail}")
        self.reason = reason
        # The frame as read when its layout held (bad checksum, unknown command): untrusted,
        # but its serial and addresses are what a deny (command 6) echoes.
        self.frame = frame


class Command(IntEnum):
    """The command byte (128–255 are user-defined and accepted as plain ints)."""

    CONTROL = 1
    SEND_DATA = 2
    CONFIRM = 3
    REQUEST = 4
    ANSWER = 5
    DENY = 6


KNOWN_COMMANDS: Final = frozenset(int(c) for c in Command)


def is_known_command(command: int) -> bool:
    """Commands 1–6 of the standard and the user range 128–255."""
    return command in KNOWN_COMMANDS or 128 <= command <= 255


@dataclass(frozen=True, slots=True)
class FrameTime:
    """Six binary bytes: second, minute, hour, day, month, year (0–99 → 2000–2099)."""

    second: int = 0
    minute: int = 0
    hour: int = 0
    day: int = 1
    month: int = 1
    year: int = 0

    def to_bytes(self) -> bytes:
        return bytes((self.second, self.minute, self.hour, self.day, self.month, self.year))

    @classmethod
    def from_bytes(cls, raw: bytes) -> FrameTime:
        s, mi, h, d, mo, y = raw[:6]
        return cls(s, mi, h, d, mo, y)

    @classmethod
    def from_ms(cls, ts_ms: int, utc_offset_h: float) -> FrameTime:
        """The wall time `ts_ms` as the panel's local time (clamped into 2000–2099)."""
        tz = dt.timezone(dt.timedelta(hours=utc_offset_h))
        t = dt.datetime.fromtimestamp(ts_ms / 1000, tz)
        return cls(t.second, t.minute, t.hour, t.day, t.month, min(max(t.year - 2000, 0), 99))

    def to_ms(self, utc_offset_h: float) -> int | None:
        """Milliseconds since the epoch, or None when the bytes are not a real date."""
        try:
            tz = dt.timezone(dt.timedelta(hours=utc_offset_h))
            t = dt.datetime(
                2000 + self.year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second,
                tzinfo=tz,
            )
        except ValueError:
            return None
        if self.year > 99:
            return None
        return int(t.timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame; `data` is the raw application data (see appdata.py)."""

    serial: int
    command: int
    source: int
    destination: int
    data: bytes = b""
    time: FrameTime = FrameTime()
    version: tuple[int, int] = (1, 0)

    def encode(self) -> bytes:
        """The frame's bytes; raises FrameError for values that do not fit the layout."""
        if not 0 <= self.serial <= 0xFFFF:
            raise FrameError("encode", f"serial {self.serial} does not fit 2 bytes")
        if len(self.data) > MAX_DATA_LEN:
            raise FrameError("encode", f"{len(self.data)} bytes of data exceed {MAX_DATA_LEN}")
        for name, addr in (("source", self.source), ("destination", self.destination)):
            if not 0 <= addr <= ADDRESS_MAX:
                raise FrameError("encode", f"{name} address {addr} does not fit 6 bytes")
        if not 0 <= self.command <= 255:
            raise FrameError("encode", f"command {self.command} does not fit a byte")
        body = b"".join(
            (
                self.serial.to_bytes(2, "little"),
                bytes(self.version),
                self.time.to_bytes(),
                self.source.to_bytes(6, "little"),
                self.destination.to_bytes(6, "little"),
                len(self.data).to_bytes(2, "little"),
                bytes((self.command,)),
                self.data,
            )
        )
        return START + body + bytes((sum(body) & 0xFF,)) + END

    def reply(self, command: int, data: bytes = b"", time: FrameTime | None = None) -> Frame:
        """The answer to this frame: same serial and version, addresses swapped."""
        return Frame(
            serial=self.serial,
            command=command,
            source=self.destination,
            destination=self.source,
            data=data,
            time=time if time is not None else self.time,
            version=self.version,
        )


def checksum(body: bytes) -> int:
    """Sum of every byte from the serial number to the end of the data, mod 256."""
    return sum(body) & 0xFF


def declared_length(head: bytes | bytearray) -> int:
    """The application-data length of a frame whose first 27 bytes are `head`."""
    return int.from_bytes(head[24:26], "little")


def decode_frame(raw: bytes) -> Frame:
    """Decode exactly one frame; FrameError says which check failed.

    Checks in order: start, length, end, checksum, command. Past the length and end
    checks the error carries the (untrusted) frame so the caller can deny it.
    """
    if len(raw) < OVERHEAD:
        raise FrameError("truncated", f"{len(raw)} bytes, a frame has at least {OVERHEAD}")
    if raw[:2] != START:
        raise FrameError("bad_start", f"starts with {raw[:2].hex()}, not 4040 ('@@')")
    length = declared_length(raw)
    if length > MAX_DATA_LEN:
        raise FrameError("oversize", f"data length {length} > {MAX_DATA_LEN}")
    if len(raw) != OVERHEAD + length:
        raise FrameError(
            "bad_length", f"{len(raw)} bytes but data length {length} needs {OVERHEAD + length}"
        )
    if raw[-2:] != END:
        raise FrameError("bad_end", f"ends with {raw[-2:].hex()}, not 2323 ('##')")
    command = raw[26]
    frame = Frame(
        serial=int.from_bytes(raw[2:4], "little"),
        command=command,
        source=int.from_bytes(raw[12:18], "little"),
        destination=int.from_bytes(raw[18:24], "little"),
        data=bytes(raw[HEADER_LEN : HEADER_LEN + length]),
        time=FrameTime.from_bytes(raw[6:12]),
        version=(raw[4], raw[5]),
    )
    body = raw[2 : HEADER_LEN + length]
    if checksum(body) != raw[HEADER_LEN + length]:
        raise FrameError(
            "bad_checksum",
            f"checksum {raw[HEADER_LEN + length]:#04x}, computed {checksum(body):#04x}",
            frame,
        )
    if not is_known_command(command):
        raise FrameError("unknown_command", f"command {command} is not 1–6 or 128–255", frame)
    return frame


def address_hex(address: int) -> str:
    """The 6-byte address as 12 hex digits, most significant first (the config's form)."""
    return f"{address:012x}"
