"""GB/T 26875.3 transports: TCP server, UDP endpoint, and client mode (dial out).

Each TCP connection has its own `FrameSplitter`; frames of one connection are handled in
order and each reply is written before the next frame is handled. A handler that fails
sends no reply (the panel retransmits an unconfirmed upload), is logged and counted, and
never ends the connection. Bad bytes never raise: they are skipped and counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gateway.protocols.gb26875.frame import Frame, FrameError
from gateway.protocols.gb26875.stream import FrameSplitter

log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame | FrameError, str], Awaitable[Frame | None]]
_READ_BYTES = 4096
_UDP_QUEUE = 10_000


class PanelServer:
    """Runs the transports for one frame handler; `stats` counts connections and bytes."""

    def __init__(
        self, handler: FrameHandler, *, idle_timeout_s: float = 600.0, max_connections: int = 2000
    ) -> None:
        self._handler = handler
        self._idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        self._open = 0
        self.stats: collections.Counter[str] = collections.Counter()
        self.tcp_port: int | None = None
        self.udp_port: int | None = None
        self.tcp_ready = asyncio.Event()
        self.udp_ready = asyncio.Event()

    @property
    def open_connections(self) -> int:
        """TCP connections open now (served and dialled)."""
        return self._open

    async def serve_tcp(self, host: str, port: int) -> None:
        """Accept panels until cancelled; `tcp_port` is the bound port once `tcp_ready`."""
        server = await asyncio.start_server(self._accept, host, port, backlog=1024)
        self.tcp_port = server.sockets[0].getsockname()[1]
        self.tcp_ready.set()
        log.info("GB/T 26875.3 TCP listening on %s:%s", host, self.tcp_port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            self.tcp_ready.clear()

    async def serve_udp(self, host: str, port: int) -> None:
        """Answer datagrams (each carries whole frames) until cancelled."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(_UDP_QUEUE)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(queue, self.stats), local_addr=(host, port)
        )
        self.udp_port = transport.get_extra_info("sockname")[1]
        self.udp_ready.set()
        log.info("GB/T 26875.3 UDP listening on %s:%s", host, self.udp_port)
        try:
            while True:
                data, addr = await queue.get()
                splitter = FrameSplitter()
                peer = f"udp:{addr[0]}:{addr[1]}"
                for item in splitter.feed(data):
                    reply = await self._handle(item, peer)
                    if reply is not None:
                        transport.sendto(reply.encode(), addr)
                self.stats["skipped_bytes"] += splitter.stats.skipped_bytes + splitter.pending()
        finally:
            transport.close()
            self.udp_ready.clear()

    async def dial(self, host: str, port: int, retry_s: float) -> None:
        """Client mode: keep a connection to `host:port` and serve it like an accepted one."""
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                self.stats["dial_failures"] += 1
                log.warning("GB/T 26875.3 dial %s:%s failed: %s", host, port, exc)
            else:
                self.stats["dials"] += 1
                await self._serve(reader, writer, f"dial:{host}:{port}")
            await asyncio.sleep(retry_s)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max_connections:
            self.stats["connections_refused"] += 1
            writer.close()
            return
        addr = writer.get_extra_info("peername")
        peer = f"tcp:{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "tcp:?"
        await self._serve(reader, writer, peer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        self._open += 1
        self.stats["connections"] += 1
        splitter = FrameSplitter()
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    # that races with the read completing, leaving the task unstoppable.
                    async with asyncio.timeout(self._idle_timeout_s):
                        data = await reader.read(_READ_BYTES)
                except TimeoutError:
                    self.stats["idle_closed"] += 1
                    break
                if not data:
                    break
                self.stats["bytes_in"] += len(data)
                for item in splitter.feed(data):
                    reply = await self._handle(item, peer)
                    if reply is not None:
                        writer.write(reply.encode())
                        await writer.drain()
        except (ConnectionError, OSError) as exc:
            self.stats["connection_errors"] += 1
            log.info("GB/T 26875.3 %s: %s", peer, exc)
        finally:
            self._open -= 1
            self.stats["skipped_bytes"] += splitter.stats.skipped_bytes
            self.stats["oversize"] += splitter.stats.oversize
            self.stats["bad_end"] += splitter.stats.bad_end
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _handle(self, item: Frame | FrameError, peer: str) -> Frame | None:
        try:
            reply = await self._handler(item, peer)
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("GB/T 26875.3 %s: handling a frame failed; no reply sent", peer)
            return None
        if reply is not None:
            self.stats["replies"] += 1
        return reply


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(
        self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]], stats: collections.Counter[str]
    ) -> None:
        self._queue = queue
        self._stats = stats

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._stats["datagrams"] += 1
        try:
            self._queue.put_nowait((data, addr))
        except asyncio.QueueFull:
            self._stats["datagrams_dropped"] += 1
