"""The gateway's own publishes (alerts, fire commands) are never held back by paho's window.

Under a backlog the broker's PUBACKs to the gateway queue behind the backlog it is
delivering, so thousands of the gateway's publishes can be unacknowledged at once (3,298 in
`bench/ingest.py`). With a window, a fire command published then would wait in paho's queue
for those acknowledgements. A scripted peer plays a broker that never acknowledges.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from gateway.clock import SystemClock
from gateway.config import parse_config
from gateway.ingest.mqtt import MqttLink
from gateway.metrics import GatewayMetrics
from tests.e2e.harness import SMALL_SITE
from tests.servers import HOST

_CONNACK_V5 = b"\x20\x03\x00\x00\x00"  # success, session not present, no properties


def _packets(conn: socket.socket, counts: dict[int, int], stop: threading.Event) -> None:
    """Count the client's packets by type (upper nibble) until it closes or `stop`."""
    buf = b""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        if not data:
            return
        buf += data
        while (size := _packet_size(buf)) is not None and len(buf) >= size:
            counts[buf[0] >> 4] = counts.get(buf[0] >> 4, 0) + 1
            buf = buf[size:]


def _packet_size(buf: bytes) -> int | None:
    """The whole size of the MQTT packet at the start of `buf`, None while its header is cut."""
    remaining = 0
    for n, byte in enumerate(buf[1:5]):
        remaining += (byte & 0x7F) << (7 * n)
        if byte < 0x80:
            return 2 + n + remaining
    return None


async def test_publishes_are_all_written_while_none_is_acknowledged(tmp_path: Path) -> None:
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    counts: dict[int, int] = {}
    stop = threading.Event()

    def broker() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            conn.recv(4096)  # CONNECT
            conn.sendall(_CONNACK_V5)
            _packets(conn, counts, stop)

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    text = SMALL_SITE.format(
        mqtt_port=port, client_id="gw-window", api="none", influx_url="http://127.0.0.1:1",
        database="x", spool=tmp_path / "spool.db", api_port=1,
    )  # fmt: skip
    cfg = parse_config(text, "window.toml", ["api.enabled=false"])
    link = MqttLink(cfg, lambda raw: None, GatewayMetrics(), SystemClock())
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
        n = 3_000
        for i in range(n):
            link.publish(f"community/shazui/alerts/trouble/{i}", b"{}")
        link.publish("community/shazui/b01/screen/SCR-b01/cmd", b'{"action": "show"}')
        for _ in range(500):  # 10 s
            if counts.get(3, 0) >= n + 2:  # + the gateway's status
                break
            await asyncio.sleep(0.02)
        assert counts.get(3, 0) == n + 2, f"PUBLISH packets written: {counts.get(3, 0)}"
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        thread.join(5)
        listener.close()
