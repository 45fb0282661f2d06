"""A paho-mqtt 2.x client tuned for the gateway's ingest connection.

paho reads each packet with several 1-byte `recv` calls, builds an `MQTTMessage` (and, for
MQTT 5, a `Properties` object) per PUBLISH, matches it against its callback table, and
sends each PUBACK as its own packet with a wake-up of its network thread. At tens of
thousands of messages a second that is most of the gateway's CPU. This subclass keeps
paho for everything else (connect, session, TLS, keepalive, reconnect, will, publishing)
and changes three private hooks, pinned to paho-mqtt 2.1–2.2 and covered by the end-to-end
tests against a real Mosquitto:
- `_sock_recv` serves paho's small reads from one large `recv` (64 KiB);
- `loop_read` keeps parsing until that buffer is drained (else complete packets could wait
  in it while `select` sees an idle socket), and takes the complete QoS 0/1 PUBLISH packets
  in the buffer straight from it (`_read_publishes`), without paho's per-packet state
  machine; anything else, or a packet cut by the buffer's end, goes through paho;
- `_handle_publish` (a PUBLISH that came through paho) parses QoS 0/1 PUBLISH packets
  itself; both hand `(topic, payload, mid, qos)` to `deliver`; with manual acks nothing
  else is needed.
`ack_many` sends all PUBACKs of a committed batch as one write.
`room(timeout_s)`, when given, is asked before each read: while it says False the client
reads nothing (its writes, acks included, go on), so TCP pushes back on the broker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

Deliver = Callable[[str, bytes, int, int], None]
Room = Callable[[float], bool]
_READ_CHUNK = 65536
_PAUSE_S = 0.05  # while the consumer is full: how long one read waits for room
_PUBACK = 0x40
_PUBLISH = 0x30


class IngestClient(paho.Client):
    """paho `Client` with buffered reads, a lean PUBLISH path and batched PUBACKs."""

    def __init__(
        self, *args: Any, deliver: Deliver, room: Room | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver
        self._room = room
        self._rbuf = b""
        self._rpos = 0

    # --- reading ---

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            if self._room is not None and not self._room(0.0):
                raise BlockingIOError  # the consumer is full: paho stops reading for now
            data = super()._sock_recv(_READ_CHUNK)  # BlockingIOError when nothing is there
            if not data:
                return b""  # the connection closed
            self._rbuf = data
            self._rpos = 0
        end = self._rpos + bufsize
        chunk = self._rbuf[self._rpos : end]
        self._rpos += len(chunk)
        return chunk

    def _sock_close(self) -> None:
        self._rbuf = b""
        self._rpos = 0
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if self._room is not None and not self._room(_PAUSE_S):
            return MQTTErrorCode.MQTT_ERR_SUCCESS  # full: read later, the broker keeps it
        while True:
            if self._rpos < len(self._rbuf) and self._in_packet["command"] == 0:
                self._read_publishes()
                if self._rpos >= len(self._rbuf):
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or self._rpos >= len(self._rbuf):
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN

    def _read_publishes(self) -> None:
        """Deliver the complete QoS 0/1 PUBLISH packets at the head of the read buffer.

        Stops at anything else (another packet type, QoS 2, a packet cut by the end of
        the buffer, a malformed length) and leaves it to paho's `_packet_read`.
        """
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        start = pos
        while pos < end:
            header = buf[pos]
            if header & 0xF0 != _PUBLISH or header & 0x06 > 0x02:
                break
            i, length, shift = pos + 1, 0, 0
            while i < end and shift < 28:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            else:
                break  # remaining length cut by the buffer's end (or malformed): paho reads it
            if i + length > end:
                break
            self._publish(header, buf[i : i + length])
            pos = i + length
        if pos != start:
            self._rpos = pos
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        if header & 0x06 > 0x02:
            return super()._handle_publish()  # QoS 2: paho's own flow
        self._publish(header, bytes(self._in_packet["packet"]))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _publish(self, header: int, packet: bytes) -> None:
        qos = (header & 0x06) >> 1
        topic_len = int.from_bytes(packet[0:2], "big")
        pos = 2 + topic_len
        try:
            topic = packet[2:pos].decode("utf-8")
        except UnicodeDecodeError:
            topic = "<invalid UTF-8 topic>"
        mid = 0
        if qos:
            mid = int.from_bytes(packet[pos : pos + 2], "big")
            pos += 2
        if self._protocol == paho.MQTTv5:
            props_len, shift = 0, 0
            while True:  # variable byte integer
                byte = packet[pos]
                pos += 1
                props_len |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            pos += props_len
        self._deliver(topic, packet[pos:], mid, qos)

    # --- acknowledging ---

    def ack_many(self, mids: Sequence[int]) -> None:
        """Send one PUBACK per mid, all in one write (MQTT 3.1.1 and 5: success, no reason)."""
        if not mids:
            return
        packet = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
        self._packet_queue(_PUBACK, packet, 0, 0)
