"""IngestClient's own PUBLISH reader against paho's framing, over a real socket pair.

The byte stream is what a broker sends: PUBLISH packets of every remaining-length size
class (1-4 bytes), QoS 0 and 1, MQTT 3.1.1 and 5 (with properties), interleaved with
other packets that paho must still handle, written in arbitrary chunk sizes so packets
are cut at every kind of boundary. Every PUBLISH must come out once, in order, intact.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from gateway.ingest.fastclient import IngestClient, Room

Delivered = tuple[str, bytes, int, int]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: str, payload: bytes, qos: int, mid: int, v5: bool) -> bytes:
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name
    if qos:
        body += mid.to_bytes(2, "big")
    if v5:
        props = b"\x01\x01"  # payload format indicator = 1 (UTF-8)
        body += _varint(len(props)) + props
    body += payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


PINGRESP = b"\xd0\x00"
PUBACK_UNKNOWN = b"\x40\x02\x7f\xff"  # a PUBACK for a mid we never sent: paho ignores it


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _client(
    sock: socket.socket, v5: bool, out: list[Delivered], room: Room | None = None
) -> IngestClient:
    client = IngestClient(
        deliver=lambda t, p, m, q: out.append((t, p, m, q)),
        room=room,
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="fastclient-test",
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        manual_ack=True,
    )
    client._sock = sock  # the socket paho would have connected
    return client


def _feed(client: IngestClient, writer: socket.socket, stream: bytes, cuts: list[int]) -> None:
    pos = 0
    for size in [*cuts, len(stream)]:
        chunk = stream[pos : pos + max(size, 1)]
        if not chunk:
            break
        writer.sendall(chunk)
        pos += len(chunk)
        for _ in range(8):  # as paho's loop would, while select says readable
            client.loop_read()
    assert pos >= len(stream)


PAYLOAD_SIZES = [0, 1, 100, 120, 127, 128, 16_000, 16_384, 70_000, 2_100_000]


@pytest.mark.parametrize("v5", [False, True])
def test_every_publish_comes_out_once_in_order_across_length_classes(
    pair: tuple[socket.socket, socket.socket], v5: bool
) -> None:
    reader, writer = pair
    out: list[Delivered] = []
    client = _client(reader, v5, out)
    expected: list[Delivered] = []
    stream = bytearray()
    for n, size in enumerate(PAYLOAD_SIZES * 2):
        topic, payload, qos = f"community/s/b{n}/smoke/d{n}/telemetry", bytes([n]) * size, n % 2
        mid = n + 1 if qos else 0
        expected.append((topic, payload, mid, qos))
        stream += _publish(topic, payload, qos, mid, v5)
        if n % 3 == 0:
            stream += PINGRESP if n % 2 else PUBACK_UNKNOWN
    writer.setblocking(False)
    _feed_all(client, writer, bytes(stream))
    assert out == expected


def _feed_all(client: IngestClient, writer: socket.socket, stream: bytes) -> None:
    # Large streams: write what the socket buffer takes, read, repeat.
    pos = 0
    while pos < len(stream):
        with contextlib.suppress(BlockingIOError):  # the socket buffer is full: read first
            pos += writer.send(stream[pos : pos + 262_144])
        client.loop_read()
    for _ in range(64):
        client.loop_read()


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 1), st.booleans()), min_size=1, max_size=30
    ),
    cuts=st.lists(st.integers(1, 400), max_size=40),
    v5=st.booleans(),
)
def test_packets_cut_at_any_byte_are_reassembled(
    messages: list[tuple[int, int, bool]], cuts: list[int], v5: bool
) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        out: list[Delivered] = []
        client = _client(a, v5, out)
        expected: list[Delivered] = []
        stream = bytearray()
        for n, (size, qos, ping_after) in enumerate(messages):
            topic, payload = f"c/s/b/smoke/d{n}/event", bytes(range(256)) * (size // 256 + 1)
            payload = payload[:size]
            mid = (n % 65_535) + 1 if qos else 0
            expected.append((topic, payload, mid, qos))
            stream += _publish(topic, payload, qos, mid, v5)
            if ping_after:
                stream += PINGRESP
        _feed(client, b, bytes(stream), cuts)
        assert out == expected
    finally:
        a.close()
        b.close()


def test_qos2_publish_is_left_to_paho(pair: tuple[socket.socket, socket.socket]) -> None:
    reader, writer = pair
    out: list[Delivered] = []
    client = _client(reader, False, out)
    qos2 = bytearray(_publish("c/s/b/smoke/d/event", b"x", 1, 9, False))
    qos2[0] = 0x34  # QoS 2
    writer.sendall(_publish("c/s/b/smoke/d/event", b"a", 1, 8, False) + bytes(qos2))
    for _ in range(4):
        client.loop_read()
    assert out == [("c/s/b/smoke/d/event", b"a", 8, 1)]  # QoS 2 went through paho's flow


def test_a_full_consumer_stops_reading_until_there_is_room(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    reader, writer = pair
    out: list[Delivered] = []
    capacity = [0]  # the consumer takes this many messages

    def room(timeout_s: float) -> bool:
        return len(out) < capacity[0]

    client = _client(reader, False, out, room)
    sent = [(f"c/s/b/smoke/d{n}/telemetry", b"x" * 1000, n + 1, 1) for n in range(150)]
    writer.sendall(b"".join(_publish(t, p, q, m, False) for t, p, m, q in sent))
    for _ in range(3):
        client.loop_read()
    assert out == []  # full: nothing read, the socket keeps the bytes
    capacity[0] = 40
    for _ in range(3):
        client.loop_read()
    # Reads stop once full; what one 64 KiB read brought in is still delivered.
    assert 40 <= len(out) <= 40 + 65536 // 1000 + 1 < len(sent)
    capacity[0] = 10**6
    client.loop_read()
    assert out == sent
