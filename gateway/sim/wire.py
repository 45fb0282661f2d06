"""A publish-only MQTT 3.1.1/5 connection for the simulator and the benchmarks' load.

paho's `publish` costs ~50 µs of Python per message (a message object, locks, a queue and
a wake-up of its network thread); on a 2-core machine the load generator then takes the
CPU the system under test needs. This connection does one thing: it encodes each PUBLISH
into a send buffer, writes the buffer in large chunks, and counts the PUBACKs it reads
back, all in the caller's thread (so TLS needs no locking). Brokers acknowledge QoS 1
messages of one connection in order (MQTT 3.1.1 §4.6, 5.0 §4.6), so the publisher's
window is a count, not a set of packet ids.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from pathlib import Path
from typing import Literal

from gateway.errors import GatewayError

_FLUSH_BYTES = 16 * 1024
_KEEPALIVE_S = 60
_PING_AFTER_S = 30.0
_READ_CHUNK = 65536
_CONNACK, _PUBACK, _PINGRESP, _DISCONNECT = 0x20, 0x40, 0xD0, 0xE0
# MQTT 5 CONNACK properties: id -> width in bytes (-1: two-byte-length string/binary,
# -2: a pair of strings). Needed only to find Receive Maximum (0x21).
_V5_PROPS = {
    0x11: 4, 0x21: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x12: -1, 0x22: 2, 0x1F: -1, 0x26: -2,
    0x28: 1, 0x29: 1, 0x2A: 1, 0x13: 2, 0x1A: -1, 0x1C: -1, 0x15: -1, 0x16: -1,
}  # fmt: skip


class PublishError(GatewayError):
    """The simulator cannot publish as asked: bad rate, broker unreachable or refusing."""


class PublishConnection:
    """One publishing MQTT connection; `acked`/`rejected` count PUBACKs (QoS 0: flushed)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        protocol: Literal["5", "3.1.1"] = "5",
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.where = f"MQTT broker {host}:{port}"
        self.acked = 0
        self.rejected = 0
        self.receive_maximum = 65535
        self._v5 = protocol == "5"
        self._out = bytearray()
        self._unflushed_qos0 = 0
        self._rbuf = b""
        self._next_id = 0
        self._last_write = time.monotonic()
        try:
            raw = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise PublishError(f"cannot connect to {self.where}: {exc}") from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock: socket.socket = raw
        try:
            if tls_ca is not None:
                ctx = ssl.create_default_context(cafile=str(tls_ca))
                if tls_cert is not None:
                    ctx.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
                self._sock = ctx.wrap_socket(raw, server_hostname=host)
            self._send(_connect_packet(client_id, self._v5, username, password))
            self._await_connack(timeout_s)
        except (OSError, ssl.SSLError) as exc:
            self._sock.close()
            raise PublishError(f"{self.where}: {exc}") from exc
        except PublishError:
            self._sock.close()
            raise

    def publish(self, topic: bytes, payload: bytes, qos: int) -> None:
        """Queue one PUBLISH (`topic` UTF-8 encoded); written when the buffer is full."""
        header = len(topic).to_bytes(2, "big") + topic
        if qos:
            self._next_id = self._next_id % 65535 + 1
            header += self._next_id.to_bytes(2, "big")
        else:
            self._unflushed_qos0 += 1
        if self._v5:
            header += b"\x00"  # no properties
        out = self._out
        out.append(0x30 | (qos << 1))
        out += _varint(len(header) + len(payload))
        out += header
        out += payload
        if len(out) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write everything queued, then take the PUBACKs that have arrived."""
        if self._out:
            self._send(bytes(self._out))
            self._out.clear()
            self.acked += self._unflushed_qos0
            self._unflushed_qos0 = 0
        self.read(0.0)

    def read(self, timeout_s: float) -> None:
        """Read what the broker sent within `timeout_s`; keep the connection alive."""
        sock = self._sock
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if not pending and not select.select([sock], [], [], timeout_s)[0]:
            if time.monotonic() - self._last_write > _PING_AFTER_S:
                self._send(b"\xc0\x00")  # PINGREQ
            return
        try:
            data = sock.recv(_READ_CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            raise PublishError(f"{self.where}: connection lost: {exc}") from exc
        if not data:
            raise PublishError(f"{self.where} closed the connection")
        self._parse(self._rbuf + data)

    def wait_for_acks(self, target: int, stall_s: float) -> None:
        """Flush, then block until `target` messages are acknowledged; PublishError on a stall."""
        self.flush()
        deadline = time.monotonic() + stall_s
        while self.acked + self.rejected < target:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PublishError(f"no acknowledgement from the broker for {stall_s} s")
            self.read(min(left, 1.0))

    def close(self) -> None:
        """Send what is queued and DISCONNECT (best effort), then close the socket."""
        try:
            self._send(bytes(self._out) + b"\xe0\x00")
        except PublishError:
            pass
        finally:
            self._sock.close()

    # --- internals ---

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise PublishError(f"{self.where}: cannot send: {exc}") from exc
        self._last_write = time.monotonic()

    def _parse(self, buf: bytes) -> None:
        pos, end = 0, len(buf)
        while pos + 2 <= end:
            kind = buf[pos] & 0xF0
            length, body = _read_varint(buf, pos + 1)
            if body < 0 or body + length > end:
                break  # incomplete: wait for more bytes
            if kind == _PUBACK:
                # MQTT 5: an optional reason code after the packet id; >= 0x80 is a failure.
                if length > 2 and buf[body + 2] >= 0x80:
                    self.rejected += 1
                else:
                    self.acked += 1
            elif kind == _DISCONNECT:
                reason = f" (reason 0x{buf[body]:02x})" if length else ""
                raise PublishError(f"{self.where} disconnected the publisher{reason}")
            pos = body + length
        self._rbuf = buf[pos:]

    def _await_connack(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        buf = b""
        while True:
            length, body = _read_varint(buf, 1) if len(buf) >= 2 else (0, -1)
            if body >= 0 and len(buf) >= body + length:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                raise PublishError(f"{self.where}: no CONNACK in {timeout_s:g} s")
            data = self._sock.recv(_READ_CHUNK)
            if not data:
                raise PublishError(f"{self.where} closed the connection before CONNACK")
            buf += data
        if buf[0] & 0xF0 != _CONNACK or length < 2:
            raise PublishError(f"{self.where}: expected CONNACK, got packet 0x{buf[0]:02x}")
        code = buf[body + 1]
        if code:
            raise PublishError(f"{self.where} refused the connection: {_refusal(code)}")
        if self._v5:
            self.receive_maximum = _receive_maximum(buf[body + 2 : body + length])
        self._parse(buf[body + length :])


def _connect_packet(client_id: str, v5: bool, username: str | None, password: str | None) -> bytes:
    flags = 0x02  # clean session / clean start: the publisher keeps no state
    payload = _string(client_id.encode())
    if username is not None:
        flags |= 0x80
        payload += _string(username.encode())
        if password is not None:
            flags |= 0x40
            payload += _string(password.encode())
    body = _string(b"MQTT") + bytes([5 if v5 else 4, flags]) + _KEEPALIVE_S.to_bytes(2, "big")
    if v5:
        body += b"\x00"  # no properties
    body += payload
    return b"\x10" + _varint(len(body)) + body


def _string(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); position -1 when the bytes end inside it."""
    value = shift = 0
    for i in range(pos, min(pos + 4, len(buf))):
        value |= (buf[i] & 0x7F) << shift
        if not buf[i] & 0x80:
            return value, i + 1
        shift += 7
    return 0, -1


def _receive_maximum(props: bytes) -> int:
    """Receive Maximum from a CONNACK's property section (65535 when absent)."""
    length, pos = _read_varint(props, 0)
    end = pos + length
    while 0 <= pos < end:
        pid = props[pos]
        width = _V5_PROPS.get(pid)
        pos += 1
        if pid == 0x21:
            return int.from_bytes(props[pos : pos + 2], "big")
        if width is None:
            break  # unknown property: stop looking
        if width > 0:
            pos += width
        else:
            for _ in range(-width):
                pos += 2 + int.from_bytes(props[pos : pos + 2], "big")
    return 65535


def _refusal(code: int) -> str:
    names = {
        1: "unacceptable protocol version",
        2: "identifier rejected",
        3: "server unavailable",
        4: "bad user name or password",
        5: "not authorized",
        0x84: "unsupported protocol version",
        0x85: "client identifier not valid",
        0x86: "bad user name or password",
        0x87: "not authorized",
        0x88: "server unavailable",
        0x8A: "banned",
    }
    return f"{names.get(code, 'refused')} (0x{code:02x})"
