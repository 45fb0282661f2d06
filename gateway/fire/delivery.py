"""Voice audio for terminals that cannot synthesize, rendered off the alarm path.

The fire engine marks `say` commands for such terminals `needs_audio`; the runtime hands
them here from whatever thread it runs on. `AudioAttacher.run` renders the text with
espeak-ng (cached per text; warmed at start for every zone whose building has such a
terminal) and publishes the command with its `audio`. If rendering fails, the command goes
out without audio rather than not at all.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable, Iterable

from gateway.fire.actions import Publish
from gateway.fire.audio import AudioError, SpeechRenderer
from gateway.fire.linkage import SiteLinkage, ZoneRef
from gateway.fire.texts import render

log = logging.getLogger(__name__)


class AudioAttacher:
    """Renders `say` texts to WAV and publishes the commands with their audio."""

    def __init__(self, speech: SpeechRenderer, publish: Callable[[Publish], None]) -> None:
        self._speech = speech
        self._publish = publish
        self._queue: asyncio.Queue[Publish] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[Publish] = []
        self.failures = 0
        # The start-up warm-up, in /api/v1/status: "pending", "warming", "warm", "unavailable"
        # (no espeak-ng or voice) or "failed"; `warm_done` of `warm_texts` are on disk.
        self.warm_state = "pending"
        self.warm_texts = 0
        self.warm_done = 0

    def submit(self, command: Publish) -> None:
        """Queue a `say` command (any thread; never blocks)."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            self._early.append(command)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, command)

    async def run(self, warm_texts: Iterable[str] = ()) -> None:
        """Publish queued commands with audio until cancelled; warm the cache in between."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for command in self._early:
            self._queue.put_nowait(command)
        self._early.clear()
        warm = asyncio.create_task(self._warm(list(warm_texts)), name="speech-warm")
        try:
            while True:
                command = await self._queue.get()
                await self._attach(command)
        finally:
            warm.cancel()

    async def _attach(self, command: Publish) -> None:
        text = str(command.payload.get("text", ""))
        payload = dict(command.payload)
        try:
            wav = await asyncio.to_thread(self._speech.render_wav, text)
            payload["audio"] = base64.b64encode(wav).decode("ascii")
        except AudioError as exc:
            self.failures += 1
            log.error("voice %s gets text only: %s", command.topic, exc)
        self._publish(dataclasses.replace(command, payload=payload, needs_audio=False))

    async def _warm(self, texts: list[str]) -> None:
        self.warm_texts = len(texts)
        if not texts:
            self.warm_state = "warm"
            return
        if not await asyncio.to_thread(self._speech.available):
            self.warm_state = "unavailable"
            return
        self.warm_state = "warming"
        rendered = 0
        for text in texts:
            try:
                rendered += await asyncio.to_thread(self._speech.prepare, text)
            except AudioError as exc:
                self.warm_state = "failed"
                log.warning("speech cache not warmed: %s", exc)
                return
            self.warm_done += 1
        self.warm_state = "warm"
        log.info("speech cache warm: %d texts (%d rendered now)", len(texts), rendered)


def texts_to_render(linkage: SiteLinkage, templates: Iterable[str]) -> list[str]:
    """Every text a terminal that needs audio may be asked to say (per zone and template)."""
    texts: list[str] = []
    templates = list(templates)
    for building in linkage.buildings.values():
        if not any(linkage.needs_audio(dev) for _, _, dev in linkage.voice(building.id)):
            continue
        for zone in building.zones:
            label, zone_label = linkage.labels(ZoneRef(building.id, zone.id, zone.floor))
            texts.extend(render(t, label, zone.floor, zone_label) for t in templates)
    return list(dict.fromkeys(texts))
