"""Splitting a TCP byte stream into frames: partial reads, stuck frames, garbage."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols.gb26875 import Frame, FrameError, FrameSplitter
from tests.protocols import gbenc

FIRE = gbenc.frame(1, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)))
STATUS = gbenc.frame(2, 2, gbenc.appdata(21, gbenc.device_status(1)))
CONFIRM = gbenc.frame(3, 3)


def _serials(items: list[Frame | FrameError]) -> list[int]:
    return [i.serial for i in items if isinstance(i, Frame)]


def test_frames_split_at_every_byte_boundary_come_out_whole() -> None:
    stream = FIRE + STATUS + CONFIRM
    for cut in range(1, len(stream)):
        splitter = FrameSplitter()
        got = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:])
        assert _serials(got) == [1, 2, 3], cut
        assert splitter.pending() == 0
        assert splitter.stats.skipped_bytes == 0


def test_one_byte_at_a_time() -> None:
    splitter = FrameSplitter()
    got: list[Frame | FrameError] = []
    for b in FIRE + STATUS:
        got += splitter.feed(bytes([b]))
    assert _serials(got) == [1, 2]


def test_concatenated_frames_in_one_read() -> None:
    assert _serials(FrameSplitter().feed(FIRE * 3 + STATUS)) == [1, 1, 1, 2]


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    splitter = FrameSplitter()
    got = splitter.feed(b"xx@" + FIRE + b"\x00@@##garbage@" + STATUS + b"@")
    assert _serials(got) == [1, 2]
    assert splitter.stats.skipped_bytes == 3 + 13
    assert splitter.pending() == 1  # a trailing '@' may start the next frame


def test_oversize_length_and_wrong_end_resync_to_the_next_frame() -> None:
    oversize = gbenc.frame(9, 2, length=2000)
    wrong_end = gbenc.frame(8, 2, b"abc")[:-2] + b"$$"
    splitter = FrameSplitter()
    got = splitter.feed(oversize + wrong_end + FIRE)
    assert _serials(got) == [1]
    assert splitter.stats.oversize == 1
    assert splitter.stats.bad_end >= 1


def test_frame_starting_inside_a_false_start_is_found() -> None:
    # '@@' then a length that points past a real frame: the real frame must still be found.
    splitter = FrameSplitter()
    got = splitter.feed(b"@@" + FIRE + STATUS)
    assert _serials(got) == [1, 2]


def test_bad_checksum_and_unknown_command_come_out_as_errors_with_the_frame() -> None:
    got = FrameSplitter().feed(gbenc.frame(5, 2, checksum_delta=1) + gbenc.frame(6, 9) + CONFIRM)
    assert [type(i).__name__ for i in got] == ["FrameError", "FrameError", "Frame"]
    errors = [i for i in got if isinstance(i, FrameError)]
    assert [e.reason for e in errors] == ["bad_checksum", "unknown_command"]
    assert [e.frame.serial for e in errors if e.frame] == [5, 6]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 200), max_size=30))
def test_arbitrary_bytes_never_raise(noise: bytes, cuts: list[int]) -> None:
    splitter = FrameSplitter()
    at = 0
    for n in [*cuts, len(noise)]:
        splitter.feed(noise[at : at + n])
        at += n
    assert splitter.pending() < 30 + 1024


_no_at = st.binary(max_size=200).map(lambda b: b.replace(b"@", b"."))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_no_at, st.integers(0, 0xFFFF), st.binary(max_size=100)), max_size=8),
    _no_at,
    st.integers(1, 64),
)
def test_valid_frames_embedded_in_garbage_are_all_found(
    parts: list[tuple[bytes, int, bytes]], tail: bytes, chunk: int
) -> None:
    stream = b"".join(g + gbenc.frame(s, 2, d) for g, s, d in parts) + tail
    splitter = FrameSplitter()
    got: list[Frame | FrameError] = []
    for i in range(0, len(stream), chunk):
        got += splitter.feed(stream[i : i + chunk])
    assert [(f.serial, f.data) for f in got if isinstance(f, Frame)] == [
        (s, d) for _, s, d in parts
    ]
    assert not [e for e in got if isinstance(e, FrameError)]
