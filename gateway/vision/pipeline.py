"""Per-camera glue: motion gate → (batched) detector → tracker → counting line.

`VisionPipeline.process` is synchronous and clock-injected (run it in a thread);
`VisionService` owns the frame sources and calls the lead's hooks with the results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.clock import Clock
from gateway.vision.counting import CountingLine
from gateway.vision.detector import Detections, Detector, OnnxDetector
from gateway.vision.frames import Frame, FrameQueue, MqttFrameSource, StatusHook, StreamSource
from gateway.vision.motion import MotionGate
from gateway.vision.settings import CameraSettings, VisionSettings
from gateway.vision.tracker import Tracker


class Crossing(NamedTuple):
    """Line crossings of one camera in one frame; feed `(checkpoint index, ts_ms, in, out)`
    to `HeadcountEngine.ingest_crossings`."""

    camera: str
    ts_ms: int
    n_in: int
    n_out: int
    checkpoint: str


class CameraEvent(NamedTuple):
    """A fire or smoke detection: same meaning as a smart camera's `fire`/`smoke` event."""

    camera: str
    ts_ms: int
    zone: str
    kind: str
    confidence: float


@dataclass(slots=True)
class VisionResult:
    """What one `process` call produced."""

    crossings: list[Crossing] = field(default_factory=list)
    events: list[CameraEvent] = field(default_factory=list)
    detected_frames: int = 0


@dataclass(slots=True)
class _Camera:
    settings: CameraSettings
    gate: MotionGate
    tracker: Tracker
    line: CountingLine | None
    last_event_s: dict[str, float] = field(default_factory=dict)


class VisionPipeline:
    """All cameras of one gateway sharing one detector; frames of many cameras per call."""

    def __init__(self, settings: VisionSettings, detector: Detector, clock: Clock) -> None:
        self.settings = settings
        self.detector = detector
        self.clock = clock
        info = detector.info
        self._person = info.classes.index(info.person_class) if info.person_class else -1
        self._kinds = {info.classes.index(c): "fire" for c in info.fire_classes}
        self._kinds.update({info.classes.index(c): "smoke" for c in info.smoke_classes})
        m = settings.motion
        self.cameras: dict[str, _Camera] = {}
        for cam in settings.cameras:
            line = None
            if cam.line is not None:
                line = CountingLine(cam.line.a, cam.line.b, cam.line.inside)
            gate = MotionGate(
                width=m.width,
                threshold=m.threshold,
                min_fraction=m.min_fraction,
                enabled=m.enabled,
            )
            tracker = Tracker(max_misses=settings.max_misses)
            self.cameras[cam.id] = _Camera(cam, gate, tracker, line)
        self.frames = 0
        self.detected = 0

    @property
    def gate_pass_fraction(self) -> float:
        """Share of all frames that reached the detector."""
        return self.detected / self.frames if self.frames else 0.0

    def process(self, frames: Sequence[Frame]) -> VisionResult:
        """Gate every frame, detect the moving ones in one batch, then track and count."""
        cams = []
        for frame in frames:
            cam = self.cameras.get(frame.camera)
            if cam is None:
                raise KeyError(f"frame from camera {frame.camera!r}, which is not in [vision]")
            cams.append(cam)
        moving = [i for i, f in enumerate(frames) if cams[i].gate.check(f.image).moved]
        found = self.detector.detect([frames[i].image for i in moving]) if moving else []
        by_frame: dict[int, Detections] = dict(zip(moving, found, strict=True))
        self.frames += len(frames)
        self.detected += len(moving)
        result = VisionResult(detected_frames=len(moving))
        for i, frame in enumerate(frames):
            cam = cams[i]
            dets = by_frame.get(i)
            if dets is None:
                cam.tracker.coast()
                continue
            self._count(cam, frame, dets.of_class(self._person), result)
            self._events(cam, frame, dets, result)
        return result

    def _count(self, cam: _Camera, frame: Frame, people: Detections, out: VisionResult) -> None:
        updates = cam.tracker.update(people.boxes)
        if cam.line is None or cam.settings.checkpoint is None:
            return
        h, w = frame.image.shape[:2]
        counted = cam.line.count(updates, (w, h))
        if counted.n_in or counted.n_out:
            out.crossings.append(
                Crossing(
                    frame.camera, frame.ts_ms, counted.n_in, counted.n_out, cam.settings.checkpoint
                )
            )

    def _events(self, cam: _Camera, frame: Frame, dets: Detections, out: VisionResult) -> None:
        zone = cam.settings.zone
        if zone is None or not self._kinds:
            return
        now = self.clock.monotonic()
        for cls, kind in self._kinds.items():
            scores = dets.scores[dets.classes == cls]
            if not len(scores):
                continue
            last = cam.last_event_s.get(kind)
            if last is not None and now - last < self.settings.event_min_interval_s:
                continue
            cam.last_event_s[kind] = now
            out.events.append(
                CameraEvent(frame.camera, frame.ts_ms, zone, kind, float(scores.max()))
            )


