"""Frame sources: bounded queues, the fps cap, MQTT JPEGs, and streams that die and return."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web

from gateway.clock import ManualClock
from gateway.vision import (
    Frame,
    FrameQueue,
    MqttFrameSource,
    StreamSource,
    VisionService,
    VisionSettings,
)
from tests.vision.scenes import Blob, render, write_video


class SteppingClock(ManualClock):
    """Moves `step_s` forward every time it is read, like frames arriving at a fixed rate."""

    def __init__(self, step_s: float) -> None:
        super().__init__()
        self.step_s = step_s

    def monotonic(self) -> float:
        self.advance(self.step_s)
        return super().monotonic()


def _frame(i: int) -> Frame:
    return Frame("cam", i, np.zeros((4, 4, 3), np.uint8))


def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    q = FrameQueue(3)
    for i in range(10):
        q.put(_frame(i))
    assert (q.dropped, q.accepted, len(q)) == (7, 10, 3)
    assert [f.ts_ms for f in (q.pop(), q.pop(), q.pop()) if f] == [7, 8, 9]
    assert q.pop() is None


def _jpeg(i: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", render([Blob((100, 100), (5, 0))], i))
    assert ok
    return bytes(buf)


def test_mqtt_jpegs_are_capped_to_the_configured_fps() -> None:
    clock = ManualClock()
    q = FrameQueue(100)
    src = MqttFrameSource("cam", q, fps=5, clock=clock)
    accepted = 0
    for _ in range(50):  # 50 frames at 25 fps = 2 s
        accepted += src.submit(_jpeg(), ts_ms=clock.wall_ms())
        clock.advance(0.04)
    assert accepted == 10
    assert src.cap.skipped == 40
    frame = q.pop()
    assert frame is not None and frame.image.shape == (480, 640, 3)


def test_undecodable_jpeg_is_counted_not_raised() -> None:
    src = MqttFrameSource("cam", FrameQueue(2), fps=5, clock=ManualClock())
    assert src.submit(b"not a jpeg") is False
    assert src.bad == 1


def test_service_routes_mqtt_frames_and_reports_drops() -> None:
    settings = VisionSettings.model_validate(
        {"cameras": [{"id": "cam-1", "fps": 50, "queue_max": 2}]}
    )
    clock = ManualClock()
    svc = VisionService(settings, clock, on_crossings=lambda _: None, on_events=lambda _: None)
    for _ in range(5):
        assert svc.submit_jpeg("cam-1", _jpeg())
        clock.advance(0.1)
    assert svc.submit_jpeg("cam-unknown", _jpeg()) is False
    assert svc.dropped() == {"cam-1": 3}
    assert len(svc.take_batch()) == 2


async def test_file_source_that_vanishes_and_returns_recovers(tmp_path: Path) -> None:
    video = write_video(tmp_path / "source.avi", [Blob((100, 100), (10, 5))], 12)
    path = tmp_path / "cam.avi"
    statuses: list[tuple[str, bool, str]] = []
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 3:  # the camera "comes back" after three failed attempts
            video.rename(path)
        await asyncio.sleep(0)

    q = FrameQueue(100)
    src = StreamSource(
        "cam",
        str(path),
        q,
        fps=10,
        clock=SteppingClock(0.1),
        on_status=lambda *a: statuses.append(a),
        backoff_min_s=1,
        backoff_max_s=3,
        sleep=fake_sleep,
    )
    await asyncio.wait_for(src.run(), 30)
    assert sleeps == [1, 2, 3]
    assert [s[1] for s in statuses] == [False, True]
    assert "cannot open" in statuses[0][2]
    assert q.accepted == 12


class MjpegServer:
    """An MJPEG-over-HTTP camera on 127.0.0.1 that can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.runner: web.AppRunner | None = None
        self.served = 0

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame"}
        )
        await resp.prepare(request)
        i = 0
        while True:
            body = _jpeg(i)
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
            await resp.write(head.encode() + body + b"\r\n")
            self.served += 1
            i += 1
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/video", self._stream)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_mjpeg_stream_that_dies_and_returns_recovers() -> None:
    server = MjpegServer(_free_port())
    await server.start()
    statuses: list[bool] = []
    q = FrameQueue(1000)
    retry = asyncio.Event()

    async def gated_sleep(_: float) -> None:
        await retry.wait()  # reconnect only when the test says so, not on a wall timer

    src = StreamSource(
        "cam",
        f"http://127.0.0.1:{server.port}/video",
        q,
        fps=1000,
        clock=SteppingClock(0.1),
        on_status=lambda _c, up, _r: statuses.append(up),
        timeout_ms=2000,
        sleep=gated_sleep,
    )
    task = asyncio.create_task(src.run())
    try:
        await _until(lambda: q.accepted >= 5)
        assert statuses == [True]
        await server.stop()
        await _until(lambda: statuses == [True, False])
        before = q.accepted
        await server.start()
        retry.set()
        await _until(lambda: q.accepted >= before + 5)
        assert statuses[-1] is True
        assert src.reconnects >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()


async def _until(cond: object, timeout_s: float = 20.0) -> None:
    assert callable(cond)
    async with asyncio.timeout(timeout_s):
        while not cond():  # noqa: ASYNC110 - polling a plain counter the source updates
            await asyncio.sleep(0.02)


async def test_service_counts_a_replayed_file_through_its_hooks(tmp_path: Path) -> None:
    from tests.vision.scenes import true_crossings

    blobs = [Blob((150, 40), (0, 20)), Blob((450, 440), (0, -20), first=3)]
    n = 24
    video = write_video(tmp_path / "walk.avi", blobs, n)
    settings = VisionSettings.model_validate(
        {
            "cameras": [
                {
                    "id": "cam-1",
                    "source": str(video),
                    "fps": 10,
                    "queue_max": 100,
                    "checkpoint": "n-gate",
                    "line": {"a": [0, 0.5], "b": [1, 0.5], "inside": [0.5, 1]},
                }
            ]
        }
    )
    crossings: list[tuple[int, int]] = []
    svc = VisionService(
        settings,
        SteppingClock(0.1),
        on_crossings=lambda rows: crossings.extend((c.n_in, c.n_out) for c in rows),
        on_events=lambda _: None,
    )
    task = asyncio.create_task(svc.run())
    try:
        await _until(lambda: svc.pipeline.frames == n)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    counted = (sum(c[0] for c in crossings), sum(c[1] for c in crossings))
    assert counted == true_crossings(blobs, n, 240) == (1, 1)
    assert svc.dropped() == {"cam-1": 0}
