"""The receiver on real sockets (127.0.0.1 only): TCP, UDP and client mode."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest

from gateway.clock import ManualClock
from gateway.decode.message import DeviceMessage
from gateway.protocols.gb26875 import PanelReceiver, PanelSettings
from tests.protocols import gbenc

SETTINGS = {
    "listen": "127.0.0.1:0",
    "units": [{"address": "00000a1b2c3d", "building": "b12",
               "components": [{"component": 0x0102, "zone": "b12-f3", "device": "SD-1"}]}],
}  # fmt: skip


def _now() -> tuple[int, int, int, int, int, int]:
    """ManualClock's wall time as the panel's local time (UTC+8), computed independently."""
    t = dt.datetime.fromtimestamp(
        ManualClock().wall_ms() / 1000, dt.timezone(dt.timedelta(hours=8))
    )
    return (t.second, t.minute, t.hour, t.day, t.month, t.year - 2000)


def _confirm(serial: int, command: int = 3) -> bytes:
    """The expected reply to a panel frame from the test encoder's default source."""
    return gbenc.frame(serial, command, source=0, dest=0x0A1B2C3D, time=_now())


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(27)
    rest = await reader.readexactly(int.from_bytes(head[24:26], "little") + 3)
    return head + rest


@contextlib.asynccontextmanager
async def running(settings: dict[str, object]) -> AsyncIterator[tuple[PanelReceiver, list]]:  # type: ignore[type-arg]
    got: list[tuple[list[DeviceMessage], bool]] = []
    rx = PanelReceiver(
        PanelSettings.model_validate(settings),
        "shazui",
        ManualClock(),
        on_messages=lambda m, a: got.append((m, a)),
    )
    task = asyncio.create_task(rx.run())
    try:
        yield rx, got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_200_concurrent_connections_each_get_their_confirm() -> None:
    async with running(SETTINGS) as (rx, got):
        await asyncio.wait_for(rx.server.tcp_ready.wait(), 5)
        port = rx.server.tcp_port
        assert port

        async def panel(serial: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                raw = gbenc.frame(serial, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)))
                # Split the frame across two writes to exercise per-connection buffering.
                writer.write(raw[: serial % 40 + 1])
                await writer.drain()
                writer.write(raw[serial % 40 + 1 :])
                return await _read_frame(reader)
            finally:
                writer.close()

        replies = await asyncio.wait_for(asyncio.gather(*(panel(s) for s in range(200))), 20)
        assert replies == [_confirm(s) for s in range(200)]
        assert len(got) == 200 and all(alarm for _, alarm in got)
        assert rx.stats()["net_connections"] == 200


async def test_garbage_and_bad_frames_on_one_connection_never_close_it() -> None:
    async with running(SETTINGS) as (rx, _got):
        await asyncio.wait_for(rx.server.tcp_ready.wait(), 5)
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.server.tcp_port)
        writer.write(b"\xff" * 100 + gbenc.frame(7, 2, checksum_delta=1) + b"@@##")
        writer.write(gbenc.frame(8, 2, gbenc.appdata(21, gbenc.device_status(1))))
        deny = await asyncio.wait_for(_read_frame(reader), 5)
        confirm = await asyncio.wait_for(_read_frame(reader), 5)
        assert deny == _confirm(7, command=6)
        assert confirm == _confirm(8)
        writer.close()
        assert rx.stats()["frame_bad_checksum"] == 1


async def test_udp_datagram_gets_its_confirm() -> None:
    async with running({**SETTINGS, "listen": "", "udp_listen": "127.0.0.1:0"}) as (rx, got):
        await asyncio.wait_for(rx.server.udp_ready.wait(), 5)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            raw = gbenc.frame(77, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)))
            await loop.sock_sendto(sock, raw, ("127.0.0.1", rx.server.udp_port or 0))
            reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), 5)
        finally:
            sock.close()
        assert reply == _confirm(77)
        assert got and got[0][1] is True


async def test_client_mode_dials_a_centre_side_server_and_confirms() -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The far end (a transmission device listening) sends its upload once dialled.
        try:
            writer.write(gbenc.frame(31, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE))))
            await writer.drain()
            await received.put(await asyncio.wait_for(_read_frame(reader), 5))
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the receiver went away at the end of the test
        finally:
            writer.close()

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = {**SETTINGS, "listen": "", "dial": [f"127.0.0.1:{port}"], "dial_retry_s": 0.05}
        async with running(settings) as (rx, got):
            reply = await asyncio.wait_for(received.get(), 5)
            assert reply == _confirm(31)
            assert got[0][0][0].topic.device == "SD-1"
            # It dials again after the far end hung up.
            assert await asyncio.wait_for(received.get(), 5) == _confirm(31)
            assert rx.stats()["net_dials"] >= 2
    finally:
        server.close()  # not wait_closed: a last dial may still be mid-handshake


@pytest.mark.parametrize("listen", ["127.0.0.1:0"])
async def test_failing_callback_sends_no_confirm_but_keeps_serving(listen: str) -> None:
    calls = 0

    def flaky(msgs: list[DeviceMessage], alarm: bool) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("spool full")

    rx = PanelReceiver(PanelSettings.model_validate(SETTINGS), "s", ManualClock(), flaky)
    task = asyncio.create_task(rx.run())
    try:
        await asyncio.wait_for(rx.server.tcp_ready.wait(), 5)
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.server.tcp_port)
        raw = gbenc.frame(5, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE)))
        writer.write(raw + raw)  # the panel retransmits the unconfirmed upload
        assert await asyncio.wait_for(_read_frame(reader), 5) == _confirm(5)
        assert rx.stats()["net_handler_errors"] == 1
        writer.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
