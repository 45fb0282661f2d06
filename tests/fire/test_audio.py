"""Offline speech: real espeak-ng renders, their length, and the memory and disk caches."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.fire.audio import DEFAULT_SPEED_WPM, AudioError, SpeechRenderer
from gateway.fire.delivery import AudioAttacher
from gateway.fire.texts import (
    DEFAULT_TEXT_DRILL,
    DEFAULT_TEXT_FIRE,
    DEFAULT_TEXT_PREALARM,
    MAX_CHARS,
    MIN_CHARS,
    render,
)

ESPEAK = "/usr/bin/espeak-ng"
FIRE_TEXT = render(DEFAULT_TEXT_FIRE, "1", 3, "b1-f3")
# The shortest and longest broadcast texts.py admits, punctuated like real ones.
SHORT_TEXT = "3栋2楼发生火警，请立即从最近的安全出口疏散，切勿乘坐电梯，请勿返回。"
LONG_TEXT = (
    "12栋15楼发生火警，请立即从最近的安全出口疏散，切勿乘坐电梯，疏散时请用湿毛巾捂住口鼻，"
    "低姿前进。请听从消防人员和物业工作人员的指挥，不要拥挤，不要返回取物，老人和儿童请由家人"
    "陪同，有序撤离到广场。"
)


class CountingRunner:
    """Runs the real command and counts how often: a cache hit runs nothing."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(
        self, argv: Sequence[str], stdin: bytes, timeout_s: float
    ) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(list(argv))
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, timeout=timeout_s, check=False
        )


def wav_info(wav: bytes) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(wav), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate()


def test_espeak_lists_the_pinyin_voice() -> None:
    listing = subprocess.run(
        [ESPEAK, "--voices=cmn"], capture_output=True, text=True, check=True
    ).stdout
    assert "cmn-latn-pinyin" in listing.split()
    assert SpeechRenderer().available()


def test_fire_text_renders_to_a_10_to_30_s_wav(tmp_path: Path) -> None:
    renderer = SpeechRenderer(tmp_path)
    wav = renderer.render_wav(FIRE_TEXT)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert wav_info(wav) == (1, 2, 22050)  # espeak-ng: mono, 16-bit, 22.05 kHz
    assert 10.0 <= renderer.duration_s(wav) <= 30.0


@pytest.mark.parametrize(
    "text",
    [
        SHORT_TEXT,
        LONG_TEXT,
        *(render(t, "12", 33, "z") for t in (DEFAULT_TEXT_DRILL, DEFAULT_TEXT_PREALARM)),
    ],
    ids=["35-chars", "100-chars", "drill", "prealarm"],
)
def test_admitted_broadcast_lengths_speak_for_10_to_30_s(text: str) -> None:
    assert MIN_CHARS <= len(text) <= MAX_CHARS
    renderer = SpeechRenderer()
    assert 10.0 <= renderer.duration_s(renderer.render_wav(text)) <= 30.0


def test_espeak_default_speed_is_too_fast_for_the_shortest_text() -> None:
    # Why DEFAULT_SPEED_WPM exists: espeak-ng's own 175 wpm falls under 10 s.
    at_default = SpeechRenderer(speed_wpm=None)
    ours = SpeechRenderer()
    assert at_default.duration_s(at_default.render_wav(SHORT_TEXT)) < 10.0
    assert ours.speed_wpm == DEFAULT_SPEED_WPM
    assert ours.duration_s(ours.render_wav(SHORT_TEXT)) >= 10.0


def test_second_render_is_a_memory_hit_without_subprocess(tmp_path: Path) -> None:
    runner = CountingRunner()
    renderer = SpeechRenderer(tmp_path, runner=runner)
    first = renderer.render_wav(FIRE_TEXT)
    cached = tmp_path / f"{renderer.cache_key(FIRE_TEXT)}.wav"
    mtime = cached.stat().st_mtime_ns
    assert len(runner.calls) == 1 and runner.calls[0][0] == "espeak-ng"
    assert renderer.render_wav(FIRE_TEXT) == first
    assert len(runner.calls) == 1
    assert cached.stat().st_mtime_ns == mtime
    assert renderer.stats.renders == 1 and renderer.stats.memory_hits == 1
    assert cached.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no temp files left