CrossingHook = Callable[[list[Crossing]], None]
EventHook = Callable[[list[CameraEvent]], None]


class VisionService:
    """Runs every camera's source and the pipeline; results go to the lead's hooks."""

    def __init__(
        self,
        settings: VisionSettings,
        clock: Clock,
        *,
        on_crossings: CrossingHook,
        on_events: EventHook,
        on_status: StatusHook | None = None,
        detector: Detector | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_crossings = on_crossings
        self.on_events = on_events
        self.detector = detector or OnnxDetector(settings.model_dir, threads=settings.threads)
        self.pipeline = VisionPipeline(settings, self.detector, clock)
        self._wake = asyncio.Event()
        self.queues = {c.id: FrameQueue(c.queue_max, self._wake) for c in settings.cameras}
        self.mqtt: dict[str, MqttFrameSource] = {}
        self.streams: list[StreamSource] = []
        for cam in settings.cameras:
            q = self.queues[cam.id]
            if cam.source == "mqtt":
                self.mqtt[cam.id] = MqttFrameSource(cam.id, q, cam.fps, clock)
            else:
                self.streams.append(
                    StreamSource(
                        cam.id,
                        cam.source,
                        q,
                        fps=cam.fps,
                        clock=clock,
                        on_status=on_status,
                        backoff_min_s=settings.reconnect_min_s,
                        backoff_max_s=settings.reconnect_max_s,
                        loop=cam.loop,
                    )
                )

    def submit_jpeg(self, camera: str, jpeg: bytes, ts_ms: int | None = None) -> bool:
        """A JPEG from `…/camera/{camera}/frame`; False if unknown camera, capped or bad."""
        source = self.mqtt.get(camera)
        if source is None:
            return False
        return source.submit(jpeg, ts_ms)

    def dropped(self) -> dict[str, int]:
        """Frames dropped per camera because its queue was full."""
        return {cam: q.dropped for cam, q in self.queues.items()}

    def take_batch(self) -> list[Frame]:
        """Up to `batch_max` queued frames, round-robin over cameras (oldest first)."""
        batch: list[Frame] = []
        progress = True
        while progress and len(batch) < self.settings.batch_max:
            progress = False
            for q in self.queues.values():
                frame = q.pop()
                if frame is not None:
                    batch.append(frame)
                    progress = True
                    if len(batch) == self.settings.batch_max:
                        break
        return batch

    async def run(self) -> None:
        """Run the stream readers and the analysis loop until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for stream in self.streams:
                tg.create_task(stream.run())
            tg.create_task(self._analyse())

    async def _analyse(self) -> None:
        while True:
            batch = self.take_batch()
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            result = await asyncio.to_thread(self.pipeline.process, batch)
            if result.crossings:
                self.on_crossings(result.crossings)
            if result.events:
                self.on_events(result.events)
