"""Generated scenes through gate → blobnet (onnxruntime) → tracker → counting line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.vision import OnnxDetector, VisionPipeline, VisionSettings
from gateway.vision.counting import CountingLine
from gateway.vision.tracker import Tracker, TrackUpdate
from tests.vision.scenes import Blob, frames, true_crossings

LINE_Y = 240
CAMERA = {
    "id": "cam-1",
    "checkpoint": "n-gate",
    "zone": "b12-lobby",
    "line": {"a": [0, 0.5], "b": [1, 0.5], "inside": [0.5, 1]},
}


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    return OnnxDetector(VisionSettings().model_dir)


def _run(
    detector: OnnxDetector, blobs: list[Blob], n: int
) -> tuple[tuple[int, int], VisionPipeline]:
    settings = VisionSettings.model_validate({"cameras": [CAMERA]})
    pipe = VisionPipeline(settings, detector, ManualClock())
    n_in = n_out = 0
    for frame in frames("cam-1", blobs, n):
        for c in pipe.process([frame]).crossings:
            assert (c.camera, c.checkpoint) == ("cam-1", "n-gate")
            n_in += c.n_in
            n_out += c.n_out
    return (n_in, n_out), pipe


def test_blobs_crossing_both_ways_are_counted_as_ground_truth(detector: OnnxDetector) -> None:
    blobs = [
        Blob((120, 40), (0, 14)),
        Blob((330, 440), (0, -12), first=4),
        Blob((520, 60), (-2, 16), first=10),
        Blob((220, 430), (3, -15), first=18),
    ]
    n = 50
    truth = true_crossings(blobs, n, LINE_Y)
    assert truth == (2, 2)
    counted, _ = _run(detector, blobs, n)
    assert counted == truth


def test_two_heads_passing_each_other_on_the_line_keep_their_counts(
    detector: OnnxDetector,
) -> None:
    # They overlap (one merged blob for the detector) right where they cross the line.
    blobs = [Blob((300, 60), (0, 12)), Blob((330, 420), (0, -12))]
    n = 30
    truth = true_crossings(blobs, n, LINE_Y)
    assert truth == (1, 1)
    counted, _ = _run(detector, blobs, n)
    assert counted == truth


def test_blob_walking_along_beside_the_line_is_not_counted(detector: OnnxDetector) -> None:
    counted, _ = _run(detector, [Blob((20, 180), (15, 0))], 40)
    assert counted == (0, 0)


def test_still_scene_never_reaches_the_detector(detector: OnnxDetector) -> None:
    before = detector.calls
    counted, pipe = _run(detector, [Blob((200, 200), (0, 0)), Blob((400, 300), (0, 0))], 20)
    assert counted == (0, 0)
    assert detector.calls == before
    assert pipe.gate_pass_fraction == 0.0


def test_gate_passes_only_the_frames_with_motion(detector: OnnxDetector) -> None:
    # Still for 10 frames, a head walks through for 10, then still again for 10.
    blob = Blob((300, 60), (0, 36), first=10, last=19)
    _, pipe = _run(detector, [blob], 30)
    assert 10 <= pipe.detected <= 13  # the frame after it leaves also differs
    assert pipe.frames == 30


def test_fire_class_becomes_a_rate_limited_camera_event(detector: OnnxDetector) -> None:
    settings = VisionSettings.model_validate({"cameras": [CAMERA], "event_min_interval_s": 10})
    clock = ManualClock()
    pipe = VisionPipeline(settings, detector, clock)
    flame = Blob((320, 200), (4, 0), radius=26, color=(0, 110, 255))
    events = []
    for frame in frames("cam-1", [flame], 12):
        events += pipe.process([frame]).events
        clock.advance(2.0)
    kinds = [(e.camera, e.zone, e.kind) for e in events]
    # 22 s of frames (the first is the background) → one event, one more after 10 s, ...
    assert kinds and set(kinds) == {("cam-1", "b12-lobby", "fire")}
    assert len(events) == 2
    assert all(0.5 <= e.confidence <= 1 for e in events)


def test_frames_of_several_cameras_are_batched_into_one_call(detector: OnnxDetector) -> None:
    cams = [{**CAMERA, "id": f"cam-{k}"} for k in range(4)]
    pipe = VisionPipeline(VisionSettings.model_validate({"cameras": cams}), detector, ManualClock())
    blob = [Blob((300, 60), (0, 20))]
    seqs = [frames(f"cam-{k}", blob, 3) for k in range(4)]
    pipe.process([s[0] for s in seqs])
    before = detector.calls
    result = pipe.process([s[1] for s in seqs])
    assert result.detected_frames == 4
    assert detector.calls == before + 1


def test_unknown_camera_is_named(detector: OnnxDetector) -> None:
    pipe = VisionPipeline(
        VisionSettings.model_validate({"cameras": [CAMERA]}), detector, ManualClock()
    )
    with pytest.raises(KeyError, match="cam-9"):
        pipe.process(frames("cam-9", [], 1))


def test_tracker_keeps_ids_through_a_missed_frame() -> None:
    tracker = Tracker(max_misses=3)
    box = np.array([[0, 0, 20, 20]], np.float32)
    tracker.update(box)
    tracker.update(box + 10)
    tracker.coast()
    ups = tracker.update(box + 30)
    assert [u.track_id for u in ups] == [1]
    assert len(tracker.tracks) == 1


def test_counting_line_respects_segment_ends_and_direction() -> None:
    line = CountingLine((0.25, 0.5), (0.75, 0.5), inside=(0.5, 0.0))  # "in" is upward
    wh = (100, 100)
    up_mid = TrackUpdate(1, np.array([50, 60], np.float32), np.array([50, 40], np.float32))
    down_mid = TrackUpdate(2, np.array([40, 40], np.float32), np.array([40, 70], np.float32))
    outside = TrackUpdate(3, np.array([10, 60], np.float32), np.array([10, 40], np.float32))
    got = line.count([up_mid, down_mid, outside], wh)
    assert (got.n_in, got.n_out, got.track_ids_in, got.track_ids_out) == (1, 1, (1,), (2,))


def test_settings_reject_a_line_without_checkpoint() -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        VisionSettings.model_validate({"cameras": [{**CAMERA, "checkpoint": None}]})


def test_settings_reject_inside_point_on_the_line() -> None:
    bad = {**CAMERA, "line": {"a": [0, 0.5], "b": [1, 0.5], "inside": [0.3, 0.5]}}
    with pytest.raises(ValueError, match="inside"):
        VisionSettings.model_validate({"cameras": [bad]})


def test_default_model_dir_holds_the_demo_model() -> None:
    assert (VisionSettings().model_dir / "model.toml").is_file()
    assert isinstance(VisionSettings().model_dir, Path)


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _reference_count(
    a: tuple[float, float],
    b: tuple[float, float],
    inside: tuple[float, float],
    p: tuple[float, float],
    q: tuple[float, float],
) -> tuple[int, int]:
    """Plain Python: does p → q cross segment a–b, and toward `inside`?"""
    s_in = _cross(a, b, inside)
    sp, sq = _cross(a, b, p) * s_in > 0, _cross(a, b, q) * s_in > 0
    if sp == sq or _cross(p, q, a) * _cross(p, q, b) > 0:
        return 0, 0
    return (1, 0) if sq else (0, 1)


_pt = st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda t: (t[0] / 20, t[1] / 20))


@settings(max_examples=300, deadline=None)
@given(_pt, _pt, _pt, st.lists(st.tuples(_pt, _pt), min_size=1, max_size=8))
def test_counting_line_matches_plain_python(
    a: tuple[float, float],
    b: tuple[float, float],
    inside: tuple[float, float],
    moves: list[tuple[tuple[float, float], tuple[float, float]]],
) -> None:
    assume(a != b and _cross(a, b, inside) != 0)
    line = CountingLine(a, b, inside)
    wh = (640, 480)
    updates = [
        TrackUpdate(
            i,
            np.array([p[0] * wh[0], p[1] * wh[1]], np.float32),
            np.array([q[0] * wh[0], q[1] * wh[1]], np.float32),
        )
        for i, (p, q) in enumerate(moves)
    ]
    got = line.count(updates, wh)
    want = [_reference_count(a, b, inside, p, q) for p, q in moves]
    assert (got.n_in, got.n_out) == (sum(w[0] for w in want), sum(w[1] for w in want))