def test_disk_cache_survives_a_new_renderer(tmp_path: Path) -> None:
    first = SpeechRenderer(tmp_path).render_wav(FIRE_TEXT)
    runner = CountingRunner()
    restarted = SpeechRenderer(tmp_path, runner=runner)
    assert restarted.render_wav(FIRE_TEXT) == first
    assert runner.calls == []
    assert restarted.stats.disk_hits == 1


def test_voice_and_speed_are_part_of_the_cache_key(tmp_path: Path) -> None:
    base = SpeechRenderer(tmp_path)
    assert base.cache_key(FIRE_TEXT) != SpeechRenderer(tmp_path, voice="cmn").cache_key(FIRE_TEXT)
    slower = SpeechRenderer(tmp_path, speed_wpm=140)
    assert base.cache_key(FIRE_TEXT) != slower.cache_key(FIRE_TEXT)
    assert slower.duration_s(slower.render_wav(FIRE_TEXT)) > base.duration_s(
        base.render_wav(FIRE_TEXT)
    )


def test_corrupt_disk_cache_file_is_rendered_again(tmp_path: Path) -> None:
    renderer = SpeechRenderer(tmp_path)
    (tmp_path / f"{renderer.cache_key(FIRE_TEXT)}.wav").write_bytes(b"RIFF\0\0garbage")
    wav = renderer.render_wav(FIRE_TEXT)
    assert renderer.stats.renders == 1 and renderer.stats.disk_hits == 0
    assert (tmp_path / f"{renderer.cache_key(FIRE_TEXT)}.wav").read_bytes() == wav


