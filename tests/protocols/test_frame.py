"""Frames and application data against the test-side encoder (byte-exact)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.gb26875 import (
    ComponentState,
    ComponentStatus,
    DeviceStatus,
    Frame,
    FrameError,
    FrameTime,
    SystemStatus,
    decode_appdata,
    decode_frame,
)
from gateway.protocols.gb26875.appdata import AppDataError
from tests.protocols import gbenc


def test_smoke_detector_fire_upload_decodes_field_by_field() -> None:
    raw = gbenc.frame(
        0x1234, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)), source=0xA1B2C3D4E5F6, dest=7
    )
    assert len(raw) == 30 + 2 + 46
    f = decode_frame(raw)
    assert (f.serial, f.command, f.source, f.destination) == (0x1234, 2, 0xA1B2C3D4E5F6, 7)
    assert f.version == (1, 2)
    assert f.time == FrameTime(5, 4, 3, 2, 1, 26)
    data = decode_appdata(f.data)
    (obj,) = data.objects
    assert isinstance(obj, ComponentStatus)
    assert (obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr) == (1, 1, 31, 0x0102)
    assert obj.status & ComponentState.FIRE and not obj.status & ComponentState.FAULT
    assert obj.description == "3楼走廊烟感"
    assert obj.time == FrameTime(5, 4, 3, 2, 1, 26)


def test_transmission_device_status_and_system_status_decode() -> None:
    f = decode_frame(gbenc.frame(9, 2, gbenc.appdata(21, gbenc.device_status(0b0000_0101))))
    (obj,) = decode_appdata(f.data).objects
    assert obj == DeviceStatus(0b101, FrameTime(5, 4, 3, 2, 1, 26))
    f = decode_frame(gbenc.frame(9, 2, gbenc.appdata(1, gbenc.system(0x0103, sys_addr=4))))
    (sysobj,) = decode_appdata(f.data).objects
    assert sysobj == SystemStatus(1, 4, 0x0103, FrameTime(5, 4, 3, 2, 1, 26))


def test_production_encoder_matches_test_encoder_for_confirm_and_deny() -> None:
    for command in (3, 6):
        ours = Frame(
            serial=0xBEEF,
            command=command,
            source=5,
            destination=0x0A1B2C3D,
            time=FrameTime(1, 2, 3, 4, 5, 6),
            version=(1, 0),
        ).encode()
        theirs = gbenc.frame(
            0xBEEF, command, source=5, dest=0x0A1B2C3D, time=(1, 2, 3, 4, 5, 6), version=(1, 0)
        )
        assert ours == theirs
        assert len(ours) == 30


@given(
    serial=st.integers(0, 0xFFFF),
    command=st.sampled_from([1, 2, 3, 4, 5, 6, 128, 255]),
    source=st.integers(0, 2**48 - 1),
    dest=st.integers(0, 2**48 - 1),
    data=st.binary(max_size=1024),
    time=st.tuples(*[st.integers(0, 255)] * 6),
)
def test_round_trip_through_both_encoders(
    serial: int, command: int, source: int, dest: int, data: bytes, time: tuple[int, ...]
) -> None:
    raw = gbenc.frame(serial, command, data, source=source, dest=dest, time=time)  # type: ignore[arg-type]
    f = decode_frame(raw)
    assert (f.serial, f.command, f.source, f.destination, f.data) == (
        serial,
        command,
        source,
        dest,
        data,
    )
    assert f.encode() == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (gbenc.frame(1, 2, b"\x15\x00abcd")[:-3], "bad_length"),
        (gbenc.frame(1, 2)[:20], "truncated"),
        (gbenc.frame(1, 2, checksum_delta=1), "bad_checksum"),
        (b"!!" + gbenc.frame(1, 2)[2:], "bad_start"),
        (gbenc.frame(1, 2)[:-2] + b"#$", "bad_end"),
        (gbenc.frame(1, 7), "unknown_command"),
        (gbenc.frame(1, 2, b"x" * 1025), "oversize"),
    ],
)
def test_broken_frames_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(raw)
    assert info.value.reason == reason
    # A deny is possible exactly when the layout held.
    assert (info.value.frame is not None) == (reason in {"bad_checksum", "unknown_command"})


def test_bad_checksum_error_keeps_serial_for_the_deny() -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(gbenc.frame(0x0707, 2, b"\x15\x00", checksum_delta=5))
    assert info.value.frame is not None and info.value.frame.serial == 0x0707


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02",
        gbenc.appdata(2, gbenc.component(1))[:-1],  # one byte short
        gbenc.appdata(2, gbenc.component(1)) + b"\x00",  # one byte too many
        bytes((2, 2)) + gbenc.component(1),  # count says two
        bytes((99, 0)),  # unknown type
        bytes((26, 1, 5, 1, 2)),  # config text shorter than its length byte
    ],
)
def test_misshapen_application_data_is_refused(data: bytes) -> None:
    with pytest.raises(AppDataError):
        decode_appdata(data)


def test_variable_config_objects_and_requests_decode() -> None:
    assert decode_appdata(bytes((26, 1, 3)) + b"abc").raws == (b"\x03abc",)
    assert decode_appdata(bytes((6, 1, 1, 1, 2)) + b"hi").raws == (b"\x01\x01\x02hi",)
    assert decode_appdata(bytes((81, 1, 0))).type == 81
    assert decode_appdata(bytes((61, 1, 1, 1))).raws == (b"\x01\x01",)


def test_frame_time_converts_local_time_and_rejects_non_dates() -> None:
    t = FrameTime(0, 0, 8, 1, 1, 26)  # 2026-01-01 08:00 in UTC+8 = 00:00 UTC
    assert t.to_ms(8) == 1_767_225_600_000
    assert FrameTime.from_ms(1_767_225_600_000, 8) == t
    assert FrameTime(0, 0, 0, 31, 2, 26).to_ms(8) is None
    assert FrameTime(0, 0, 0, 1, 1, 200).to_ms(8) is None
