"""Offline speech for voice terminals that cannot synthesize: espeak-ng WAV, cached per text.

A `say` command to such a terminal carries `audio` (base64 WAV). The same evacuation text
goes to every terminal of a building and again on every escalation, so each text is
rendered once: kept in memory (LRU, bounded in bytes) and on disk
(`cache_dir/<sha256>.wav`), so a restart in the middle of a fire does not render again.

Voice `cmn-latn-pinyin`: plain `cmn` reads common characters such as 号, 楼, 火警 as
spelled-out pinyin. Speed: espeak-ng's own 175 wpm reads a 35-character text in about 9 s;
at `DEFAULT_SPEED_WPM` (160) texts of 35–100 characters (what `texts.py` admits) take
10–30 s, the length of a GB 50116 §4.8 voice message (docs/fire.md has the measurements).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

DEFAULT_VOICE: Final = "cmn-latn-pinyin"
DEFAULT_SPEED_WPM: Final = 160
DEFAULT_MEMORY_BYTES: Final = 32 * 1024 * 1024
INSTALL_HINT: Final = "install it with `apt-get install espeak-ng`"

# Runs one command (argv, stdin bytes, timeout in s); subprocess.run's shape, injectable so
# tests can count real renders.
Runner = Callable[[Sequence[str], bytes, float], subprocess.CompletedProcess[bytes]]


class AudioError(GatewayError):
    """Speech cannot be rendered: espeak-ng missing, voice missing, or the render failed."""


@dataclass(frozen=True, slots=True)
class AudioStats:
    """How each `render_wav` was answered."""

    renders: int
    memory_hits: int
    disk_hits: int


def _run(argv: Sequence[str], stdin: bytes, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        list(argv), input=stdin, capture_output=True, timeout=timeout_s, check=False
    )


class SpeechRenderer:
    """Renders Chinese broadcast texts to WAV with espeak-ng; thread-safe, cached per text."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        voice: str = DEFAULT_VOICE,
        executable: str = "espeak-ng",
        speed_wpm: int | None = DEFAULT_SPEED_WPM,
        timeout_s: float = 20.0,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        runner: Runner = _run,
    ) -> None:
        """`speed_wpm=None` keeps espeak-ng's own default (175 wpm)."""
        self.cache_dir = cache_dir
        self.voice = voice
        self.executable = executable
        self.speed_wpm = speed_wpm
        self.timeout_s = timeout_s
        self._memory_bytes = memory_bytes
        self._runner = runner
        self._lock = threading.Lock()  # one render at a time: the same text is rendered once
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_used = 0
        self._available: bool | None = None
        self._renders = self._memory_hits = self._disk_hits = 0
        self._disk_warned = False

    @property
    def stats(self) -> AudioStats:
        """Counts of real renders and cache hits since construction."""
        return AudioStats(self._renders, self._memory_hits, self._disk_hits)

    def available(self) -> bool:
        """espeak-ng is installed and knows the voice (checked once, then remembered)."""
        if self._available is None:
            try:
                self._check_voice()
                self._available = True
            except AudioError as exc:
                log.warning("speech audio unavailable: %s", exc)
                self._available = False
        return self._available

    def cache_key(self, text: str) -> str:
        """sha256 of voice, speed and text: the disk file name without `.wav`."""
        return hashlib.sha256(f"{self.voice}\0{self.speed_wpm}\0{text}".encode()).hexdigest()

    def render_wav(self, text: str) -> bytes:
        """The WAV of `text` (blocking; call from a thread). AudioError says what failed."""
        if not text.strip():
            raise AudioError("speech audio: the text to render is empty")
        key = self.cache_key(text)
        with self._lock:
            wav = self._memory.get(key)
            if wav is not None:
                self._memory.move_to_end(key)
                self._memory_hits += 1
                return wav
            wav = self._read_disk(key)
            if wav is not None:
                self._disk_hits += 1
            else:
                wav = self._render(text)
                self._renders += 1
                self._write_disk(key, wav)
            self._remember(key, wav)
            return wav

    async def render_b64(self, text: str) -> str:
        """`render_wav` in a worker thread, base64-encoded for the `audio` field of `say`."""
        wav = await asyncio.to_thread(self.render_wav, text)
        return base64.b64encode(wav).decode("ascii")

    @staticmethod
    def duration_s(wav: bytes) -> float:
        """Playing time of a WAV, from its header and the frames actually present."""
        try:
            with wave.open(io.BytesIO(wav), "rb") as w:
                rate = w.getframerate()
                frame_bytes = w.getsampwidth() * w.getnchannels()
                # A streamed header (espeak-ng --stdout) claims 2**31 bytes: count real frames.
                frames = len(w.readframes(w.getnframes())) // frame_bytes
        except (wave.Error, EOFError) as exc:
            raise AudioError(f"speech audio: not a valid WAV ({exc})") from exc
        return frames / rate

    def _command(self, out: Path) -> list[str]:
        argv = [self.executable, "-v", self.voice]
        if self.speed_wpm is not None:
            argv += ["-s", str(self.speed_wpm)]
        # Text on stdin: a text starting with "-" is never taken for an option.
        return [*argv, "-w", str(out), "--stdin"]

    def _exec(self, argv: Sequence[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        try:
            return self._runner(argv, stdin, self.timeout_s)
        except FileNotFoundError as exc:
            raise AudioError(
                f"speech audio: {self.executable!r} (espeak-ng) is not installed; {INSTALL_HINT}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise AudioError(
                f"speech audio: espeak-ng took longer than {self.timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise AudioError(f"speech audio: cannot run {self.executable!r}: {exc}") from exc

    def _check_voice(self) -> None:
        if shutil.which(self.executable) is None:
            raise AudioError(
                f"speech audio: {self.executable!r} (espeak-ng) is not installed; {INSTALL_HINT}"
            )
        listing = self._exec([self.executable, "--voices"], b"")
        names = {
            cols[1].lower()
            for line in listing.stdout.decode(errors="replace").splitlines()[1:]
            if len(cols := line.split()) > 1
        }
        if self.voice.lower() not in names:
            raise AudioError(
                f"speech audio: espeak-ng has no voice {self.voice!r} "
                f"(see `espeak-ng --voices=cmn`; Debian's espeak-ng-data ships cmn-latn-pinyin)"
            )

    def prepare(self, text: str) -> bool:
        """Put `text` in the disk cache ahead of need, at the lowest CPU priority (`nice`)
        and without keeping it in memory; True when it had to be rendered."""
        if self.cache_dir is None or not text.strip():
            return False
        key = self.cache_key(text)
        if (self.cache_dir / f"{key}.wav").exists():
            return False
        with self._lock:
            wav = self._render(text, background=True)
            self._renders += 1
            self._write_disk(key, wav)
        return True

    def _render(self, text: str, background: bool = False) -> bytes:
        with tempfile.TemporaryDirectory(prefix="gateway-speech-") as tmp:
            out = Path(tmp) / "speech.wav"
            argv = self._command(out)
            if background:
                argv = ["nice", "-n", "19", *argv]
            done = self._exec(argv, text.encode())
            stderr = done.stderr.decode(errors="replace").strip()
            if done.returncode != 0:
                raise AudioError(
                    f"speech audio: espeak-ng -v {self.voice} failed (exit {done.returncode})"
                    f"{': ' + stderr if stderr else ''}"
                )
            try:
                wav = out.read_bytes()
            except OSError as exc:
                raise AudioError(f"speech audio: espeak-ng wrote no WAV ({stderr})") from exc
        if self.duration_s(wav) <= 0:
            raise AudioError(f"speech audio: espeak-ng produced silence for {text[:20]!r}…")
        return wav

    def _remember(self, key: str, wav: bytes) -> None:
        self._memory[key] = wav
        self._memory_used += len(wav)
        # Keep at least the newest entry, even when it alone exceeds the bound.
        while self._memory_used > self._memory_bytes and len(self._memory) > 1:
            _, old = self._memory.popitem(last=False)
            self._memory_used -= len(old)

    def _read_disk(self, key: str) -> bytes | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{key}.wav"
        try:
            wav = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_disk(f"cannot read {path}: {exc}")
            return None
        try:
            self.duration_s(wav)
        except AudioError:
            log.warning("speech cache: %s is not a valid WAV; rendering again", path)
            return None
        return wav

    def _write_disk(self, key: str, wav: bytes) -> None:
        # A cache that cannot be written costs a re-render after a restart, never the audio.
        if self.cache_dir is None:
            return
        path = self.cache_dir / f"{key}.wav"
        tmp: str | None = None
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(wav)
            os.replace(tmp, path)  # atomic: a crash never leaves half a WAV under the key
        except OSError as exc:
            self._warn_disk(f"cannot write {path}: {exc}")
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _warn_disk(self, message: str) -> None:
        if not self._disk_warned:
            self._disk_warned = True
            log.warning("speech cache: %s (audio is still rendered; said once)", message)
