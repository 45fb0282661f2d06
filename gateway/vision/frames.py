"""Frame sources: JPEG from MQTT, or OpenCV streams/files with reconnect, fps cap and a
bounded queue that drops (and counts) the oldest frame instead of growing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gateway.clock import Clock

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]
StatusHook = Callable[[str, bool, str], None]
"""Called with (camera, up, reason) when a stream goes down or comes back."""
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded BGR frame of a camera, stamped with the gateway's wall time."""

    camera: str
    ts_ms: int
    image: U8


class FrameQueue:
    """Bounded per-camera queue: when full, the oldest frame is dropped and counted."""

    def __init__(self, maxlen: int, notify: asyncio.Event | None = None) -> None:
        self._frames: deque[Frame] = deque(maxlen=maxlen)
        self._notify = notify
        self.dropped = 0
        self.accepted = 0

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: Frame) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self.accepted += 1
        if self._notify is not None:
            self._notify.set()

    def pop(self) -> Frame | None:
        """The oldest queued frame, or None."""
        return self._frames.popleft() if self._frames else None


class FpsCap:
    """Lets one frame through per `1 / fps` seconds of the injected monotonic clock."""

    def __init__(self, fps: float, clock: Clock) -> None:
        self.period_s = 1.0 / fps
        self.clock = clock
        self._next = -float("inf")
        self.skipped = 0

    def allow(self) -> bool:
        now = self.clock.monotonic()
        if now < self._next:
            self.skipped += 1
            return False
        # Schedule from the ideal time so jitter does not lower the rate, but never bank
        # credit after a pause.
        self._next = max(self._next + self.period_s, now)
        if self._next <= now:
            self._next = now + self.period_s
        return True


class MqttFrameSource:
    """JPEG frames that arrive on `…/camera/{id}/frame`; the MQTT side calls `submit`."""

    def __init__(self, camera: str, queue: FrameQueue, fps: float, clock: Clock) -> None:
        self.camera = camera
        self.queue = queue
        self.cap = FpsCap(fps, clock)
        self.clock = clock
        self.bad = 0

    def submit(self, jpeg: bytes, ts_ms: int | None = None) -> bool:
        """Decode and queue one JPEG; False if over the fps cap or not a decodable image."""
        if not self.cap.allow():
            return False
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            self.bad += 1
            log.warning(
                "camera %s: frame of %d bytes is not a decodable image", self.camera, len(jpeg)
            )
            return False
        ts = ts_ms if ts_ms is not None else self.clock.wall_ms()
        self.queue.put(Frame(self.camera, ts, np.asarray(decoded, np.uint8)))
        return True


class StreamSource:
    """An OpenCV capture (`rtsp://`, `http://` MJPEG, or a file) read in a worker thread.

    A stream that fails to open or stops delivering is reported down through `on_status`
    and reopened with exponential backoff; a file ends at EOF unless `loop`.
    """

    def __init__(
        self,
        camera: str,
        url: str,
        queue: FrameQueue,
        *,
        fps: float,
        clock: Clock,
        on_status: StatusHook | None = None,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 30.0,
        loop: bool = False,
        timeout_ms: int = 5000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.camera = camera
        self.url = url
        self.queue = queue
        self.cap = FpsCap(fps, clock)
        self.clock = clock
        self.on_status = on_status
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.loop = loop
        self.timeout_ms = timeout_ms
        self.sleep = sleep
        self.up: bool | None = None  # unknown until the first open attempt
        self.reconnects = 0
        self.is_file = "://" not in url

    def _set(self, up: bool, reason: str) -> None:
        if up == self.up:
            return
        self.up = up
        (log.info if up else log.warning)(
            "camera %s: stream %s (%s)", self.camera, "up" if up else "down", reason
        )
        if self.on_status is not None:
            self.on_status(self.camera, up, reason)

    def _open(self) -> Any:
        if self.is_file and not Path(self.url).is_file():
            return None
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.timeout_ms,
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    async def run(self) -> None:
        """Read frames until cancelled (or a non-looping file ends)."""
        backoff = self.backoff_min_s
        while True:
            cap = await asyncio.to_thread(self._open)
            if cap is None:
                self._set(False, f"cannot open {self.url}")
                await self.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                self.reconnects += 1
                continue
            backoff = self.backoff_min_s
            got_any = False
            read: asyncio.Future[tuple[bool, Any]] | None = None
            try:
                while True:
                    # Shielded: a cancel must not abandon a read the thread is still doing.
                    read = asyncio.ensure_future(asyncio.to_thread(cap.read))
                    ok, image = await asyncio.shield(read)
                    if not ok:
                        break
                    if not got_any:
                        got_any = True
                        self._set(True, "frames arriving")
                    if self.cap.allow():
                        self.queue.put(Frame(self.camera, self.clock.wall_ms(), image))
            finally:
                # Releasing while cap.read runs in the worker thread crashes OpenCV.
                if read is not None and not read.done():
                    await asyncio.wait({read})
                await asyncio.to_thread(cap.release)
            if self.is_file and not self.loop:
                return
            if not self.is_file:
                self._set(False, "stream stopped delivering frames")
                await self.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                self.reconnects += 1