def test_unwritable_cache_dir_still_gives_audio(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    renderer = SpeechRenderer(blocker / "cache")
    assert renderer.duration_s(renderer.render_wav(FIRE_TEXT)) > 10.0


def test_memory_cache_is_bounded_least_recently_used_first() -> None:
    runner = CountingRunner()
    texts = [render(DEFAULT_TEXT_FIRE, str(b), 1, "z") for b in (1, 2, 3)]
    size = len(SpeechRenderer().render_wav(texts[0]))
    renderer = SpeechRenderer(runner=runner, memory_bytes=int(size * 2.5))
    for text in [texts[0], texts[1], texts[0], texts[2]]:  # texts[2] evicts texts[1]
        renderer.render_wav(text)
    assert len(runner.calls) == 3
    renderer.render_wav(texts[0])
    assert len(runner.calls) == 3
    renderer.render_wav(texts[1])
    assert len(runner.calls) == 4


async def test_render_b64_is_the_wav_in_base64(tmp_path: Path) -> None:
    renderer = SpeechRenderer(tmp_path)
    encoded = await renderer.render_b64(FIRE_TEXT)
    assert base64.b64decode(encoded) == renderer.render_wav(FIRE_TEXT)
    assert renderer.stats.renders == 1


def test_duration_counts_real_frames_of_a_streamed_header() -> None:
    # espeak-ng --stdout cannot seek back: its header claims 2**31 bytes of samples.
    streamed = subprocess.run(
        [ESPEAK, "-v", "cmn-latn-pinyin", "-s", str(DEFAULT_SPEED_WPM), "--stdout", FIRE_TEXT],
        capture_output=True,
        check=True,
    ).stdout
    renderer = SpeechRenderer()
    assert renderer.duration_s(streamed) == pytest.approx(
        renderer.duration_s(renderer.render_wav(FIRE_TEXT)), abs=0.05
    )
    with pytest.raises(AudioError, match="not a valid WAV"):
        renderer.duration_s(b"not audio")


def test_missing_espeak_names_it_and_how_to_install() -> None:
    renderer = SpeechRenderer(executable="espeak-ng-not-here")
    assert not renderer.available()
    with pytest.raises(AudioError, match=r"espeak-ng.*apt-get install espeak-ng"):
        renderer.render_wav(FIRE_TEXT)


def test_unknown_voice_is_reported() -> None:
    renderer = SpeechRenderer(voice="xx-nonexistent")
    assert not renderer.available()
    with pytest.raises(AudioError, match=r"-v xx-nonexistent failed \(exit 1\).*does not exist"):
        renderer.render_wav(FIRE_TEXT)


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-espeak"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_failing_espeak_reports_its_stderr(tmp_path: Path) -> None:
    exe = _script(tmp_path, 'echo "audio device exploded" >&2; exit 3')
    with pytest.raises(AudioError, match=r"exit 3\): audio device exploded"):
        SpeechRenderer(executable=exe).render_wav(FIRE_TEXT)


def test_hanging_espeak_times_out(tmp_path: Path) -> None:
    exe = _script(tmp_path, "exec sleep 30")
    with pytest.raises(AudioError, match=r"longer than 0\.3 s"):
        SpeechRenderer(executable=exe, timeout_s=0.3).render_wav(FIRE_TEXT)


def test_empty_text_is_refused() -> None:
    with pytest.raises(AudioError, match="empty"):
        SpeechRenderer().render_wav("  ")


def test_prepare_renders_once_niced_to_disk_without_filling_memory(tmp_path: Path) -> None:
    runner = CountingRunner()
    renderer = SpeechRenderer(tmp_path, runner=runner)
    assert renderer.prepare(FIRE_TEXT) is True
    assert runner.calls[0][:3] == ["nice", "-n", "19"]
    assert renderer.prepare(FIRE_TEXT) is False  # already on disk
    assert len(runner.calls) == 1
    renderer.render_wav(FIRE_TEXT)
    assert renderer.stats.disk_hits == 1  # it was not kept in memory


async def _warm_up(renderer: SpeechRenderer, texts: list[str]) -> AudioAttacher:
    attacher = AudioAttacher(renderer, lambda command: None)
    assert attacher.warm_state == "pending"
    task = asyncio.create_task(attacher.run(texts))
    for _ in range(500):
        if attacher.warm_state not in {"pending", "warming"}:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return attacher


async def test_the_start_up_warm_up_reports_its_progress(tmp_path: Path) -> None:
    runner = CountingRunner()
    texts = [FIRE_TEXT, FIRE_TEXT + "。", FIRE_TEXT + "！"]
    attacher = await _warm_up(SpeechRenderer(tmp_path, runner=runner), texts)
    assert (attacher.warm_state, attacher.warm_texts, attacher.warm_done) == ("warm", 3, 3)
    assert len(runner.calls) >= 3  # each text rendered (plus the voice check)


async def test_a_warm_up_without_espeak_says_unavailable(tmp_path: Path) -> None:
    renderer = SpeechRenderer(tmp_path, executable="espeak-ng-not-here")
    attacher = await _warm_up(renderer, [FIRE_TEXT])
    assert (attacher.warm_state, attacher.warm_done) == ("unavailable", 0)


class VoicesOnlyRunner(CountingRunner):
    """espeak-ng lists its voices, then fails every render."""

    def __call__(
        self, argv: Sequence[str], stdin: bytes, timeout_s: float
    ) -> subprocess.CompletedProcess[bytes]:
        if "--voices" in argv:
            return super().__call__(argv, stdin, timeout_s)
        return subprocess.CompletedProcess(list(argv), 3, b"", b"audio device exploded")


async def test_a_failing_render_stops_the_warm_up_as_failed(tmp_path: Path) -> None:
    renderer = SpeechRenderer(tmp_path, runner=VoicesOnlyRunner())
    attacher = await _warm_up(renderer, [FIRE_TEXT, FIRE_TEXT + "。"])
    assert (attacher.warm_state, attacher.warm_done) == ("failed", 0)
